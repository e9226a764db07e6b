"""Answers that go wrong on submit: a timeout (the order placed, or never placed), an answer lost
after the fill, a late answer, a 5xx. The order is looked up by its client order id, never sent
again; one that never reached the book is ``rejected`` only once the venue says it has no such
order, and the other leg's fill is then hedged."""

from __future__ import annotations

from pathlib import Path

from arbitrage.events import OrderUpdate
from tests.emulator.core import Fault
from tests.faults.harness import ORDER_ENDPOINT, B, Desk, K, Outcome, assert_end_state, trade

LOOKUP = "GET /api/v3/order"


def first_leg(outcome: Outcome) -> str:
    """The client order id of the arbitrage's Binance leg."""
    [result] = outcome.results()
    return result.legs[0].client_order_id


def lookups(outcome: Outcome, client_id: str) -> int:
    """Binance ``GET order`` requests that asked for ``client_id``."""
    return sum(1 for r in outcome.requests(B, LOOKUP) if r.params.get("origClientOrderId") == client_id)


def run_with(tmp_path: Path, fault: Fault) -> Outcome:
    async def scenario(desk: Desk) -> None:
        desk.binance.exchange.inject(fault)
        desk.dislocate()
        await desk.arbs()

    return trade(tmp_path, scenario)


def test_a_timeout_with_the_order_accepted_is_looked_up_and_found_filled(tmp_path: Path) -> None:
    # placed and filled at once, its answer held past ccxt's 1 s timeout
    outcome = run_with(tmp_path, Fault("lost", endpoint=ORDER_ENDPOINT[B], delay=3.0))
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete" and len(result.legs) == 2
    leg = first_leg(outcome)
    assert outcome.sent(B) == [leg] and lookups(outcome, leg) >= 1
    assert [(o.client_order_id, o.status) for o in outcome.orders(B)] == [(leg, "closed")]


def test_a_timeout_with_the_order_lost_is_rejected_after_lookups_and_the_sell_hedged(tmp_path: Path) -> None:
    # held 1.5 s then dropped without being processed: it never reached the book
    outcome = run_with(tmp_path, Fault("timeout", endpoint=ORDER_ENDPOINT[B], delay=1.5))
    assert_end_state(outcome)
    [result] = outcome.results()
    leg = first_leg(outcome)
    assert [(r.venue, r.status) for r in result.legs[:2]] == [(B, "rejected"), (K, "filled")]
    assert all(r.purpose == "hedge" and r.side == "buy" for r in result.legs[2:]) and result.legs[2:]
    assert leg in outcome.sent(B) and outcome.sent(B).count(leg) == 1 and lookups(outcome, leg) >= 1
    assert leg not in {o.client_order_id for o in outcome.orders(B)}
    [row] = outcome.rows("SELECT status, reason FROM orders WHERE client_order_id = ?", leg)
    assert row["status"] == "rejected" and row["reason"].startswith("not placed")


def test_the_answer_lost_after_the_fill_is_looked_up_not_resent(tmp_path: Path) -> None:
    outcome = run_with(tmp_path, Fault("lost", endpoint=ORDER_ENDPOINT[B]))
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete"
    leg = first_leg(outcome)
    assert outcome.sent(B) == [leg] and lookups(outcome, leg) >= 1


def test_a_delayed_acknowledgement_is_waited_for(tmp_path: Path) -> None:
    outcome = run_with(tmp_path, Fault("delay", endpoint=ORDER_ENDPOINT[B], delay=0.6))
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete"
    leg = first_leg(outcome)
    assert outcome.sent(B) == [leg] and lookups(outcome, leg) == 0  # the answer came: nothing to ask


def test_a_5xx_on_submit_is_looked_up_and_the_other_leg_hedged(tmp_path: Path) -> None:
    outcome = run_with(tmp_path, Fault("status", endpoint=ORDER_ENDPOINT[B], status=503))
    assert_end_state(outcome)
    [result] = outcome.results()
    leg = first_leg(outcome)
    assert [(r.venue, r.status) for r in result.legs[:2]] == [(B, "rejected"), (K, "filled")]
    assert result.legs[2:] and all(r.purpose == "hedge" for r in result.legs[2:])
    assert outcome.sent(B).count(leg) == 1 and lookups(outcome, leg) >= 1


def test_an_answer_lost_and_lookups_failing_halt_the_venue_until_it_says_filled(tmp_path: Path) -> None:
    lookups_fail = Fault("status", endpoint=LOOKUP, status=503, times=6)  # 4 in the venue, 2 more after
    outcome = trade(tmp_path, lambda desk: _lost_and_unanswered(desk, lookups_fail))
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete"
    leg = first_leg(outcome)
    assert outcome.sent(B) == [leg] and lookups(outcome, leg) == 7  # six refused, then the answer
    updates = [(u.venue, u.status) for u in outcome.seen if isinstance(u, OrderUpdate) and u.venue == B]
    assert updates == [(B, "unknown"), (B, "filled")]
    alerts = [(a["key"], a["recovered"]) for a in outcome.alerts()]
    assert alerts == [(f"order.unknown:{B}:{leg}", 0), (f"order.unknown:{B}:{leg}", 1)]


async def _lost_and_unanswered(desk: Desk, lookups_fail: Fault) -> None:
    desk.binance.exchange.inject(Fault("lost", endpoint=ORDER_ENDPOINT[B]), lookups_fail)
    desk.dislocate()
    await desk.arbs()


def test_kraken_answer_lost_after_the_fill_is_found_among_its_closed_orders(tmp_path: Path) -> None:
    # Kraken would take the same cl_ord_id again once the first order closed: only the lookup
    # (OpenOrders, then ClosedOrders filtered by cl_ord_id) keeps the sell from being doubled
    async def scenario(desk: Desk) -> None:
        desk.kraken.exchange.inject(Fault("lost", endpoint=ORDER_ENDPOINT[K]))
        desk.dislocate()
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete"
    leg = result.legs[1].client_order_id
    assert outcome.sent(K) == [leg]
    closed = [r for r in outcome.requests(K, "POST /0/private/ClosedOrders")
              if r.params.get("cl_ord_id") == leg]
    assert closed and [(o.client_order_id, o.status) for o in outcome.orders(K)] == [(leg, "closed")]
