"""REST order history: the orders a staff member may see, newest first, filterable, paginated."""

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

from aktienanalyse.exceptions import ValidationFailed
from aktienanalyse.permissions import staff_require
from realtime.protocol import SYMBOL_RE

from .models import Fill, Order, OrderStatus, Side
from .selectors import ORDER_VIEW_PERMISSION, order_get_visible, order_history
from .services import QUANTITY


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
    remaining_quantity = serializers.DecimalField(max_digits=QUANTITY.max_digits, decimal_places=QUANTITY.decimal_places)

    class Meta:
        model = Order
        fields = [
            "id", "portfolio_id", "symbol", "isin", "side", "order_type", "quantity", "price", "stop_price",
            "status", "filled_quantity", "remaining_quantity", "average_fill_price", "fees", "reason_code",
            "reason", "client_order_id", "created_at", "updated_at", "filled_at", "cancelled_at",
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
        raise ValidationFailed("invalid_filter", "'symbol' must be an instrument symbol (1-16 of A-Z, 0-9 and '.').", field="symbol")
    return raw or None


def _choice(raw: str | None, name: str, choices: list[str]) -> str | None:
    if raw and raw not in choices:
        raise ValidationFailed("invalid_filter", f"'{name}' must be one of {', '.join(choices)}.", field=name)
    return raw or None


class OrderPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema(
    parameters=[
        OpenApiParameter("status", OpenApiTypes.STR, enum=OrderStatus.values),
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
            status=_choice(params.get("status"), "status", OrderStatus.values),
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
