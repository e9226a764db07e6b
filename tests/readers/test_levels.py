"""RawLevels: a recorded book side kept as JSON text, checked at once, parsed past the top on demand.

Oracle: msgspec decoding the same text (``tests/backtest/test_decoding.py``: the backtest result
does not depend on which is used, nor on whether the module runs compiled or interpreted).
"""

from __future__ import annotations

import collections.abc as c
import itertools
import pickle
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbitrage.events import BookUpdate, encode_json
from arbitrage.readers import levels
from arbitrage.readers.formats import open_reader
from arbitrage.readers.levels import RawLevels, UnsortedLevels

_decode = msgspec.json.Decoder(tuple[tuple[float, float], ...]).decode
positive = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)


def number_text(draw: st.DrawFn) -> str:
    """A positive JSON number as recorders write it: repr, fixed decimals, integers, exponents."""
    x = draw(positive)
    style = draw(st.sampled_from(["repr", "fixed", "int", "exp"]))
    if style == "fixed" and 1e-6 < x < 1e12:
        return f"{x:.{draw(st.integers(6, 20))}f}"
    if style == "int" and 1 <= x < 1e18:
        return str(int(x))
    if style == "exp":
        return f"{x:.{draw(st.integers(0, 18))}e}"
    return repr(x)


@st.composite
def side_text(draw: st.DrawFn, falling: bool | None = None) -> bytes:
    """A JSON array of [price, amount] pairs with random spacing: prices strictly falling (bids),
    rising (asks), or in any order (``falling`` None), as decimals."""
    space = st.sampled_from(["", "", " ", "\n", " \t"])
    prices = [number_text(draw) for _ in range(draw(st.integers(0, 25)))]
    if falling is not None:
        by_value = {Decimal(p): p for p in prices}  # one text per decimal value: strictly ordered
        prices = [by_value[v] for v in sorted(by_value, reverse=falling)]
    levels = []
    for price in prices:
        amount = number_text(draw)
        levels.append(f"[{draw(space)}{price}{draw(space)},{draw(space)}{amount}{draw(space)}]")
    inside = (',' + draw(space)).join(levels)
    return f"{draw(space)}[{draw(space)}{inside}{draw(space)}]{draw(space)}".encode()


sides = st.booleans().flatmap(lambda falling: st.tuples(st.just(falling), side_text(falling)))


@settings(max_examples=500, deadline=None)
@given(sides)
def test_same_levels_as_msgspec_for_any_recorded_text(side: tuple[bool, bytes]) -> None:
    falling, text = side
    want = _decode(text)
    got = RawLevels(text, falling)
    assert len(got) == len(want) and bool(got) == bool(want)
    if want:
        assert got[0] == want[0] and got[-1] == want[-1]  # the top before the rest is parsed
    assert tuple(got) == want and got == want and list(got[1:]) == list(want[1:])
    assert hash(got) == hash(want)
    assert list(reversed(got)) == list(reversed(want))
    if want:
        assert got.index(want[-1]) == want.index(want[-1]) and got.count(want[0]) == want.count(want[0])


@settings(max_examples=300, deadline=None)
@given(st.booleans(), side_text())
def test_prices_out_of_order_are_rejected_exactly_when_their_decimals_are(falling: bool,
                                                                         text: bytes) -> None:
    pairs = msgspec.json.decode(text, type=list[tuple[msgspec.Raw, msgspec.Raw]])
    prices = [Decimal(bytes(price).decode()) for price, _ in pairs]
    ordered = all(a > b if falling else a < b for a, b in itertools.pairwise(prices))
    if ordered:
        assert len(RawLevels(text, falling)) == len(prices)
    else:
        with pytest.raises(UnsortedLevels, match="out of order"):
            RawLevels(text, falling)


@settings(max_examples=200, deadline=None)
@given(side_text(True), side_text(False))
def test_a_book_sent_by_the_decoding_process_comes_back_the_same(bids: bytes, asks: bytes) -> None:
    book = BookUpdate(venue="v", symbol="A/B", bids=RawLevels(bids, True), asks=RawLevels(asks, False),
                      ts_event=1, ts_init=2)
    records: list[levels.BookRecord] = []
    assert levels.pack_book(records, 0, 1, book)
    (back,) = levels.unpack(records, ["v", "A/B"])
    assert back == book and back.bids == _decode(bids) and back.asks == _decode(asks)
    assert type(back.bids) is RawLevels and len(back.asks) == len(_decode(asks))
    assert levels.pack_book(records, 0, 1, BookUpdate(venue="v", symbol="A/B", bids=((1.0, 1.0),),
                                                      asks=book.asks, ts_event=1, ts_init=2)) is False


