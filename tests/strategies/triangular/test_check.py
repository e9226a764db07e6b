"""The detector's bounds only decide when to loop over cycles: on any stream of books, ``update``
returns exactly what testing every cycle through the updated market returns (a brute force). The
check reads any sequence of levels and refuses cycle tuples its loops cannot trust."""

from __future__ import annotations

import itertools
import math
import typing as t

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from arbitrage.book import BookStore
from arbitrage.events import BookUpdate, Market
from arbitrage.strategies.triangular import TriangularDetector
from arbitrage.strategies.triangular.check import CycleCheck

ASSETS = ("USDT", "BTC", "ETH", "SOL", "BNB")
PRICE = {"USDT": 1.0, "BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0, "BNB": 550.0}
MARKETS = [Market(symbol=f"{b}/{q}", base=b, quote=q, taker_fee=0.001)
           for q, b in itertools.combinations(ASSETS, 2)]


def rate_of(detector: TriangularDetector, edge: int) -> float:
    """The edge's top-of-book rate worked out again from the stored book, fee included."""
    b = detector.book(edge >> 1)
    fee = detector.markets[edge >> 1].taker_fee
    if b is None:
        return 0.0
    if edge & 1:
        return 1.0 / (b.asks[0][0] * (1.0 + fee)) if b.asks else 0.0
    return b.bids[0][0] * (1.0 - fee) if b.bids else 0.0


def expected(detector: TriangularDetector, symbol: str, now: int) -> set[tuple[int, ...]]:
    """Every cycle through ``symbol`` that passes at top of book and sizes (the brute force)."""
    out = set()
    for cid, cycle in enumerate(detector.index.cycles):
        if symbol not in {detector.markets[e >> 1].symbol for e in cycle.edges}:
            continue
        books = [detector.book(e >> 1) for e in cycle.edges]
        if any(b is None or (b.bids and b.asks and b.bids[0][0] >= b.asks[0][0]) for b in books):
            continue
        if math.prod(rate_of(detector, e) for e in cycle.edges) > detector.threshold * (1 - 1e-12):
            found = detector.size(cid, now)
            if found is not None:
                out.add(cycle.edges)
    return out


# a move of a market's fair price, in bps: mostly ticks inside the detector's 10 bps slack, sometimes
# jumps past it either way, sometimes an empty side
moves = st.one_of(st.floats(-8.0, 8.0), st.floats(-150.0, 150.0))
updates = st.lists(st.tuples(st.integers(0, len(MARKETS) - 1), moves, st.floats(0.5, 20.0),
                             st.sampled_from(["both", "both", "both", "both", "no bids", "no asks"])),
                   min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(stream=updates, max_legs=st.sampled_from([3, 4]), min_bps=st.sampled_from([0.0, 10.0]))
def test_update_finds_exactly_the_cycles_a_full_test_of_the_market_finds(
        stream: list[tuple[int, float, float, str]], max_legs: int, min_bps: float) -> None:
    store = BookStore()
    detector = TriangularDetector("v", MARKETS, store, min_profit_bps=min_bps, max_legs=max_legs,
                                  max_candidates=10_000)
    fair = [PRICE[m.base] / PRICE[m.quote] for m in MARKETS]
    for ts, (i, move_bps, half_bps, sides) in enumerate(stream):
        fair[i] *= 1.0 + move_bps / 1e4
        half = fair[i] * half_bps / 1e4
        bids = () if sides == "no bids" else ((fair[i] - half, 1e6 / PRICE[MARKETS[i].base]),)
        asks = () if sides == "no asks" else ((fair[i] + half, 1e6 / PRICE[MARKETS[i].base]),)
        b = BookUpdate(venue="v", symbol=MARKETS[i].symbol, bids=bids, asks=asks, ts_event=ts, ts_init=ts)
        store.update(b)
        got = {f.cycle.edges for f in detector.update(b, ts)}
        assert got == expected(detector, b.symbol, ts)
        event(f"found: {min(len(got), 2)}")
    event("some updates ruled out by the bounds" if detector.scans < len(stream) else "every update looped")


def test_the_check_reads_any_levels_zeroes_an_empty_side_and_rejects_bad_prices() -> None:
    store = BookStore()
    detector = TriangularDetector("v", MARKETS[:3], store)
    lists: t.Any = ([[99.0, 1.0]], [[100.0, 1.0]])  # levels as lists, not tuples
    first = BookUpdate(venue="v", symbol="BTC/USDT", bids=lists[0], asks=lists[1], ts_event=0, ts_init=0)
    store.update(first)
    assert detector.refresh(first) == 0
    assert detector.check.rate(0) == pytest.approx(99.0 * 0.999)
    assert detector.check.rate(1) == pytest.approx(1 / (100.0 * 1.001))
    second = BookUpdate(venue="v", symbol="BTC/USDT", bids=((98.0, 1.0),), asks=(), ts_event=1, ts_init=1)
    store.update(second)
    assert detector.update(second, 1) == ()
    assert detector.book(0) is second  # the store's, not a copy
    assert detector.check.rate(0) == pytest.approx(98.0 * 0.999)
    assert detector.check.rate(1) == 0.0
    assert detector.check.rates()[:2] == [detector.check.rate(0), 0.0]
    with pytest.raises(IndexError):
        detector.check.rate(2 * len(MARKETS[:3]))
    unknown = BookUpdate(venue="v", symbol="XRP/USDT", bids=((1.0, 1.0),), asks=(), ts_event=1, ts_init=1)
    assert detector.refresh(unknown) == -1 and detector.update(unknown, 1) == ()
    text: t.Any = (("x", 1.0),)
    bad = BookUpdate(venue="v", symbol="BTC/USDT", bids=text, asks=(), ts_event=1, ts_init=1)
    with pytest.raises(TypeError):
        detector.update(bad, 1)


def test_a_crossed_book_zeroes_both_rates_and_is_counted() -> None:
    detector = TriangularDetector("v", MARKETS[:3], BookStore())
    fine = BookUpdate(venue="v", symbol="BTC/USDT", bids=((99.0, 1.0),), asks=((100.0, 1.0),), ts_event=0,
                      ts_init=0)
    crossed = BookUpdate(venue="v", symbol="BTC/USDT", bids=((101.0, 1.0),), asks=((100.0, 1.0),), ts_event=0,
                         ts_init=0)
    assert detector.refresh(fine) == 0
    assert detector.refresh(crossed) == -1
    assert (detector.check.rate(0), detector.check.rate(1), detector.skipped_crossed) == (0.0, 0.0, 1)


def test_the_check_refuses_cycle_tuples_that_do_not_hold_whole_cycles() -> None:
    bad = ([((0,), (0, 10**8, 0, 0, 0))], [((1, 0, 5), (3, 0))], [((5, 0, 0), ())], [((), ()), ((), ())])
    for through in bad:
        with pytest.raises(ValueError, match="wrong length|out of range|per market"):
            CycleCheck({"A/B": 0}, [1.0], [1.0], through, [((), ())], False, 1.0, 1e18, 1.001)
    with pytest.raises(ValueError, match="market ids"):
        CycleCheck({"A/B": 1}, [1.0], [1.0], [((), ())], [((), ())], False, 1.0, 1e18, 1.001)
