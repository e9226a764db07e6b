"""Every replay format parses, streams in file order and counts what it had to skip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from arbitrage.backtest.recording import RecordingWriter
from arbitrage.backtest.runner import run_backtest
from arbitrage.errors import DataError
from arbitrage.events import BookUpdate, MarketsLoaded
from arbitrage.readers.contract import split_symbol
from arbitrage.readers.formats import open_reader
from arbitrage.storage.writer import Writer
from tests.backtest._data import T, line, settings, write

MOBOOK = Path(__file__).resolve().parents[3] / "shared" / "data" / "mobook"


def read_all(spec: str | Path) -> tuple[list[BookUpdate | MarketsLoaded], dict[str, object]]:
    reader = open_reader(spec)
    events = [e for batch in reader.batches() for e in batch]
    return events, reader.stats.to_dict()


def test_jsonl_minimal_lines_become_books_in_ms_time(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [line(T, "A", [[1.5, 2.0]], [[1.6, 3.0]]), "",
                                       line(T + 1, "B", [], [[1.7, 1.0]], ts_init=(T + 2) * 1_000_000)])
    (a, b), stats = read_all(path)
    assert a == BookUpdate(venue="A", symbol="BTC/USDT", bids=((1.5, 2.0),), asks=((1.6, 3.0),),
                           ts_event=T * 1_000_000, ts_init=T * 1_000_000)
    assert (b.bids, b.ts_event, b.ts_init) == ((), (T + 1) * 1_000_000, (T + 2) * 1_000_000)
    assert stats["malformed"] == 0 and stats["format"] == "jsonl"


def test_jsonl_malformed_lines_are_skipped_and_counted_with_line_numbers(tmp_path: Path) -> None:
    good = line(T, "A", [[1.5, 2.0]], [[1.6, 3.0]])
    path = write(tmp_path / "r.jsonl", [
        good,
        '{"ts": 1, "venue": "A", "symbol": "BTC/USDT", "bids": [[1.5, 2.0]',  # 2: cut off
        line(T, "", [[1.5, 2.0]], [[1.6, 3.0]]),                              # 3: no venue
        line(T, "A", [[1.5, 2.0]], [[1.6, 3.0]], symbol="BTCUSDT"),           # 4: not BASE/QUOTE
        line(T, "A", [[-1.5, 2.0]], [[1.6, 3.0]]),                            # 5: negative price
        line(T, "A", [[1.5, 2.0]], [[1.6, 0.0]]),                             # 6: empty level
        json.dumps({"venue": "A", "symbol": "BTC/USDT", "bids": [[1, 1]], "asks": []}),  # 7: no ts
        json.dumps({"type": "Alert", "ts": T, "venue": "A", "symbol": "BTC/USDT"}),       # 8: not a book
        line(T, "A", [], []),                                                 # 9: no levels
        line(T, "A", [[1.5, 2.0, 3.0]], [[1.6, 3.0]]),                        # 10: not a pair
        "not json at all",                                                    # 11
        good,
    ])
    events, stats = read_all(path)
    assert len(events) == 2
    assert stats["malformed"] == 10
    assert stats["lines"] == 12
    assert [e["line"] for e in stats["examples"]] == [2, 3, 4, 5, 6]  # type: ignore[index]


def test_jsonl_encoded_events_and_markets_lines_read_exactly(tmp_path: Path) -> None:
    book = BookUpdate(venue="alpha", symbol="ETH/USDT", bids=((3000.5, 1.25),), asks=((3001.0, 0.5),),
                      ts_event=1_700_000_000_123_456_789, ts_init=1_700_000_000_125_000_001)
    from arbitrage.events import Market

    market = Market(symbol="ETH/USDT", base="ETH", quote="USDT", taker_fee=0.0008)
    markets = MarketsLoaded(venue="alpha", markets=(market,), staleness_ms=1500.0, ts_init=1)
    with RecordingWriter(tmp_path / "r.jsonl") as writer:
        writer.write_many([markets, book])
    text = (tmp_path / "r.jsonl").read_text().splitlines()
    assert json.loads(text[1])["ts"] == 1_700_000_000_123  # ms, as the format promises
    events, _ = read_all(tmp_path / "r.jsonl")
    assert events == [markets, book]


def test_zstd_recording_round_trips(tmp_path: Path) -> None:
    books = [BookUpdate(venue="v", symbol="SOL/USDT", bids=((150.0 - i / 100, 1.0 + i),),
                        asks=((150.1 + i / 100, 2.0),), ts_event=i * 1_000_000, ts_init=i * 1_000_000 + 5)
             for i in range(1, 5001)]
    path = tmp_path / "r.jsonl.zst"
    with RecordingWriter(path) as writer:
        writer.write_many(books)
    assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert path.stat().st_size < 0.25 * sum(len(json.dumps([b.bids, b.asks])) + 80 for b in books)
    events, stats = read_all(path)
    assert events == books
    assert stats["lines"] == 5000


@pytest.mark.parametrize(("name", "symbol", "bid", "ask", "ts_ms"), [
    ("Binance_US_orderbook_2022-08-02_21_59_48.csv", "BTC/USD", (23092.36, 0.045906), (23102.63, 0.011295),
     1659477585368),
    ("Binance_US_orderbook_20230416_214743.csv", None, None, None, None),
])
def test_mobook_top_of_book_csv_replays_every_row(name: str, symbol: str | None,
                                                  bid: tuple[float, float] | None,
                                                  ask: tuple[float, float] | None, ts_ms: int | None) -> None:
    path = MOBOOK / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    rows = len(path.read_text().splitlines()) - 1
    events, stats = read_all(path)
    assert stats["format"] == "csv"
    assert len(events) + stats["malformed"] == rows  # type: ignore[operator]
    assert len(events) > 0.8 * rows  # delisted markets (UST, XRP) have empty rows: counted, skipped
    assert all(isinstance(e, BookUpdate) and e.venue == "binanceus" and "/" in e.symbol for e in events)
    if symbol is not None:
        book = next(e for e in events if e.symbol == symbol)
        assert (book.bids[0], book.asks[0], book.ts_event // 1_000_000) == (bid, ask, ts_ms)


TARDIS = """\
exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,\
asks[1].price,asks[1].amount,bids[1].price,bids[1].amount
binance,BTCUSDT,1700000000000000,1700000000001500,60001.5,0.5,60000.0,1.25,60002.0,2.0,59999.5,3.0
binance,BTCUSDT,1700000000100000,1700000000101000,60001.0,0.75,60000.5,1.0,,,59999.0,0.5
coinbase,BTC-USD,1700000000200000,1700000000203000,60010.0,1.0,60009.0,1.0,60011.0,1.0,60008.0,1.0
binance,BTCUSDT,not-a-time,1700000000301000,60001.0,0.75,60000.5,1.0,,,,
binance,XYZ,1700000000400000,1700000000401000,1.0,1.0,0.9,1.0,,,,
binance,BTCUSDT,1700000000500000,1700000000501000,-5,1,60000.5,1.0,,,,
"""


@pytest.mark.parametrize("gz", [False, True])
def test_tardis_book_snapshot_csv_parses_levels_and_microsecond_times(tmp_path: Path, gz: bool) -> None:
    path = tmp_path / ("book_snapshot_2.csv.gz" if gz else "book_snapshot_2.csv")
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(TARDIS)
    else:
        path.write_text(TARDIS)
    events, stats = read_all(path)
    assert stats["format"] == "tardis"
    first, second, third = events
    assert first == BookUpdate(venue="binance", symbol="BTC/USDT", bids=((60000.0, 1.25), (59999.5, 3.0)),
                               asks=((60001.5, 0.5), (60002.0, 2.0)), ts_event=1_700_000_000_000_000_000,
                               ts_init=1_700_000_000_001_500_000)
    assert second.asks == ((60001.0, 0.75),) and len(second.bids) == 2  # a missing level ends the side
    assert (third.venue, third.symbol) == ("coinbase", "BTC/USD")
    assert stats["malformed"] == 3
    assert [e["line"] for e in stats["examples"]] == [5, 6, 7]  # type: ignore[index]


def test_sqlite_books_table_replays_a_stored_run(tmp_path: Path) -> None:
    db = tmp_path / "arb.db"
    books = [BookUpdate(venue=v, symbol="BTC/USDT", bids=((100.0 - i, 1.0),), asks=((101.0 + i, 2.0),),
                        ts_event=i * 10, ts_init=i * 10 + 1) for i in range(1, 4) for v in ("a", "b")]
    for run_id, part in (("old", books[:2]), ("new", books)):
        with Writer(db, run_id) as writer:
            writer.start_run(source="sim", strategy="cross_exchange", settings={})
            writer.write_batch(part)
    events, stats = read_all(db)  # the latest run that stored books
    assert events == books and stats["format"] == "sqlite"
    older, _ = read_all(f"{db}#old")
    assert older == books[:2]
    with pytest.raises(DataError, match="stored no books"):
        open_reader(f"{db}#missing")


def test_database_without_books_is_refused(tmp_path: Path) -> None:
    with Writer(tmp_path / "arb.db", "r") as writer:
        writer.start_run(source="sim", strategy="x", settings={})
    with pytest.raises(DataError, match="store_books"):
        open_reader(tmp_path / "arb.db")


def test_unknown_format_and_missing_file_raise_data_error(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match="unknown data format"):
        open_reader(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="no such data file"):
        open_reader(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(("raw", "pair"), [("BTC/USDT", ("BTC", "USDT")), ("btc-usd", ("BTC", "USD")),
                                           ("ETHBTC", ("ETH", "BTC")), ("SOL_USDC", ("SOL", "USDC")),
                                           ("XYZ", None), ("BTC-USD-PERP", None)])
def test_split_symbol_reads_exchange_spellings(raw: str, pair: tuple[str, str] | None) -> None:
    assert split_symbol(raw) == pair


def test_jsonl_lines_longer_than_a_read_block_and_crlf_endings_are_read_whole(tmp_path: Path) -> None:
    deep = [[100.0 - i / 1000, 1.0 + i] for i in range(6000)]  # ~150 KB: longer than a 64 KiB read
    lines = [line(T, "A", deep, [[101.0, 1.0]]), line(T + 1, "A", [[99.0, 1.0]], [[101.0, 1.0]])] * 3
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(x.encode() + b"\r\n" for x in lines))
    events, stats = read_all(path)
    assert [len(e.bids) for e in events] == [6000, 1] * 3  # type: ignore[union-attr]
    assert stats["malformed"] == 0 and stats["lines"] == 6


def test_corrupt_zstd_stream_is_a_data_error_not_a_partial_result(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.zst"
    with RecordingWriter(path) as writer:
        writer.write_many(BookUpdate(venue="v", symbol="BTC/USDT", bids=((1.0 + i, 1.0),),
                                     asks=((99.0 + i, 1.0),), ts_event=i, ts_init=i) for i in range(20_000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\x00" * 64 + data[len(data) // 2 + 64:])
    with pytest.raises(DataError, match="corrupt zstd"):
        run_backtest(settings(tmp_path), [path], storage=False)