@pytest.mark.parametrize("text", [
    b"[[1,-2]]", b"[[0,1]]", b"[[0.0,1]]", b"[[1,0e5]]", b"[[1,2,3]]", b"[[1]]", b"[1,2]", b'[["1",2]]',
    b"[[1,2]", b"[[1,2]]x", b"[[1,2],]", b"[[01,1]]", b"[[1.,1]]", b"[[.5,1]]", b"[[1,2]][]", b"",
    b"[[1e-400,1]]", b"[[1e400,1]]", b"[[1,null]]", b"[[1,true]]", b"{}", b"[[3,2],[1,-4]]",
])
def test_anything_but_pairs_of_positive_numbers_is_rejected(text: bytes) -> None:
    with pytest.raises(ValueError, match="pairs of positive numbers"):
        RawLevels(text, True)


@pytest.mark.parametrize(("text", "falling"), [
    (b"[[2,1],[2,1]]", True), (b"[[2,1],[2.0,1]]", False), (b"[[1,1],[2,1]]", True),
    (b"[[2,1],[1,1]]", False),
    (b"[[1e2,1],[100.0,1]]", True), (b"[[0.05,1],[0.5,1]]", True), (b"[[3,1],[2,1],[2.5,1]]", True),
    (b"[[1.10,1],[1.1,1]]", False), (b"[[99.9,1],[1e2,1],[1e1,1]]", False),
])
def test_levels_out_of_order_or_repeated_are_rejected(text: bytes, falling: bool) -> None:
    with pytest.raises(UnsortedLevels, match="out of order"):
        RawLevels(text, falling)


def test_levels_in_order_pass_whatever_their_spelling() -> None:
    assert len(RawLevels(b"[[1e2,1],[99.99,1],[9.998e1,1],[0.5,1],[5e-2,1],[0.0499,1]]", True)) == 6
    assert len(RawLevels(b"[[0.0499,1],[5E-2,1],[0.5,1],[99.99,1],[1.0001e2,1],[100.02,1]]", False)) == 6


def test_behaves_as_the_tuple_it_stands_for() -> None:
    text = b"[[100.5, 2], [100.25, 0.5], [100, 3]]"
    levels, plain = RawLevels(text, True), ((100.5, 2.0), (100.25, 0.5), (100.0, 3.0))
    assert levels[0] == (100.5, 2.0) and levels[-1] == (100.0, 3.0) and levels[0:2] == plain[0:2]
    assert (100.25, 0.5) in levels and dict(levels) == dict(plain) and list(levels) == list(plain)
    assert levels == RawLevels(text, True) and levels != plain[:2] and repr(levels) == repr(plain)
    assert pickle.loads(pickle.dumps(levels)) == plain and type(pickle.loads(pickle.dumps(levels))) is tuple
    assert isinstance(levels, c.Sequence) and levels.index((100.0, 3.0)) == 2
    assert levels.count((1.0, 1.0)) == 0 and levels.count((100.5, 2.0)) == 1
    with pytest.raises(IndexError):
        levels[3]
    assert not RawLevels(b"[]", True) and len(RawLevels(b" [ ] ", False)) == 0
    book = BookUpdate(venue="v", symbol="A/B", bids=levels, asks=RawLevels(b"[]", False), ts_event=1,
                      ts_init=1)
    assert msgspec.json.decode(encode_json(book))["bids"] == [list(level) for level in plain]


def test_a_malformed_level_deep_in_a_book_rejects_that_line_only(tmp_path: Path) -> None:
    good = b'{"type":"BookUpdate","venue":"v","symbol":"A/B","bids":[[1.0,1.0],[0.9,2.0]],' \
           b'"asks":[[1.1,1.0]],"ts_event":1,"ts_init":1}'
    bad = good.replace(b"[0.9,2.0]", b"[0.9,-2.0]")
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join([good, bad, good.replace(b'"ts_event":1', b'"ts_event":2')]) + b"\n")
    reader = open_reader(path)
    books = [e for batch in reader.batches() for e in batch]
    assert [b.ts_event for b in books] == [1, 2]
    assert reader.stats.malformed == 1 and reader.stats.examples[0][0] == 2
    assert type(books[0].bids) is RawLevels and list(books[0].bids) == [(1.0, 1.0), (0.9, 2.0)]
