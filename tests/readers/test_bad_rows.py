"""Every reader gives exactly the good records of a file and counts each bad one by its reason,
whatever is mixed in; arbitrary bytes never crash a reader; the snapshot ``arb scan`` reads does
the same; ``book.check_book`` is the rule they share."""

from __future__ import annotations

import collections
import csv
import io
import itertools
import json
import math
import sqlite3
import typing as t
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbitrage.book_check import BOOK_PROBLEMS, check_book
from arbitrage.errors import DataError
from arbitrage.events import BookUpdate
from arbitrage.readers.contract import REASONS
from arbitrage.readers.formats import open_reader
from arbitrage.readers.snapshot import load_snapshot_csv
from arbitrage.storage.writer import Writer

T_NS = 1_700_000_000_000_000_000
slow = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read(path: Path | str) -> tuple[list[t.Any], dict[str, t.Any]]:
    reader = open_reader(path)
    return [e for batch in reader.batches() for e in batch], reader.stats.to_dict()


# -- the one book check ----------------------------------------------------------------------------

finite = st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False)
anything = st.one_of(st.floats(), st.integers(-5, 5), st.text(max_size=3), st.none())


@given(st.lists(st.tuples(finite, finite), max_size=6), st.lists(st.tuples(finite, finite), max_size=6))
def test_check_book_passes_sorted_positive_finite_sides_only(bids: list[tuple[float, float]],
                                                             asks: list[tuple[float, float]]) -> None:
    prices = [p for p, _ in bids]
    ask_prices = [p for p, _ in asks]
    ordered = (all(a > b for a, b in itertools.pairwise(prices))
               and all(a < b for a, b in itertools.pairwise(ask_prices)))
    want = "empty" if not bids and not asks else None if ordered else "unsorted"
    assert check_book(bids, asks) == want


@given(st.lists(st.tuples(anything, anything), min_size=1, max_size=3), st.booleans())
def test_check_book_refuses_any_level_that_is_not_a_positive_finite_pair(levels: list[tuple[t.Any, t.Any]],
                                                                         on_bids: bool) -> None:
    good = all(isinstance(x, int | float) and not isinstance(x, bool) and 0 < x < math.inf
               for level in levels for x in level)
    got = check_book(levels, []) if on_bids else check_book([], levels)
    if not good:  # refused: as "level", or as "unsorted" when the order breaks before the bad level
        assert got in ("level", "unsorted")
    assert got in (None, "unsorted", "level") and set(BOOK_PROBLEMS) <= set(REASONS)


def test_check_book_passes_a_crossed_book_and_refuses_shapes_that_are_not_pairs() -> None:
    assert check_book([(101.0, 1.0)], [(100.0, 1.0)]) is None  # crossed: the strategies skip it
    assert check_book([(1.0, 1.0, 1.0)], []) == "level"
    assert check_book([5.0], []) == "level"  # type: ignore[list-item]
    assert check_book([], [(math.nan, 1.0)]) == "level" and check_book([(1.0, math.inf)], []) == "level"


# -- top-of-book CSV (replay) and its snapshot (scan) ---------------------------------------------

HEADER = ["symbol", "timestamp", "bid_price", "bid_volume", "ask_price", "ask_volume"]
BAD_CELLS = ["abc", "nan", "NaN", "-1", "0", "inf", "-inf", "1e999", " ", "1,5"]


@st.composite
def csv_rows(draw: st.DrawFn) -> tuple[list[list[str]], list[list[str]], collections.Counter[str]]:
    """Good rows (one market each, bid below ask), the same with bad rows mixed in, and why each
    bad row is skipped."""
    good = []
    for i in range(draw(st.integers(1, 12))):
        bid = draw(st.floats(1.0, 1000.0))
        good.append([f"C{i}/USDT", f"2023-03-02 15:36:{i:02d}.529", repr(bid), "1.5", repr(bid * 1.001), "2"])
    rows = [list(r) for r in good]
    expected: collections.Counter[str] = collections.Counter()
    for _ in range(draw(st.integers(1, 8))):
        row = list(draw(st.sampled_from(good)))
        kind = draw(st.sampled_from(["cell", "symbol", "timestamp", "volume_only"]))
        if kind == "cell":
            row[draw(st.sampled_from([2, 3, 4, 5]))] = draw(st.sampled_from(BAD_CELLS))
            reason = "level"
        elif kind == "symbol":
            row[0] = draw(st.sampled_from(["", "BTCUSDT", "A/B/C"]))
            reason = "symbol"
        elif kind == "timestamp":
            row[1] = draw(st.sampled_from(["", "yesterday", "nan", "inf", "1e30"]))
            reason = "timestamp"
        else:  # a volume without its price
            row[2] = ""
            reason = "level"
        rows.insert(draw(st.integers(0, len(rows))), row)
        expected[reason] += 1
    return good, rows, expected


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    path.write_text(out.getvalue())
    return path


