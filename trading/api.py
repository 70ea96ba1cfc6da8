"""REST reads of trading: the order history, the executions and the account of a portfolio.

Everything is what the asking staff member may see, newest first, filterable, paginated.
"""

from __future__ import annotations

from datetime import datetime, time
from datetime import timezone as dt_timezone

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ValidationFailed
from core.permissions import staff_require
from portfolio.selectors import PORTFOLIO_VIEW_PERMISSION, money, portfolio_get_visible
from realtime.api import SYMBOL_RE

from .models import Fill, Order, OrderStatus, Side
from .selectors import ORDER_VIEW_PERMISSION, fills_visible, order_get_visible, order_history, portfolio_account
from .validation import QUANTITY


class MayReadOrders(BasePermission):
    """Let in staff holding the permission that the WebSocket's order events need; refuse the rest."""

    def has_permission(self, request, view) -> bool:
        staff_require(request.user, ORDER_VIEW_PERMISSION)  # a domain refusal: 403 with its code
        return True


class FillSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fill
        fields = ["id", "quantity", "price", "fees", "executed_at"]


class OrderSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")
    isin = serializers.CharField(source="instrument.isin")
    portfolio_id = serializers.IntegerField()
    remaining_quantity = serializers.DecimalField(
        max_digits=QUANTITY.max_digits, decimal_places=QUANTITY.decimal_places
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "portfolio_id",
            "symbol",
            "isin",
            "side",
            "order_type",
            "quantity",
            "price",
            "stop_price",
            "status",
            "filled_quantity",
            "remaining_quantity",
            "average_fill_price",
            "fees",
            "reason_code",
            "reason",
            "reason_params",
            "client_order_id",
            "created_at",
            "updated_at",
            "filled_at",
            "cancelled_at",
        ]


class OrderDetailSerializer(OrderSerializer):
    fills = FillSerializer(many=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "fills"]


def _moment(raw: str | None, name: str, *, end_of_day: bool = False):
    """Return the filter's date or date-time as an aware moment a database can hold, or refuse it."""
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
        if moment is None:
            day = parse_date(raw)
            if day is None:
                raise ValueError(raw)
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        moment.astimezone(dt_timezone.utc)  # stored in UTC: the first and last days of the calendar may not fit
    except (ValueError, OverflowError):  # not a date, or a well-formed impossible one (2026-02-30)
        raise ValidationFailed(
            "invalid_filter", f"'{name}' must be a real date (2026-11-23) or ISO date-time.", field=name
        ) from None
    return moment


def _symbol(raw: str | None) -> str | None:
    if raw and not (raw.isascii() and SYMBOL_RE.fullmatch(raw.upper())):
        raise ValidationFailed(
            "invalid_filter", "'symbol' must be an instrument symbol (1-16 of A-Z, 0-9 and '.').", field="symbol"
        )
    return raw or None


def _choice(raw: str | None, name: str, choices: list[str]) -> str | None:
    if raw and raw not in choices:
        raise ValidationFailed("invalid_filter", f"'{name}' must be one of {', '.join(choices)}.", field=name)
    return raw or None


def _choices(raw: str | None, name: str, choices: list[str]) -> list[str] | None:
    """Return the comma-separated values of a filter, each one of `choices`, or refuse them all."""
    if not raw:
        return None
    values = raw.split(",")
    if any(value not in choices for value in values):
        raise ValidationFailed(
            "invalid_filter", f"'{name}' must be one or more of {', '.join(choices)}, separated by commas.", field=name
        )
    return values


class OrderPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema(
    parameters=[
        OpenApiParameter(
            "status",
            OpenApiTypes.STR,
            description="one or more of " + ", ".join(OrderStatus.values) + ", comma-separated",
        ),
        OpenApiParameter("symbol", OpenApiTypes.STR),
        OpenApiParameter("side", OpenApiTypes.STR, enum=Side.values),
        OpenApiParameter("from", OpenApiTypes.STR, description="created at or after (date or ISO date-time)"),
        OpenApiParameter("to", OpenApiTypes.STR, description="created at or before (date or ISO date-time)"),
    ]
)
class OrderHistoryView(generics.ListAPIView):
    """List the orders of your portfolios, newest first."""

    serializer_class = OrderSerializer
    pagination_class = OrderPagination
    permission_classes = [IsAdminUser, MayReadOrders]

    def get_queryset(self):
        params = self.request.query_params
        return order_history(
            user=self.request.user,
            status=_choices(params.get("status"), "status", OrderStatus.values),
            symbol=_symbol(params.get("symbol")),
            side=_choice(params.get("side"), "side", Side.values),
            created_from=_moment(params.get("from"), "from"),
            created_to=_moment(params.get("to"), "to", end_of_day=True),
        )


