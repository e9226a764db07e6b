"""Paper venue: depth walks, fees, limits, refusals, consumed liquidity and latency."""

from __future__ import annotations

import asyncio
import typing as t

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbitrage.book import BookStore
from arbitrage.clock import SimClock
from arbitrage.events import BookUpdate
from arbitrage.trading.paper import PaperVenue, paper_balances
from arbitrage.trading.venue import OrderRequest
from tests.trading.helpers import T0, book, market, run


class Paper(PaperVenue):
    """A paper venue on its own book store (what the engine's store is to the trader's venues)."""

    def __init__(self, store: BookStore, **kw: t.Any) -> None:
        super().__init__("alpha", books=store, liquidity=store, **kw)
        self.store = store

    def on_book(self, book: BookUpdate) -> None:
        self.store.update(book)


def venue(balances: dict[str, float] | None = None, latency_ms: float = 0.0, clock: SimClock | None = None,
          **market_kw: float) -> Paper:
    return Paper(BookStore(), clock=clock or SimClock(T0), markets=[market(**market_kw)],
                 staleness_ms=1000.0,
                 balances=balances if balances is not None else {"USDT": 1000.0, "BTC": 2.0},
                 latency_ms=latency_ms)


def order(side: str, amount: float, price: float, cid: str = "o-1") -> OrderRequest:
    return OrderRequest(client_order_id=cid, opportunity_id="o", venue="alpha", symbol="BTC/USDT",
                        side=side, amount=amount, price=price)  # type: ignore[arg-type]


ASKS = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]
BIDS = [(99.0, 1.0), (98.0, 1.0), (97.0, 5.0)]


def with_book(v: Paper, bids=BIDS, asks=ASKS, ts: int = T0) -> Paper:
    v.on_book(book("alpha", "BTC/USDT", bids, asks, ts))
    return v


def test_buy_walks_levels_and_charges_taker_fee_in_quote():
    v = with_book(venue())
    result = v.execute(order("buy", 2.5, 102.0))
    # 1.0 @ 100 + 1.5 @ 101 = 100 + 151.5 = 251.5 notional; fee 0.1 % = 0.2515
    # USDT 1000 - 251.5 - 0.2515 = 748.2485; BTC 2 + 2.5 = 4.5; average 251.5 / 2.5 = 100.6
    assert result.status == "filled"
    assert result.filled == pytest.approx(2.5)
    assert result.notional == pytest.approx(251.5)
    assert result.fee == pytest.approx(0.2515)
    assert result.average_price == pytest.approx(100.6)
    assert [(f.price, f.amount) for f in result.fills] == [(100.0, 1.0), (101.0, pytest.approx(1.5))]
    assert [f.fee for f in result.fills] == [pytest.approx(0.1), pytest.approx(0.1515)]
    assert v.balances() == {"USDT": pytest.approx(748.2485), "BTC": pytest.approx(4.5)}


def test_sell_walks_bids_and_takes_fee_from_proceeds():
    v = with_book(venue())
    result = v.execute(order("sell", 1.5, 90.0))
    # 1.0 @ 99 + 0.5 @ 98 = 148 notional; fee 0.148; USDT 1000 + 148 - 0.148 = 1147.852; BTC 0.5
    assert result.status == "filled"
    assert result.notional == pytest.approx(148.0)
    assert result.fee == pytest.approx(0.148)
    assert v.balances() == {"USDT": pytest.approx(1147.852), "BTC": pytest.approx(0.5)}


def test_limit_price_stops_the_walk_and_leaves_a_partial_fill():
    v = with_book(venue())
    result = v.execute(order("buy", 3.0, 100.5))
    assert result.status == "partially_filled"
    assert result.filled == pytest.approx(1.0)
    assert result.notional == pytest.approx(100.0)
    # 1000 - 100 - 0.1 = 899.9
    assert v.balances()["USDT"] == pytest.approx(899.9)


