"""The leg state machine: its table, and the exact states the executor publishes on paper venues.

Scenarios reuse the executor tests' books; a ``Scripted`` venue wraps a paper account to reject,
half-fill or lose the answer of chosen orders (by label), so every path the executor can take is
reachable, and a hypothesis test drives random scripts through it.
"""

from __future__ import annotations

import itertools
import sqlite3
import typing as t
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbitrage.events import Alert, ArbResult, ArbStateChanged
from arbitrage.storage.plugin import Storage
from arbitrage.storage.queries import arb_states
from arbitrage.trading.arbstate import EDGES, FINAL, STATES, IllegalTransition, StateMachine, outcome
from arbitrage.trading.venue import OrderRequest, OrderResult, Venue
from tests.trading.helpers import Harness, leg, make_settings, market, opportunity, run

A, B = "alpha", "beta"

Action = t.Literal["fill", "reject", "half", "lost", "lost_unplaced"]
"""What a ``Scripted`` venue does with an order: fill it as paper does, reject it unsent, fill half
of it, or lose the answer (``submit`` raises) of an order that was placed (``lost``) or not."""


class Scripted(Venue):
    """A paper venue that does to each order what ``script[label]`` says (default: ``fill``); a lost
    answer is 'unknown' to ``resolve`` ``silent`` times, then the truth."""

    def __init__(self, paper: Venue, script: dict[str, Action], silent: int = 1) -> None:
        self.name = paper.name
        self.paper = paper
        self.script = script
        self.silent = silent
        self.known: dict[str, OrderResult] = {}
        self.asked: dict[str, int] = {}

    async def submit(self, order: OrderRequest) -> OrderResult:
        action = self.script.get(order.label.rpartition("-")[2], "fill")
        if action == "reject":
            return OrderResult(client_order_id=order.client_order_id, status="rejected", reason="scripted")
        if action == "half":
            half = msgspec.structs.replace(order, amount=round(order.amount / 2, 3))
            result = await self.paper.submit(half)
            return msgspec.structs.replace(result, status="partially_filled") if result.filled else result
        if action == "fill":
            return await self.paper.submit(order)
        self.known[order.client_order_id] = (
            await self.paper.submit(order) if action == "lost" else
            OrderResult(client_order_id=order.client_order_id, status="rejected", reason="not placed"))
        raise ConnectionResetError("answer lost")

    async def resolve(self, order: OrderRequest) -> OrderResult:
        asked = self.asked[order.client_order_id] = self.asked.get(order.client_order_id, 0) + 1
        if asked <= self.silent:
            return OrderResult(client_order_id=order.client_order_id, status="unknown", reason="asking")
        return self.known[order.client_order_id]

    def balances(self) -> dict[str, float]:
        return self.paper.balances()

    async def cancel_all(self) -> None:
        pass


def two_venues(h: Harness, *, a_bids=((99.0, 5.0),), a_asks=((100.0, 1.0), (101.0, 1.0)),
               b_bids=((110.0, 0.5), (109.0, 2.0)), b_asks=((111.0, 5.0),),
               script: dict[str, Action] | None = None) -> None:
    h.markets(A, market(fee=0.001), staleness_ms=60_000.0)  # books stay usable while a venue is asked
    h.markets(B, market(fee=0.002), staleness_ms=60_000.0)
    h.book(A, "BTC/USDT", a_bids, a_asks)
    h.book(B, "BTC/USDT", b_bids, b_asks)
    if script is not None:
        for name in (A, B):
            h.trader.venues[name] = Scripted(h.trader.venues[name], {
                label.partition(":")[2]: action for label, action in script.items()
                if label.partition(":")[0] == name})


def states(seen: list, opportunity_id: str = "x1") -> list[str]:
    return [e.state for e in seen if isinstance(e, ArbStateChanged) and e.opportunity_id == opportunity_id]


def execute(*, books: dict[str, t.Any] | None = None, script: dict[str, Action] | None = None,
            amount: float = 1.5, **trading: t.Any) -> list:
    """One arbitrage, buy ``amount`` on alpha at up to 101, sell on beta down to 109: what it published."""
    async def scenario() -> list:
        h = Harness(make_settings(**trading))
        await h.start()
        two_venues(h, **(books or {}), script=script)
        with h.bus.collect(ArbStateChanged, ArbResult, Alert) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", amount, 101.0), leg(B, "sell", amount, 109.0)))
            await h.settle()
        await h.stop()
        assert h.trader.executor.illegal_moves == []
        return seen
    return run(scenario())


