"""Portfolio valuation, revaluation after price moves, and audited manual corrections."""

from decimal import Decimal

import pytest

from aktienanalyse.exceptions import ValidationFailed
from portfolio.models import Instrument, Position, PositionCorrection
from portfolio.selectors import portfolio_snapshot
from portfolio.services import PortfolioBook, portfolio_refresh, portfolios_revalue, position_correct

pytestmark = pytest.mark.django_db

D = Decimal


def test_snapshot_values_cash_and_positions_at_last_prices(portfolio_with_position, sap):
    # given 10 000 EUR cash and 10 SAP bought at 150, now at 200
    snapshot = portfolio_snapshot(portfolio=portfolio_with_position)

    assert snapshot["portfolio_id"] == str(portfolio_with_position.pk)
    assert snapshot["total_value"] == D("12000.00")
    assert snapshot["total_change"] == D("500.00")
    assert snapshot["total_change_percent"] == D("33.33")
    assert snapshot["positions_count"] == 1
    [row] = snapshot["positions"]
    assert (row["symbol"], row["isin"], row["quantity"], row["market_value"], row["unrealized_pnl"]) == (
        "SAP", "DE0007164600", D("10"), D("2000.00"), D("500.00"),
    )


def test_refresh_sends_portfolio_update_to_members(portfolio_with_position, trader, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = portfolio_refresh(book=PortfolioBook(portfolio_with_position), correlation_id="r-1")

    [data] = published.data("portfolio.update")
    assert data == snapshot
    assert published.audiences("portfolio.update") == [[trader.pk]]
    assert published.frames("portfolio.update")[0]["correlation_id"] == "r-1"


def test_revalue_announces_value_change_to_holders_only(
    portfolio_with_position, other_portfolio, sap, trader, published, django_capture_on_commit_callbacks
):
    # given the portfolio was last announced at 12 000 EUR (SAP at 200) and SAP moves to 210
    with django_capture_on_commit_callbacks(execute=True):
        portfolios_revalue(instrument=sap)
    Instrument.objects.filter(pk=sap.pk).update(last_price=D("210"))
    published.messages.clear()

    with django_capture_on_commit_callbacks(execute=True):
        portfolios_revalue(instrument=sap)

    # then only the holding portfolio gets a value_changed with the move, for its members
    [data] = published.data("portfolio.value_changed")
    assert (data["portfolio_id"], data["previous_value"], data["current_value"], data["change"]) == (
        str(portfolio_with_position.pk), D("12000.00"), D("12100.00"), D("100.00"),
    )
    assert data["change_percent"] == D("0.83") and data["trigger_reason"] == "price_update"
    assert published.audiences("portfolio.value_changed") == [[trader.pk]]


def test_revalue_of_an_instrument_nobody_holds_sends_nothing(portfolio, siemens, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        portfolios_revalue(instrument=siemens)
    assert published.messages == []


def test_manual_correction_sets_position_and_records_who_where_why(
    portfolio_with_position, sap, actor, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        correction = position_correct(
            portfolio_id=portfolio_with_position.pk, instrument=sap, quantity=D("12"), avg_cost=None,
            reason="broker statement", actor=actor,
        )

    position = Position.objects.get(portfolio=portfolio_with_position, instrument=sap)
    assert (position.quantity, position.avg_cost) == (D("12"), D("150"))
    correction.refresh_from_db()
    assert (correction.previous_quantity, correction.quantity, correction.user, correction.client_id) == (
        D("10"), D("12"), actor.user, "client-a",
    )
    assert (correction.correlation_id, correction.remote_addr, correction.reason) == ("corr-1", "10.0.0.7", "broker statement")
    [changed] = published.data("portfolio.position_changed")
    assert (changed["action"], changed["quantity"], changed["change"]) == ("update", D("12"), D("2"))
    assert published.data("portfolio.value_changed")[0]["trigger_reason"] == "position_change"


def test_correction_to_zero_removes_the_position(portfolio_with_position, sap, actor):
    position_correct(
        portfolio_id=portfolio_with_position.pk, instrument=sap, quantity=D("0"), avg_cost=None, reason="sold elsewhere", actor=actor
    )
    assert not Position.objects.exists()


@pytest.mark.parametrize(
    ("quantity", "avg_cost", "reason", "code"),
    [
        (D("-1"), None, "x", "invalid_quantity"),
        (D("5"), D("-1"), "x", "invalid_avg_cost"),
        (D("5"), None, "   ", "reason_required"),
    ],
)
def test_invalid_correction_changes_nothing(portfolio_with_position, sap, actor, quantity, avg_cost, reason, code):
    with pytest.raises(ValidationFailed) as refused:
        position_correct(
            portfolio_id=portfolio_with_position.pk, instrument=sap, quantity=quantity, avg_cost=avg_cost, reason=reason, actor=actor
        )
    assert refused.value.code == code
    assert Position.objects.get().quantity == D("10")
    assert not PositionCorrection.objects.exists()


def test_correction_sends_the_whole_portfolio_too(portfolio_with_position, sap, actor, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        position_correct(
            portfolio_id=portfolio_with_position.pk, instrument=sap, quantity=D("4"), avg_cost=None, reason="fix", actor=actor
        )

    [update] = published.data("portfolio.update")
    assert update["positions"][0]["quantity"] == D("4") and update["total_value"] == D("10800.00")