class OrderDetailView(generics.RetrieveAPIView):
    """Show one order of your portfolios with its fills."""

    serializer_class = OrderDetailSerializer
    permission_classes = [IsAdminUser, MayReadOrders]

    def get_object(self):
        return order_get_visible(user=self.request.user, order_id=self.kwargs["pk"])


class ExecutionSerializer(serializers.ModelSerializer):
    order_id = serializers.IntegerField()
    symbol = serializers.CharField(source="order.instrument.symbol")
    side = serializers.CharField(source="order.side")
    value = serializers.SerializerMethodField(help_text="quantity times price, in cents (EUR)")

    class Meta:
        model = Fill
        fields = ["id", "order_id", "symbol", "side", "quantity", "price", "value", "fees", "executed_at"]

    def get_value(self, fill: Fill) -> str:
        return str(money(fill.total_value))


@extend_schema(
    parameters=[
        OpenApiParameter("symbol", OpenApiTypes.STR),
        OpenApiParameter("side", OpenApiTypes.STR, enum=Side.values),
        OpenApiParameter("from", OpenApiTypes.STR, description="executed at or after (date or ISO date-time)"),
        OpenApiParameter("to", OpenApiTypes.STR, description="executed at or before (date or ISO date-time)"),
    ]
)
class FillListView(generics.ListAPIView):
    """List the executions (fills) of your portfolios' orders, newest first, each with its price and fees."""

    serializer_class = ExecutionSerializer
    pagination_class = OrderPagination
    permission_classes = [IsAdminUser, MayReadOrders]

    def get_queryset(self):
        params = self.request.query_params
        return fills_visible(
            user=self.request.user,
            symbol=_symbol(params.get("symbol")),
            side=_choice(params.get("side"), "side", Side.values),
            executed_from=_moment(params.get("from"), "from"),
            executed_to=_moment(params.get("to"), "to", end_of_day=True),
        )


class MayReadPortfolios(BasePermission):
    """Let in staff holding the permission that the desk's portfolio data needs; refuse the rest."""

    def has_permission(self, request, view) -> bool:
        staff_require(request.user, PORTFOLIO_VIEW_PERMISSION)
        return True


class AccountSerializer(serializers.Serializer):
    portfolio_id = serializers.CharField()
    name = serializers.CharField()
    cash = serializers.DecimalField(max_digits=18, decimal_places=2)
    reserved_cash = serializers.DecimalField(max_digits=18, decimal_places=2)
    buying_power = serializers.DecimalField(max_digits=18, decimal_places=2)
    market_value = serializers.DecimalField(max_digits=20, decimal_places=2)
    total_value = serializers.DecimalField(max_digits=20, decimal_places=2)
    unrealized_pnl = serializers.DecimalField(max_digits=20, decimal_places=2)
    realized_pnl = serializers.DecimalField(max_digits=20, decimal_places=2)
    day_change = serializers.DecimalField(max_digits=20, decimal_places=2)
    day_change_percent = serializers.DecimalField(max_digits=20, decimal_places=2)
    day_references = serializers.DictField(
        child=serializers.DictField(), help_text="by symbol: {price, kind: previous_close | session_open | last_price}"
    )
    fee_rate = serializers.DecimalField(max_digits=10, decimal_places=6)
    min_fee = serializers.DecimalField(max_digits=18, decimal_places=2)


def _account_data(account: dict) -> dict:
    """Return the account with the day reference prices as decimal strings, as every REST figure."""
    references = {
        symbol: {"price": str(reference["price"]), "kind": reference["kind"]}
        for symbol, reference in account["day_references"].items()
    }
    return {**account, "day_references": references}


@extend_schema(
    parameters=[OpenApiParameter("portfolio_id", OpenApiTypes.INT, description="default: your first portfolio")],
    responses=AccountSerializer,
)
class AccountView(APIView):
    """Show one of your portfolios' cash, buying power, value, realised and unrealised P&L and change of the day."""

    permission_classes = [IsAdminUser, MayReadPortfolios]

    def get(self, request):
        raw = request.query_params.get("portfolio_id")
        if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise ValidationFailed("invalid_filter", "'portfolio_id' must be a positive integer.", field="portfolio_id")
        portfolio = portfolio_get_visible(user=request.user, portfolio_id=int(raw) if raw else None)
        return Response(AccountSerializer(_account_data(portfolio_account(portfolio=portfolio))).data)