def test_no_level_within_limit_cancels_without_moving_money():
    v = with_book(venue())
    result = v.execute(order("buy", 1.0, 99.5))
    assert result.status == "canceled"
    assert result.reason == "no liquidity within limit"
    assert v.balances() == {"USDT": 1000.0, "BTC": 2.0}


def test_amount_is_rounded_down_to_the_market_step():
    v = with_book(venue(step=0.01))
    result = v.execute(order("buy", 1.23456, 102.0))
    # 1.23 = 1.0 @ 100 + 0.23 @ 101 = 123.23 notional
    assert result.amount == pytest.approx(1.23)
    assert result.filled == pytest.approx(1.23)
    assert result.notional == pytest.approx(123.23)


@pytest.mark.parametrize(("amount", "price", "reason"), [
    (0.0004, 100.0, "amount below market minimum"),
    (0.005, 100.0, "cost below market minimum"),  # 0.5 USDT < min_cost 1
])
def test_order_below_market_minimum_rejects(amount, price, reason):
    v = with_book(venue())
    result = v.execute(order("buy", amount, price))
    assert (result.status, result.reason) == ("rejected", reason)


def test_buy_without_enough_quote_rejects_and_keeps_balances():
    v = with_book(venue({"USDT": 150.0, "BTC": 0.0}))
    result = v.execute(order("buy", 2.0, 101.0))  # reserves 2 * 101 * 1.001 = 202.202 > 150
    assert (result.status, result.reason) == ("rejected", "insufficient USDT balance")
    assert v.balances() == {"USDT": 150.0, "BTC": 0.0}


def test_sell_without_enough_base_rejects_and_keeps_balances():
    v = with_book(venue({"USDT": 0.0, "BTC": 0.5}))
    result = v.execute(order("sell", 1.0, 90.0))
    assert (result.status, result.reason) == ("rejected", "insufficient BTC balance")
    assert v.balances() == {"USDT": 0.0, "BTC": 0.5}


def test_book_older_than_staleness_limit_rejects():
    clock = SimClock(T0)
    v = with_book(venue(clock=clock))
    clock.advance_to(T0 + 1_000_000_001)  # 1000 ms + 1 ns later
    result = v.execute(order("buy", 1.0, 100.0))
    assert (result.status, result.reason) == ("rejected", "stale book")


def test_crossed_book_rejects():
    v = with_book(venue(), bids=[(101.0, 1.0)], asks=[(100.0, 1.0)])
    result = v.execute(order("buy", 1.0, 100.0))
    assert (result.status, result.reason) == ("rejected", "crossed book")


def test_missing_book_and_unknown_market_reject():
    v = venue()
    assert v.execute(order("buy", 1.0, 100.0)).reason == "no book"
    other = OrderRequest(client_order_id="x", opportunity_id="o", venue="alpha", symbol="ETH/USDT",
                         side="buy", amount=1.0, price=1.0)
    assert v.execute(other).reason == "unknown market"


def test_liquidity_taken_stays_taken_until_the_level_changes():
    v = with_book(venue({"USDT": 10_000.0, "BTC": 0.0}))
    first = v.execute(order("buy", 1.0, 101.0, "a"))
    assert [(f.price, f.amount) for f in first.fills] == [(100.0, 1.0)]
    # The snapshot still shows 1.0 @ 100, but we took it: the next buy starts at 101.
    second = v.execute(order("buy", 1.0, 101.0, "b"))
    assert [(f.price, f.amount) for f in second.fills] == [(101.0, 1.0)]
    # each fill recorded what it took in the run's store, once
    assert v.store.taken() == {("alpha", "BTC/USDT"): {"asks@100.0": 1.0, "asks@101.0": 1.0}}
    # An identical new snapshot does not give it back (the venue has not changed those levels).
    with_book(v, ts=T0 + 1)
    third = v.execute(order("buy", 2.0, 101.0, "c"))
    assert [(f.price, f.amount) for f in third.fills] == [(101.0, 1.0)]
    # The level at 100 changes size: it is a fresh level, all of it available.
    with_book(v, asks=[(100.0, 1.5), (101.0, 2.0)], ts=T0 + 2)
    fourth = v.execute(order("buy", 1.5, 100.0, "d"))
    assert [(f.price, f.amount) for f in fourth.fills] == [(100.0, 1.5)]


