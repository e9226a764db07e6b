"""The cross-exchange per-book test: the compiled CrossCheck and the Python reference agree on any
stream of books (pairs, their order, the counters). The backtest equivalence is in
tests/backtest/test_compiled_checks.py."""

from __future__ import annotations

import typing as t

from hypothesis import event, given, settings
from hypothesis import strategies as st

from arbitrage.events import BookUpdate
from arbitrage.strategies import _cross_check, cross_check

VENUES = ("a", "b", "c")
SYMBOLS = ("BTC/USDT", "ETH/USDT")
MS = 1_000_000

books = st.lists(st.tuples(
    st.sampled_from(VENUES[:2] * 3 + VENUES[2:]), st.sampled_from(SYMBOLS),
    # bid offset from 100 in bps: a grid around 20 bps (two 0.1 % fees) hits the boundaries
    st.one_of(st.sampled_from([-60.0, -21.0, -20.0, -19.9, -19.0, 0.0, 19.0, 19.9, 20.0, 21.0, 60.0]),
              st.floats(-80.0, 80.0)),
    st.sampled_from([0.0, 0.0, 1.0, 5.0, -1.0]),  # spread, bps (negative: crossed)
    st.sampled_from(["both", "both", "both", "both", "no bids", "no asks"]),
    st.sampled_from([0, 0, 0, 500, 1_500]),  # age of the book when it arrives, ms (limit: 1,000)
), min_size=1, max_size=40)


def make(venue: str, symbol: str, bid_bps: float, spread_bps: float, sides: str, age_ms: int,
         now: int) -> BookUpdate:
    bid = 100.0 * (1 + bid_bps / 1e4)
    ask = bid * (1 + spread_bps / 1e4)
    bids = () if sides == "no bids" else ((bid, 1.0),)
    asks = () if sides == "no asks" else ((ask, 1.0),)
    ts = now - age_ms * MS
    return BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks, ts_event=ts, ts_init=now)


@settings(max_examples=300, deadline=None)
@given(books, st.sampled_from([0.0, 0.0005, 0.001]))
def test_compiled_and_reference_checks_agree_book_by_book(stream: list[t.Any], fee: float) -> None:
    checks = [_cross_check.CrossCheck({}), cross_check.CrossCheck({})]
    for check in checks:
        for venue in VENUES[:2]:  # venue c has neither markets nor a staleness limit
            check.set_staleness(venue, 1_000 * MS)
            for symbol in SYMBOLS:
                check.set_market(venue, symbol, fee)
    found = 0
    for i, spec in enumerate(stream):
        now = (10 + i) * 1_000 * MS
        book = make(*spec, now=now)
        compiled, reference = (check.update(book, now) for check in checks)
        assert compiled == reference
        assert [(c.venue, c.ts_event) for pair in compiled or () for c in pair] == \
               [(r.venue, r.ts_event) for pair in reference or () for r in pair]
        found += len(compiled or ())
        for name in ("evaluated", "skipped_stale", "skipped_crossed"):
            assert getattr(checks[0], name) == getattr(checks[1], name), name
        assert checks[0].books == checks[1].books
    event(f"pairs found: {min(found, 3)}")


def test_an_unknown_symbol_is_stored_but_never_paired() -> None:
    for check in (_cross_check.CrossCheck({}), cross_check.CrossCheck({})):
        check.set_staleness("a", 10**12)
        check.set_staleness("b", 10**12)
        check.set_market("a", "BTC/USDT", 0.0)
        cheap = make("a", "XRP/USDT", 0.0, 1.0, "both", 0, now=0)
        dear = make("b", "XRP/USDT", 100.0, 1.0, "both", 0, now=0)
        assert check.update(cheap, 0) is None and check.update(dear, 0) is None
        assert check.books["XRP/USDT"] == {"a": cheap, "b": dear}


def test_the_strategy_uses_the_compiled_check_when_it_was_built() -> None:
    from arbitrage.strategies import cross_exchange

    assert cross_exchange.CrossCheck is _cross_check.CrossCheck



def test_a_staleness_beyond_int64_means_never_stale_in_both() -> None:
    for check in (_cross_check.CrossCheck({}), cross_check.CrossCheck({})):
        for venue in ("a", "b"):
            check.set_staleness(venue, 10**30)
            check.set_market(venue, "BTC/USDT", 0.0)
        cheap = make("a", "BTC/USDT", 0.0, 1.0, "both", 0, 0)
        dear = make("b", "BTC/USDT", 50.0, 1.0, "both", 0, 0)
        assert check.update(cheap, 10**18) is None
        assert check.update(dear, 10**18) == [(cheap, dear)]