# -- the table ---------------------------------------------------------------------------------------


def test_the_table_names_every_state_and_only_done_is_a_dead_end() -> None:
    assert set(EDGES) == set(STATES)
    assert all(targets <= set(STATES) for targets in EDGES.values())
    assert [s for s, targets in EDGES.items() if not targets] == ["done"]
    assert all("needs_attention" in targets for s, targets in EDGES.items() if s not in FINAL)
    assert {"done", "needs_attention"} == FINAL


def test_an_illegal_move_raises_in_strict_mode_and_is_reported_and_refused_otherwise() -> None:
    published: list[tuple[str, str]] = []
    strict = StateMachine(lambda s, r: published.append((s, r)), strict=True)
    with pytest.raises(IllegalTransition, match="planned -> done"):
        strict.move("done", "too early")
    told: list[str] = []
    lenient = StateMachine(lambda s, r: published.append((s, r)), on_illegal=told.append)
    assert not lenient.move("hedging") and lenient.state == "planned"
    assert told == ["illegal arbitrage state transition planned -> hedging ()"]
    assert lenient.move("submitted", "L0") and not lenient.move("submitted")  # staying is no move
    assert published == [("planned", ""), ("planned", ""), ("submitted", "L0")]


@pytest.mark.parametrize(("results", "state"), [
    ([("filled", 1.0), ("filled", 2.0)], "filled"),
    ([("filled", 1.0), ("rejected", 0.0)], "partially_filled"),
    ([("partially_filled", 0.5)], "partially_filled"),
    ([("canceled", 0.0), ("rejected", 0.0)], "failed"),
    ([], "failed"),
])
def test_the_outcome_of_a_round_of_legs(results, state) -> None:
    assert outcome(results) == state


# -- the executor's transitions, exactly -------------------------------------------------------------


def test_a_complete_arb_is_planned_submitted_filled_done() -> None:
    seen = execute()
    assert states(seen) == ["planned", "submitted", "filled", "done"]
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert result.status == "complete"
    changes = [e for e in seen if isinstance(e, ArbStateChanged)]
    assert changes[1].reason == "L0 alpha buy 1.5 BTC/USDT @ 101, L1 beta sell 1.5 BTC/USDT @ 109"
    assert changes[2].reason == "x1-L0 filled 1.5/1.5, x1-L1 filled 1.5/1.5"
    assert changes[3].reason == "complete"


def test_a_rejected_leg_leaves_the_other_filled_and_the_arb_hedges_it_then_is_done() -> None:
    seen = execute(script={f"{B}:L1": "reject"})
    assert states(seen) == ["planned", "submitted", "partially_filled", "hedging", "done"]
    changes = [e for e in seen if isinstance(e, ArbStateChanged)]
    assert changes[2].reason == "x1-L0 filled 1.5/1.5, x1-L1 rejected 0/1.5 (scripted)"
    assert changes[3].reason == "closing +1.5 BTC"
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert (result.status, result.residual) == ("partial", {"BTC": 0.0})
    # beta's 0.5 bid at 110 fills the first hedge part way (its limit 109.45 stops at 110's level); a
    # second round sells the other 1.0 at 109
    assert [(lr.label, lr.status, lr.filled) for lr in result.legs[2:]] == [
        ("x1-H0", "partially_filled", 0.5), ("x1-H1", "filled", 1.0)]


def test_exposure_that_cannot_be_hedged_ends_in_needs_attention_naming_residual_and_mark() -> None:
    # alpha buys 1.0 @ 100, beta sells only its 0.4 bid @ 110; no bid is left anywhere for the 0.6
    seen = execute(books={"a_bids": (), "a_asks": ((100.0, 1.0),), "b_bids": ((110.0, 0.4),)}, amount=1.0,
                   hedge_retries=1)
    assert states(seen) == ["planned", "submitted", "partially_filled", "hedging", "needs_attention"]
    final = [e for e in seen if isinstance(e, ArbStateChanged)][-1]
    assert final.reason == ("left open: +0.6 BTC on alpha marked at 100 USDT (last known price) "
                            "(no liquidity)")
    [alert] = [e for e in seen if isinstance(e, Alert)]  # the executor's own, not a second one
    assert (alert.level, alert.key) == ("critical", "position.open:alpha:BTC")
    assert "+0.6 BTC left open on alpha, marked at 100 USDT" in alert.message
    assert alert.message.endswith("the arbitrage needs attention")