def test_order_fills_against_the_book_as_it_is_after_the_latency():
    async def scenario():
        clock = SimClock(T0)
        v = with_book(venue(clock=clock, latency_ms=25.0))
        task = asyncio.ensure_future(v.submit(order("buy", 1.0, 105.0)))
        await asyncio.sleep(0)  # the order is on its way
        assert clock.next_timer_ns() == T0 + 25_000_000
        with_book(v, asks=[(104.0, 3.0)], ts=T0 + 10_000_000)  # the book moves while it travels
        clock.advance_to(T0 + 25_000_000)
        return await task

    result = run(scenario())
    assert [(f.price, f.amount) for f in result.fills] == [(104.0, 1.0)]
    assert result.ts_event == T0 + 25_000_000


def test_venue_balance_overrides_apply_on_top_of_shared_balances():
    shared = {"USDT": 1000.0, "BTC": 1.0}
    assert paper_balances("beta", shared, {"beta": {"BTC": 5.0}}) == {"USDT": 1000.0, "BTC": 5.0}
    assert paper_balances("alpha", shared, {"beta": {"BTC": 5.0}}) == shared


order_steps = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell", "book"]),
        st.floats(0.0, 3.0, allow_nan=False),  # amount
        st.floats(-0.03, 0.03, allow_nan=False),  # limit offset from 100 (fraction)
        st.floats(90.0, 110.0, allow_nan=False),  # mid of a new book
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(order_steps)
def test_balances_never_go_negative_and_value_is_conserved_minus_fees(steps):
    clock = SimClock(T0)
    start = {"USDT": 300.0, "BTC": 1.5}
    v = with_book(venue(dict(start), clock=clock))
    fees = 0.0
    traded_base = 0.0  # signed base bought
    traded_quote = 0.0  # signed quote paid before fees
    for i, (kind, amount, offset, mid) in enumerate(steps):
        if kind == "book":
            v.on_book(book("alpha", "BTC/USDT", [(round(mid - 0.5, 2), 0.7), (round(mid - 1.5, 2), 2.0)],
                           [(round(mid + 0.5, 2), 0.7), (round(mid + 1.5, 2), 2.0)], T0 + i))
            continue
        result = v.execute(order(kind, amount, 100.0 * (1 + offset), f"o-{i}"))
        sign = 1.0 if kind == "buy" else -1.0
        assert result.filled <= result.amount + 1e-12
        limit = 100.0 * (1 + offset)
        for f in result.fills:
            assert f.price <= limit + 1e-9 if kind == "buy" else f.price >= limit - 1e-9
            traded_base += sign * f.amount
            traded_quote += sign * f.price * f.amount
            fees += f.fee
        assert all(amount >= 0.0 for amount in v.balances().values()), v.balances()
    end = v.balances()
    assert end["BTC"] - start["BTC"] == pytest.approx(traded_base, abs=1e-9)
    # Quote paid for base plus fees is exactly what left the quote balance.
    assert start["USDT"] - end["USDT"] == pytest.approx(traded_quote + fees, abs=1e-9)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 0.0])
def test_a_malformed_book_fills_nothing(bad: float):
    """A source that did not check its books: a NaN or negative level never becomes a fill price
    (the other side's NaN too: the record is corrupt)."""
    v = with_book(venue(), bids=[(99.0, 1.0), (bad, 1.0)], asks=[(100.0, 1.0), (101.0, 1.0)])
    result = v.execute(order("buy", 1.0, 101.0))
    assert (result.status, result.reason, result.filled) == ("rejected", "malformed book", 0.0)
