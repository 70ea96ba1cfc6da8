"""Portfolio valuation, revaluation after price moves, and audited manual corrections."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from core.exceptions import NotFound, ValidationFailed
from portfolio.models import Instrument, Portfolio, Position, PositionCorrection
from portfolio.selectors import portfolio_snapshot
from portfolio.book import PortfolioBook, portfolio_lock
from portfolio.services import portfolio_create, portfolio_refresh, portfolios_revalue, position_correct

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
        "SAP",
        "DE0007164600",
        D("10"),
        D("2000.00"),
        D("500.00"),
    )


def test_each_position_says_when_its_price_was_ticked_and_none_without_a_tick(portfolio_with_position, sap):
    # given SAP's last price ticked at a known moment
    sap.last_price_at = datetime(2026, 12, 7, 10, 15, 30, 250000, tzinfo=timezone.utc)
    sap.save(update_fields=["last_price_at"])

    [row] = portfolio_snapshot(portfolio=portfolio_with_position)["positions"]
    assert row["last_price_at"] == "2026-12-07T10:15:30.250Z"  # as the tick's `timestamp` spells it

    # and an instrument never ticked has no moment
    Instrument.objects.filter(pk=sap.pk).update(last_price_at=None)
    [row] = portfolio_snapshot(portfolio=Portfolio.objects.get(pk=portfolio_with_position.pk))["positions"]
    assert row["last_price_at"] is None


def test_refresh_sends_portfolio_update_to_members(
    portfolio_with_position, trader, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = portfolio_refresh(book=PortfolioBook(portfolio_with_position), correlation_id="r-1")

    [data] = published.data("portfolio.update")
    assert data == snapshot
    assert published.audiences("portfolio.update") == [[trader.pk]]
    assert published.frames("portfolio.update")[0]["correlation_id"] == "r-1"


def test_lock_reads_the_members_with_the_portfolio_in_one_statement(
    portfolio, trader, other_trader, django_assert_num_queries
):
    # given a portfolio with two members and one without any
    portfolio.members.add(other_trader)
    empty = portfolio_create(name="leer", cash=D("0"))

    # when each is locked, then one statement each brings the portfolio and its members
    with transaction.atomic(), django_assert_num_queries(1):
        book = portfolio_lock(portfolio_id=portfolio.pk)
        assert (book.portfolio.pk, book.portfolio.cash, book.member_ids) == (
            portfolio.pk,
            D("10000.00"),
            sorted([trader.pk, other_trader.pk]),
        )
    with transaction.atomic(), django_assert_num_queries(1):
        assert (portfolio_lock(portfolio_id=empty.pk).member_ids) == []
    with transaction.atomic(), pytest.raises(Portfolio.DoesNotExist):
        portfolio_lock(portfolio_id=999999)


@pytest.mark.django_db(transaction=True)
def test_lock_outside_a_transaction_is_refused(portfolio):
    # a lock that ended with its statement would protect nothing (as select_for_update refuses it)
    with pytest.raises(TransactionManagementError):
        portfolio_lock(portfolio_id=portfolio.pk)


def test_lock_for_a_user_takes_only_a_portfolio_the_user_sees(portfolio, other_portfolio, trader, django_user_model):
    # given the trader's portfolio, which also has a member who is not staff, and another one's
    outsider = django_user_model.objects.create_user("ohne", is_staff=True)
    not_staff = django_user_model.objects.create_user("kein-staff", is_staff=False)
    portfolio.members.add(not_staff)

    # then the trader's is locked, by id or as the first; the others are not found
    with transaction.atomic():
        assert portfolio_lock(visible_to=trader).portfolio.pk == portfolio.pk
        assert portfolio_lock(portfolio_id=portfolio.pk, visible_to=trader).portfolio.pk == portfolio.pk
    for portfolio_id, user, code in [
        (other_portfolio.pk, trader, "portfolio_not_found"),
        (999999, trader, "portfolio_not_found"),
        (None, outsider, "no_portfolio"),
        (portfolio.pk, not_staff, "portfolio_not_found"),
    ]:
        with transaction.atomic(), pytest.raises(NotFound) as not_found:
            portfolio_lock(portfolio_id=portfolio_id, visible_to=user)
        assert not_found.value.code == code


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
        str(portfolio_with_position.pk),
        D("12000.00"),
        D("12100.00"),
        D("100.00"),
    )
    assert data["change_percent"] == D("0.83") and data["trigger_reason"] == "price_update"
    assert published.audiences("portfolio.value_changed") == [[trader.pk]]


def test_revalue_of_an_instrument_nobody_holds_sends_nothing(
    portfolio, siemens, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        portfolios_revalue(instrument=siemens)
    assert published.messages == []


def test_manual_correction_sets_position_and_records_who_where_why(
    portfolio_with_position, sap, actor, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        correction = position_correct(
            portfolio_id=portfolio_with_position.pk,
            instrument=sap,
            quantity=D("12"),
            avg_cost=None,
            reason="broker statement",
            actor=actor,
        )

    position = Position.objects.get(portfolio=portfolio_with_position, instrument=sap)
    assert (position.quantity, position.avg_cost) == (D("12"), D("150"))
    correction.refresh_from_db()
    assert (correction.previous_quantity, correction.quantity, correction.user, correction.client_id) == (
        D("10"),
        D("12"),
        actor.user,
        "client-a",
    )
    assert (correction.correlation_id, correction.remote_addr, correction.reason) == (
        "corr-1",
        "10.0.0.7",
        "broker statement",
    )
    [changed] = published.data("portfolio.position_changed")
    assert (changed["action"], changed["quantity"], changed["change"]) == ("update", D("12"), D("2"))
    assert published.data("portfolio.value_changed")[0]["trigger_reason"] == "position_change"


def test_correction_to_zero_removes_the_position(portfolio_with_position, sap, actor):
    position_correct(
        portfolio_id=portfolio_with_position.pk,
        instrument=sap,
        quantity=D("0"),
        avg_cost=None,
        reason="sold elsewhere",
        actor=actor,
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
            portfolio_id=portfolio_with_position.pk,
            instrument=sap,
            quantity=quantity,
            avg_cost=avg_cost,
            reason=reason,
            actor=actor,
        )
    assert refused.value.code == code
    assert Position.objects.get().quantity == D("10")
    assert not PositionCorrection.objects.exists()


def test_correction_sends_the_whole_portfolio_too(
    portfolio_with_position, sap, actor, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        position_correct(
            portfolio_id=portfolio_with_position.pk,
            instrument=sap,
            quantity=D("4"),
            avg_cost=None,
            reason="fix",
            actor=actor,
        )

    [update] = published.data("portfolio.update")
    assert update["positions"][0]["quantity"] == D("4") and update["total_value"] == D("10800.00")