def test_an_unknown_leg_is_resolved_later_and_the_arb_then_goes_on() -> None:
    seen = execute(script={f"{A}:L0": "lost"})
    assert states(seen) == ["planned", "submitted", "unknown", "filled", "done"]
    unknown = [e for e in seen if isinstance(e, ArbStateChanged)][2]
    assert unknown.reason.startswith("fate unknown: x1-L0 (arb") and unknown.reason.endswith("on alpha")


def test_an_unknown_leg_found_not_placed_leaves_the_other_to_hedge() -> None:
    seen = execute(script={f"{A}:L0": "lost_unplaced"})
    assert states(seen) == ["planned", "submitted", "unknown", "partially_filled", "hedging", "done"]


def test_a_lost_hedge_answer_goes_unknown_and_back_to_hedging() -> None:
    seen = execute(script={f"{B}:L1": "reject", f"{A}:H0": "lost", f"{B}:H0": "lost"})
    assert states(seen) == ["planned", "submitted", "partially_filled", "hedging", "unknown", "hedging",
                            "done"]


def test_stopping_mid_flight_on_paper_ends_failed_then_done() -> None:
    async def scenario() -> list:
        h = Harness(make_settings(latency_ms=25.0))
        await h.start()
        two_venues(h)
        h.trader.stop_timeout_s = 0.01
        with h.bus.collect(ArbStateChanged) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.5, 101.0), leg(B, "sell", 1.5, 109.0)))
            await h.stop()  # nobody advances the simulated clock: the orders never arrive
        return seen
    assert states(run(scenario())) == ["planned", "submitted", "failed", "done"]


# -- any script ends final, along the table's edges --------------------------------------------------

_ACTIONS: list[Action] = ["fill", "reject", "half", "lost", "lost_unplaced"]
_LABELS = [f"{venue}:{tag}" for venue in (A, B) for tag in ("L0", "L1", "H0", "H1", "H2")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.dictionaries(st.sampled_from(_LABELS), st.sampled_from(_ACTIONS), max_size=6),
       retries=st.integers(0, 2))
def test_any_sequence_of_leg_outcomes_ends_done_or_needs_attention_along_allowed_edges(script,
                                                                                        retries) -> None:
    seen = execute(script=script, hedge_retries=retries)
    path = states(seen)
    assert path[0] == "planned" and path[-1] in FINAL
    assert not any(s in FINAL for s in path[:-1])
    for before, after in itertools.pairwise(path):
        assert after in EDGES[before], (before, after, path)
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    left_open = any(abs(v) > 0.001 for v in result.residual.values())  # above the 0.001 BTC minimum
    assert (path[-1] == "needs_attention") == left_open, (path, result.residual)
    if left_open:  # a critical alert names what is open and its mark
        assert any(a.level == "critical" and "left open" in a.message for a in seen if isinstance(a, Alert))


# -- into the database -------------------------------------------------------------------------------


def test_the_states_land_in_the_database_and_the_newest_is_the_current_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings_ = make_settings()
        settings_ = msgspec.structs.replace(settings_, storage=msgspec.structs.replace(
            settings_.storage, path=str(tmp_path / "arb.db")))
        h = Harness(settings_)
        storage = Storage()
        storage.setup(h.ctx)
        await h.start()
        await storage.start()
        two_venues(h, script={f"{B}:L1": "reject"})
        h.bus.publish(opportunity("x1", leg(A, "buy", 1.5, 101.0), leg(B, "sell", 1.5, 109.0)))
        await h.settle()
        await h.stop()
        await storage.stop()

    run(scenario())
    conn = sqlite3.connect(tmp_path / "arb.db")
    try:
        history = [row[0] for row in conn.execute("SELECT state FROM arb_states WHERE opportunity_id = 'x1' "
                                                  "ORDER BY id")]
        [current] = arb_states(conn, "test-run")
        legs = conn.execute("SELECT label, leg_index, purpose FROM orders ORDER BY rowid").fetchall()
    finally:
        conn.close()
    assert history == ["planned", "submitted", "partially_filled", "hedging", "done"]
    assert (current["opportunity_id"], current["state"]) == ("x1", "done")
    assert legs == [("x1-L0", 0, "leg"), ("x1-L1", 1, "leg"), ("x1-H0", 0, "hedge"), ("x1-H1", 1, "hedge")]
