"""REST price bars: an instrument's stored ticks as OHLC bars with volume, for the desk's chart."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import NotFound, ValidationFailed
from portfolio.models import PRICE_DIGITS, Instrument
from realtime.api import SYMBOL_RE

from .selectors import BAR_RANGES, BAR_SIZES, MAX_BARS, price_bars_list


class PriceBarSerializer(serializers.Serializer):
    time = serializers.SerializerMethodField(help_text="start of the bar, seconds since 1970-01-01 UTC")
    start = serializers.DateTimeField()
    open = serializers.DecimalField(**PRICE_DIGITS)
    high = serializers.DecimalField(**PRICE_DIGITS)
    low = serializers.DecimalField(**PRICE_DIGITS)
    close = serializers.DecimalField(**PRICE_DIGITS)
    volume = serializers.IntegerField()
    ticks = serializers.IntegerField()

    def get_time(self, bar) -> int:
        return int(bar.start.timestamp())


class PriceBarsSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    range = serializers.CharField(source="period")
    bar = serializers.CharField()
    bar_seconds = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    truncated = serializers.BooleanField(help_text=f"'all' held more than {MAX_BARS} bars: the newest are given")
    bars = PriceBarSerializer(many=True)


def _instrument(raw: str | None) -> Instrument:
    symbol = (raw or "").strip().upper()
    if not symbol:
        raise ValidationFailed("missing_symbol", "'symbol' is required.", field="symbol")
    if not (symbol.isascii() and SYMBOL_RE.fullmatch(symbol)):
        raise ValidationFailed(
            "invalid_symbol", "'symbol' must be an instrument symbol (1-16 of A-Z, 0-9 and '.').", field="symbol"
        )
    try:
        return Instrument.objects.get(symbol=symbol)
    except Instrument.DoesNotExist:
        raise NotFound("unknown_symbol", f"No instrument {symbol}.", field="symbol") from None


class PriceBarsView(APIView):
    """List an instrument's price bars over a range; a bar without ticks is left out (a gap)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", OpenApiTypes.STR, required=True),
            OpenApiParameter("range", OpenApiTypes.STR, enum=list(BAR_RANGES), default="1h"),
            OpenApiParameter(
                "bar",
                OpenApiTypes.STR,
                enum=list(BAR_SIZES),
                description=f"bar size; omitted: the smallest that covers the range in at most {MAX_BARS} bars",
            ),
        ],
        responses=PriceBarsSerializer,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        instrument = _instrument(params.get("symbol"))
        bars = price_bars_list(instrument=instrument, period=params.get("range") or "1h", bar=params.get("bar") or None)
        return Response(PriceBarsSerializer(bars).data)
