"""The drill's check of the books: what the database holds against what the desks sent and saw."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from desk import Desk


def database_view(desks: list[Desk], starting_cash: Decimal) -> dict[str, Any]:
    """Compare what the database holds with what the desks sent and saw."""
    from portfolio.models import Portfolio, Position
    from portfolio.selectors import money
    from trading.models import Fill, Order

    by_user = {desk.user_id: desk for desk in desks}
    rows = list(Order.objects.filter(placed_by__in=by_user).values("pk", "placed_by", "client_order_id", "status"))
    in_db: dict[tuple[int, str], list[int]] = {}
    for row in rows:
        in_db.setdefault((row["placed_by"], row["client_order_id"]), []).append(row["pk"])
    sent = {(desk.user_id, cid): order for desk in desks for cid, order in desk.orders.items()}
    lost = [
        key
        for key, order in sent.items()
        if key not in in_db and (order.answer is None or order.answer.get("status") == "success")
    ]
    unanswered = [key for key, order in sent.items() if order.answer is None]
    duplicated = sum(len(ids) - 1 for ids in in_db.values() if len(ids) > 1)
    duplicated += sum(1 for order in sent.values() if len(order.order_ids) > 1)
    unknown = [key for key in in_db if key not in sent]
    answered_wrongly = sum(
        1
        for key, order in sent.items()
        if order.order_ids and key in in_db and order.order_ids != {str(pk) for pk in in_db[key]}
    )

    filled = Fill.objects.filter(order__placed_by__in=by_user).values_list("order_id", "order__placed_by")
    fills_unseen = sum(1 for order_id, user_id in filled if str(order_id) not in by_user[user_id].filled_seen)

    cash_mismatches = position_mismatches = 0
    for portfolio in Portfolio.objects.filter(members__in=by_user).distinct():
        fills = list(
            Fill.objects.filter(order__portfolio=portfolio).values_list(
                "order__instrument_id", "quantity", "price", "fees", "order__side"
            )
        )
        # As the booking does: the gross value rounded to money, the fee on top (buys) or off (sells).
        spent = sum((money(q * p) + f) if side == "buy" else -(money(q * p) - f) for _, q, p, f, side in fills)
        if portfolio.cash != starting_cash - spent:
            cash_mismatches += 1
        held: Counter[int] = Counter()
        for instrument_id, quantity, _, _, side in fills:
            held[instrument_id] += quantity if side == "buy" else -quantity
        positions = dict(
            Position.objects.filter(portfolio=portfolio).exclude(quantity=0).values_list("instrument_id", "quantity")
        )
        if positions != {k: v for k, v in held.items() if v}:
            position_mismatches += 1
    return {
        "orders_in_database": len(rows),
        "orders_lost": len(lost),
        "orders_unanswered": len(unanswered),
        "orders_duplicated": duplicated,
        "orders_unknown_to_desks": len(unknown),
        "answers_naming_another_order": answered_wrongly,
        "fills": len(filled),
        "fill_events_not_seen": fills_unseen,
        "cash_mismatches": cash_mismatches,
        "position_mismatches": position_mismatches,
        "status_counts": dict(Counter(row["status"] for row in rows)),
    }
