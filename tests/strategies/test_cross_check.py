"""The cross-exchange per-book test on the store's books: exactly the pairs that pay at top of book
(a brute-force oracle over any stream of books, fees in quote or base on each venue), its counters
by hand, and any sequence of levels."""

from __future__ import annotations

import collections.abc as c
import typing as t

from hypothesis import event, given, settings
from hypothesis import strategies as st

from arbitrage.book import BookStore
from arbitrage.events import BookUpdate, FeeSide, Level, Market
from arbitrage.strategies.cross_check import CrossCheck

VENUES = ("a", "b", "c")
SYMBOLS = ("BTC/USDT", "ETH/USDT")
MS = 1_000_000
STALENESS = 1_000 * MS

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


FEE_SIDES: tuple[FeeSide, ...] = ("quote", "base", "get", "give")


def checked(fee: float, staleness: int = STALENESS,
            fee_sides: tuple[FeeSide, FeeSide] = ("quote", "quote")) -> tuple[BookStore, CrossCheck]:
    """A store and a check on it, venues a and b trading both symbols (c: no markets, no staleness)."""
    store = BookStore()
    check = CrossCheck(store.by_symbol)
    for venue, fee_side in zip(VENUES[:2], fee_sides, strict=True):
        check.set_staleness(venue, staleness)
        for symbol in SYMBOLS:
            base, quote = symbol.split("/")
            check.set_market(venue, Market(symbol=symbol, base=base, quote=quote, taker_fee=fee,
                                           fee_side=fee_side))
    return store, check


def cost(ask: float, fee: float, fee_side: str) -> float:
    """Quote paid per unit of base a buy delivers: the fee taken from the base bought (base, get)
    leaves ``1 - fee`` of each unit, else it adds ``fee`` of the notional."""
    return ask / (1 - fee) if fee_side in ("base", "get") else ask * (1 + fee)


def gain(bid: float, fee: float, fee_side: str) -> float:
    """Quote got per unit of base a sale gives: a fee in base (base, give) costs ``fee`` more base."""
    return bid / (1 + fee) if fee_side in ("base", "give") else bid * (1 - fee)


def usable(book: BookUpdate, now: int) -> bool:
    return bool(book.bids and book.asks) and now - book.ts_event <= STALENESS and \
        book.bids[0][0] < book.asks[0][0]


def oracle(store: BookStore, book: BookUpdate, fee: float, now: int,
           fee_sides: tuple[str, str] = ("quote", "quote")) -> list[tuple[BookUpdate, BookUpdate]]:
    """Every (buy, sell) pair of ``book`` with another venue's book that pays after both fees."""
    if book.venue not in VENUES[:2] or not usable(book, now):
        return []
    side_of = dict(zip(VENUES[:2], fee_sides, strict=True))
    here = side_of[book.venue]
    pairs = []
    for venue, other in store.venues(book.symbol).items():
        if venue == book.venue or venue not in VENUES[:2] or not usable(other, now):
            continue
        there = side_of[venue]
        if gain(other.bids[0][0], fee, there) > cost(book.asks[0][0], fee, here):
            pairs.append((book, other))
        if gain(book.bids[0][0], fee, here) > cost(other.asks[0][0], fee, there):
            pairs.append((other, book))
    return pairs


@settings(max_examples=300, deadline=None)
@given(books, st.sampled_from([0.0, 0.0005, 0.001]),
       st.tuples(st.sampled_from(FEE_SIDES), st.sampled_from(FEE_SIDES)))
def test_update_returns_exactly_the_pairs_that_pay_at_top_of_book(
        stream: list[t.Any], fee: float, fee_sides: tuple[FeeSide, FeeSide]) -> None:
    store, check = checked(fee, fee_sides=fee_sides)
    found = 0
    for i, spec in enumerate(stream):
        now = (10 + i) * 1_000 * MS
        book = make(*spec, now=now)
        store.update(book)  # as the engine does before any strategy sees the book
        pairs = check.update(book, now)
        assert pairs is None or pairs  # None rather than an empty list
        expected = oracle(store, book, fee, now, fee_sides)
        assert [tuple(map(id, p)) for p in pairs or ()] == [tuple(map(id, p)) for p in expected]
        found += len(pairs or ())
    event(f"pairs found: {min(found, 3)}")