@slow
@given(csv_rows())
def test_top_of_book_csv_gives_the_good_rows_and_counts_the_bad_ones(
        tmp_path: Path, case: tuple[list[list[str]], list[list[str]], collections.Counter[str]]) -> None:
    good, rows, expected = case
    events, stats = read(write_csv(tmp_path / "book.csv", rows))
    assert [(e.symbol, e.bids[0][0], e.asks[0][0]) for e in events] == [
        (r[0], float(r[2]), float(r[4])) for r in good]
    assert stats["reasons"] == dict(expected) and stats["malformed"] == sum(expected.values())
    snap = load_snapshot_csv(tmp_path / "book.csv")  # a snapshot row needs no timestamp
    assert len(snap.books) == len(good)
    assert snap.rejected == {k: v for k, v in expected.items() if k != "timestamp"}
    assert snap.skipped_rows == sum(snap.rejected.values())


@pytest.mark.parametrize("cell", BAD_CELLS)
@pytest.mark.parametrize("column", [2, 3, 4, 5])
def test_a_csv_price_or_volume_that_is_not_a_positive_number_rejects_the_row(tmp_path: Path, cell: str,
                                                                              column: int) -> None:
    good = ["BTC/USDT", "2023-03-02 15:36:06.529", "100.0", "1", "100.1", "1"]
    bad = list(good)
    bad[column] = cell
    events, stats = read(write_csv(tmp_path / "book.csv", [good, bad]))
    assert len(events) == 1 and events[0].bids and events[0].asks  # no one-sided book from the bad row
    assert stats["reasons"] == {"level": 1}


def test_a_csv_side_whose_cells_are_empty_is_a_one_sided_book(tmp_path: Path) -> None:
    events, stats = read(write_csv(tmp_path / "book.csv", [["BTC/USDT", "2023-03-02 15:36:06.529", "", "",
                                                             "100.1", "1"]]))
    assert events[0].bids == () and events[0].asks == ((100.1, 1.0),) and stats["malformed"] == 0


def test_list_columns_out_of_order_reject_the_row(tmp_path: Path) -> None:
    text = (',bids,asks,timestamp\nBTC/USDT,"[[1.0, 1.0], [2.0, 1.0]]","[[3.0, 1.0]]",2023-03-02 15:36:06\n'
            'ETH/USDT,"[[2.0, 1.0], [1.0, 1.0]]","[[3.0, 1.0]]",2023-03-02 15:36:06\n'
            'SOL/USDT,"[[2.0, 1.0], [1.0]]","[[3.0, 1.0]]",2023-03-02 15:36:06\n')
    (tmp_path / "lists.csv").write_text(text)
    events, stats = read(tmp_path / "lists.csv")
    assert [e.symbol for e in events] == ["ETH/USDT"] and stats["reasons"] == {"level": 1, "unsorted": 1}


# -- Tardis -----------------------------------------------------------------------------------------

TARDIS_HEADER = ("exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,"
                 "bids[0].amount,asks[1].price,asks[1].amount,bids[1].price,bids[1].amount")
TARDIS_GOOD = "binance,BTCUSDT,{t},{t},60001.0,1.0,60000.0,1.0,60002.0,1.0,59999.0,1.0"
TARDIS_BAD = {
    "level": ["binance,BTCUSDT,{t},{t},abc,1.0,60000.0,1.0,,,,", "binance,BTCUSDT,{t},{t},60001.0,-1,,,,,,",
              "binance,BTCUSDT,{t},{t},inf,1,,,,,,", "binance,BTCUSDT,{t},{t},nan,1,,,,,,"],
    "unsorted": ["binance,BTCUSDT,{t},{t},60002.0,1.0,60000.0,1.0,60001.0,1.0,59999.0,1.0",
                 "binance,BTCUSDT,{t},{t},60001.0,1.0,60000.0,1.0,60002.0,1.0,60000.0,1.0"],
    "empty": ["binance,BTCUSDT,{t},{t},,,,,,,,"],
    "symbol": ["binance,XYZ,{t},{t},60001.0,1.0,60000.0,1.0,,,,"],
    "schema": ["binance,BTCUSDT,soon,{t},60001.0,1.0,60000.0,1.0,,,,", ",BTCUSDT,{t},{t},60001.0,1.0,,,,,,",
               "binance,BTCUSDT,{t}", "binance,BTCUSDT,99999999999999999999,{t},60001.0,1.0,,,,,,"],
}


@slow
@given(st.lists(st.tuples(st.sampled_from(sorted(TARDIS_BAD)), st.integers(0, 3)), max_size=8),
       st.integers(1, 10))
