"""Snapshot files: both MO-book CSV layouts, skipped sides, and JSON-lines recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arbitrage.errors import DataError
from arbitrage.readers.snapshot import load_snapshot, load_snapshot_csv, load_snapshot_jsonl

MOBOOK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mobook"
needs_mobook = pytest.mark.skipif(not MOBOOK.is_dir(), reason=f"MO-book snapshots not found at {MOBOOK}")

LAYOUT_2022 = "\n".join([
    ",bids,asks,timestamp,nonce,base,quote,run_time (ms),bid_price,bid_volume,ask_price,ask_volume",
    'BTC/USD,"[[23092.36, 0.045906]]","[[23102.63, 0.011295]]",2022-08-02 21:59:45.368,2331048872,'
    "BTC,USD,57.8,23092.36,0.045906,23102.63,0.011295",
    "UST/USD,[],[],2022-08-02 21:59:46.066,3225972,UST,USD,57.0,,,,",
    'ETH/USD,"[[1656.6, 0.2438]]",[],2022-08-02 21:59:45.567,19,ETH,USD,1.0,1656.6,0.2438,,',
    'SOL/USD,"[[36.6, 2]]","[[36.7, 1]]",2022-08-02 21:59:45.567,19,SOL,USD,1.0,36.6,2,nan,1',
]) + "\n"
LAYOUT_2023 = """,symbol,timestamp,base,quote,bid_price,bid_volume,ask_price,ask_volume
0,ETH/BTC,2023-03-02 15:36:06.529,ETH,BTC,0.069735,0.012,0.069759,0.05
1,BNB/BTC,2023-03-02 15:36:06.583,BNB,BTC,0.0127426,0.05,0.0127545,3.0
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_2022_layout_reads_symbols_in_the_first_column_skips_empty_sides_rejects_bad_ones(
        tmp_path: Path) -> None:
    snap = load_snapshot_csv(write(tmp_path, "a.csv", LAYOUT_2022), venue="binanceus", taker_fee=0.002)
    assert [m.symbol for m in snap.markets] == ["BTC/USD", "UST/USD", "ETH/USD"]
    assert snap.markets[0].base == "BTC" and snap.markets[0].quote == "USD"
    assert all(m.taker_fee == 0.002 for m in snap.markets)
    books = {b.symbol: b for b in snap.books}
    assert set(books) == {"BTC/USD", "ETH/USD"}  # UST/USD has no side at all
    assert books["BTC/USD"].bids == ((23092.36, 0.045906),)
    assert books["BTC/USD"].asks == ((23102.63, 0.011295),)
    assert books["ETH/USD"].asks == ()
    assert (snap.rows, snap.skipped_bids, snap.skipped_asks, snap.skipped_rows) == (4, 1, 2, 2)
    assert snap.rejected == {"level": 1}  # SOL/USD: an ask price of nan rejects the row, not the side
    assert books["BTC/USD"].ts_event == 1_659_477_585_368_000_000  # read as UTC
    assert books["BTC/USD"].venue == "binanceus"


def test_2023_layout_reads_the_symbol_column(tmp_path: Path) -> None:
    snap = load_snapshot_csv(write(tmp_path, "b.csv", LAYOUT_2023))
    assert [b.symbol for b in snap.books] == ["ETH/BTC", "BNB/BTC"]
    assert snap.books[0].bids == ((0.069735, 0.012),) and snap.books[0].asks == ((0.069759, 0.05),)
    assert (snap.skipped_bids, snap.skipped_asks, snap.skipped_rows) == (0, 0, 0)


def test_list_columns_are_read_when_price_columns_are_absent(tmp_path: Path) -> None:
    text = ',bids,asks\nBTC/USD,"[[10.0, 1.0], [9.0, 2.0]]","[[11.0, 1.0]]"\n'
    snap = load_snapshot_csv(write(tmp_path, "c.csv", text))
    assert snap.books[0].bids == ((10.0, 1.0), (9.0, 2.0))
    assert snap.books[0].ts_event == 0