def test_counters_count_the_books_that_paid_and_those_skipped_as_stale_or_crossed() -> None:
    store, check = checked(0.0)
    now = 10_000 * MS
    books = [
        make("a", "BTC/USDT", 0.0, 1.0, "both", 0, now),      # nothing else yet
        make("b", "BTC/USDT", 50.0, 1.0, "both", 1_500, now),  # pays against a, but stale itself
        make("b", "BTC/USDT", 50.0, -1.0, "both", 0, now),     # pays against a, but crossed itself
        make("b", "BTC/USDT", 50.0, 1.0, "both", 0, now),      # pays: sell on b what a sells
    ]
    results = []
    for book in books:
        store.update(book)
        results.append(check.update(book, now))
    assert results[:3] == [None, None, None]
    assert results[3] == [(books[0], books[3])]
    assert (check.evaluated, check.skipped_stale, check.skipped_crossed) == (1, 1, 1)
    late = make("a", "BTC/USDT", 0.0, 1.0, "both", 0, now + 1_200 * MS)  # b's book is now too old
    store.update(late)
    assert check.update(late, now + 1_200 * MS) is None
    assert (check.evaluated, check.skipped_stale) == (1, 2)  # counted when it paid, then found stale


def test_an_unknown_symbol_or_venue_is_never_paired() -> None:
    store, check = checked(0.0)
    specs = (("a", "XRP/USDT", 0.0), ("b", "XRP/USDT", 100.0), ("c", "BTC/USDT", -100.0),
             ("a", "BTC/USDT", 0.0))
    for venue, symbol, bid_bps in specs:
        book = make(venue, symbol, bid_bps, 1.0, "both", 0, 0)
        store.update(book)
        assert check.update(book, 0) is None


def test_a_staleness_beyond_int64_means_never_stale() -> None:
    store, check = checked(0.0, staleness=10**30)
    cheap = make("a", "BTC/USDT", 0.0, 1.0, "both", 0, 0)
    dear = make("b", "BTC/USDT", 50.0, 1.0, "both", 0, 0)
    store.update(cheap)
    assert check.update(cheap, 10**18) is None
    store.update(dear)
    assert check.update(dear, 10**18) == [(cheap, dear)]


class LazySide(c.Sequence[Level]):
    """A side parsed on demand, as a replay's: a Sequence that is not a tuple."""

    def __init__(self, levels: list[Level]) -> None:
        self._levels = levels

    def __len__(self) -> int:
        return len(self._levels)

    @t.overload
    def __getitem__(self, i: int) -> Level: ...
    @t.overload
    def __getitem__(self, i: slice) -> c.Sequence[Level]: ...
    def __getitem__(self, i: int | slice) -> Level | c.Sequence[Level]:
        return self._levels[i]


def test_sides_may_be_any_sequence_of_levels() -> None:
    store, check = checked(0.0)
    lazy: t.Any = LazySide([(99.0, 1.0)]), LazySide([(100.0, 1.0)])
    cheap = BookUpdate(venue="a", symbol="BTC/USDT", bids=lazy[0], asks=lazy[1], ts_event=0, ts_init=0)
    listed: t.Any = [[101.0, 1.0]], [[102.0, 1.0]]
    dear = BookUpdate(venue="b", symbol="BTC/USDT", bids=listed[0], asks=listed[1], ts_event=0, ts_init=0)
    store.update(cheap)
    store.update(dear)
    assert check.update(dear, 0) == [(cheap, dear)]
    assert check.update(cheap, 0) == [(cheap, dear)]
    assert check.update(BookUpdate(venue="a", symbol="BTC/USDT", bids=LazySide([]), asks=lazy[1],  # type: ignore[arg-type]
                                   ts_event=0, ts_init=0), 0) is None