def test_tardis_csv_gives_the_good_rows_and_counts_the_bad_ones(
        tmp_path: Path, bad: list[tuple[str, int]], good_rows: int) -> None:
    lines = [TARDIS_GOOD.format(t=1_700_000_000_000_000 + i) for i in range(good_rows)]
    expected: collections.Counter[str] = collections.Counter()
    for n, (reason, pick) in enumerate(bad):
        lines.insert(n % (len(lines) + 1), TARDIS_BAD[reason][pick % len(TARDIS_BAD[reason])].format(t=5))
        expected[reason] += 1
    path = tmp_path / "book_snapshot_2.csv"
    path.write_text("\n".join([TARDIS_HEADER, *lines]) + "\n")
    events, stats = read(path)
    assert len(events) == good_rows and all(e.bids[0][0] == 60000.0 for e in events)
    assert stats["reasons"] == dict(expected)


# -- SQLite books ------------------------------------------------------------------------------------

SQLITE_BAD = {
    "level": [("[[NaN, 1]]", "[[2, 1]]"), ("[[1e999, 1]]", "[[2, 1]]"), ("[[1, -1]]", "[[2, 1]]"),
              ("x", "[]"), (None, "[]"), ("[[1]]", "[[2, 1]]")],
    "unsorted": [("[[1, 1], [2, 1]]", "[[3, 1]]"), ("[[1, 1]]", "[[3, 1], [2, 1]]")],
    "empty": [("[]", "[]")],
}


def test_sqlite_rows_that_are_not_good_books_are_skipped_by_reason(tmp_path: Path) -> None:
    db = tmp_path / "arb.db"
    good = [BookUpdate(venue="a", symbol="BTC/USDT", bids=((100.0, 1.0),), asks=((101.0, 1.0),),
                       ts_event=i, ts_init=i) for i in range(1, 4)]
    with Writer(db, "r") as writer:
        writer.start_run(source="sim", strategy="x", settings={})
        writer.write_batch(good)
    expected: collections.Counter[str] = collections.Counter()
    with sqlite3.connect(db) as conn:
        insert = ("INSERT INTO books (run_id, venue, symbol, ts_event, ts_init, bids, asks) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)")
        for reason, rows in SQLITE_BAD.items():
            for bids, asks in rows:
                conn.execute(insert, ("r", "a", "BTC/USDT", 9, 9, bids, asks))
                expected[reason] += 1
        for venue, symbol, ts in (("a", "BTCUSDT", 9), ("", "BTC/USDT", 9), (None, "BTC/USDT", 9),
                                  ("a", 7, 9)):
            conn.execute(insert, ("r", venue, symbol, ts, ts, "[[1, 1]]", "[[2, 1]]"))
            expected["symbol"] += 1
        for ts in ("soon", -1, 1.5, 9.9e30):
            conn.execute(insert, ("r", "a", "BTC/USDT", ts, 9, "[[1, 1]]", "[[2, 1]]"))
            expected["schema"] += 1
    conn.close()
    events, stats = read(db)
    assert events == good and stats["reasons"] == dict(expected)


# -- arbitrary bytes ---------------------------------------------------------------------------------


@slow
@given(st.lists(st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode),
                          st.sampled_from([b'{"ts":1,"venue":"a","symbol":"A/B","bids":[[1,2]]',
                                           b'{"ts":1,"venue":"a","symbol":"A/B","bids":[[1,2]],"asks":[]}',
                                           b'[[1,2]]', b'{}', b'null', b'{"venue":"a"}'])), max_size=20))
def test_no_bytes_crash_the_jsonl_reader(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "any.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines) + b"\n")
    try:
        events, stats = read(path)
    except DataError as exc:  # an empty file, or one whose head says SQLite, is refused in one line
        assert "\n" not in str(exc)
        return
    assert len(events) + stats["malformed"] == sum(1 for line in lines if line.strip(b" \t\r\n\x0b\x0c"))
    assert set(stats["reasons"]) <= set(REASONS)
    for book in events:
        assert check_book(book.bids, book.asks) is None


@slow
@given(st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=8), max_size=10))
def test_no_cells_crash_the_csv_reader(tmp_path: Path, rows: list[list[str]]) -> None:
    path = write_csv(tmp_path / "any.csv", rows)
    events, stats = read(path)
    assert len(events) + stats["malformed"] <= max(stats["lines"], 0) + 1
    for book in events:
        assert check_book(book.bids, book.asks) is None


def test_a_recording_whose_lines_are_all_bad_says_so(tmp_path: Path) -> None:
    from arbitrage.backtest.runner import run_backtest
    from tests.backtest._data import settings as backtest_settings

    path = tmp_path / "bad.jsonl"
    book = {"ts": 1, "venue": "a", "symbol": "A/B", "bids": [[1, 0]], "asks": []}
    path.write_text(json.dumps(book) + "\nxx\n")
    with pytest.raises(DataError, match=r"no book to replay \(2 lines, 2 skipped: json 1, level 1\)"):
        run_backtest(backtest_settings(tmp_path), [path], storage=False)