def test_a_file_without_prices_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a top-of-book snapshot"):
        load_snapshot_csv(write(tmp_path, "d.csv", "symbol,volume\nBTC/USD,1\n"))
    with pytest.raises(DataError, match="cannot read"):
        load_snapshot_csv(tmp_path / "missing.csv")


@needs_mobook
@pytest.mark.parametrize("name", ["Binance_US_orderbook_2022-08-02_21_59_48.csv",
                                  "Binance_US_orderbook_20221124_02_40_51.csv",
                                  "Binance_US_orderbook_20230302_15_36_09.csv",
                                  "Binance_US_orderbook_20230416_214743.csv"])
def test_every_mobook_layout_loads(name: str) -> None:
    snap = load_snapshot(MOBOOK / name)
    assert len(snap.books) > 10
    assert len(snap.books) + snap.skipped_rows == snap.rows == len(snap.markets)
    assert all(len(b.bids) <= 1 and len(b.asks) <= 1 for b in snap.books)
    assert all(b.ts_event > 1_600_000_000 * 10**9 for b in snap.books)


@needs_mobook
def test_every_mobook_snapshot_loads() -> None:
    files = sorted(MOBOOK.glob("*.csv"))
    assert len(files) >= 50
    skipped = sum(load_snapshot(f).skipped_bids for f in files)
    assert skipped > 0  # the 2022 files have markets with empty books (UST, ...)


def test_jsonl_keeps_the_latest_book_per_market_read_as_a_replay_reads_it(tmp_path: Path) -> None:
    lines = [
        {"ts": 2000, "venue": "a", "symbol": "BTC/USDT", "bids": [[101, 1]], "asks": [[102, 1]]},
        {"ts": 1000, "venue": "a", "symbol": "BTC/USDT", "bids": [[99, 1]], "asks": [[100, 1]]},
        {"ts": 1500, "venue": "b", "symbol": "BTC/USDT", "bids": [[98, 1]], "asks": [[99, 1]]},
        {"ts": 1500, "venue": "a", "symbol": "ETH/USDT", "bids": [[5.0, 2]], "asks": []},
        {"ts": 1600, "venue": "a", "symbol": "ETH/USDT", "bids": [["6.0", "2"]]},  # malformed, as in a replay
        {"type": "Heartbeat", "source": "x", "ts_init": 1},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\nnot json\n"
    path = write(tmp_path, "r.jsonl", text)
    snap = load_snapshot(path)
    books = {(b.venue, b.symbol): b for b in snap.books}
    assert books[("a", "BTC/USDT")].bids == ((101.0, 1.0),)
    assert books[("a", "BTC/USDT")].ts_event == 2_000_000_000
    assert books[("a", "ETH/USDT")].bids == ((5.0, 2.0),)
    assert (snap.rows, snap.skipped_rows, snap.skipped_asks) == (7, 3, 1)
    only_b = load_snapshot_jsonl(path, venue="b")
    assert [(b.venue, b.symbol) for b in only_b.books] == [("b", "BTC/USDT")]
    assert {m.symbol for m in snap.markets} == {"BTC/USDT", "ETH/USDT"}


def test_jsonl_reads_encoded_book_update_events(tmp_path: Path) -> None:
    from arbitrage.events import BookUpdate, encode_json

    event = BookUpdate(venue="a", symbol="ETH/BTC", bids=((0.05, 1.0),), asks=((0.051, 1.0),), ts_event=7,
                       ts_init=8)
    snap = load_snapshot(write(tmp_path, "e.jsonl", encode_json(event).decode() + "\n"))
    assert snap.books == (event,)


def test_snapshot_announces_its_markets_per_venue(tmp_path: Path) -> None:
    snap = load_snapshot_csv(write(tmp_path, "b.csv", LAYOUT_2023), venue="x")
    (loaded,) = snap.markets_loaded(staleness_ms=500.0, ts_init=3)
    assert (loaded.venue, loaded.staleness_ms, loaded.ts_init) == ("x", 500.0, 3)
    assert loaded.markets == snap.markets
