"""Order-book snapshots for ``arb scan``: the latest book per market of a top-of-book CSV table or a
JSON-lines recording, read by the replay's own readers and row helpers.

CSV: one row per market, columns ``symbol`` (or an unnamed first column holding the symbol),
optional ``timestamp``, ``base``, ``quote``, and ``bid_price``, ``bid_volume``, ``ask_price``,
``ask_volume``. Both layouts of the MO-book Binance.US snapshots load (2022: symbol in the unnamed
first column plus ``bids``/``asks`` lists; 2023: a ``symbol`` column and a row number first). Each
row becomes a single-level book. A side whose price and volume cells are empty is left out of that
book and counted; a row with neither side gives no book. A row whose price or volume is there but
is not a positive finite number (``abc``, ``nan``, ``-1``, ``inf``) is rejected whole and counted
by reason (``check_book``), never read as a one-sided book. When the price columns are absent,
the ``bids``/``asks`` list columns are read instead (every level they hold).

JSON lines: read by the replay's own reader (``ParallelJsonLinesReader``) under the recording
rules of ``docs/formats.md`` (the minimal form ``{"ts": ms, "venue", "symbol", "bids": [[p, a],
...], "asks": ...}`` or encoded ``BookUpdate`` events); the latest book per venue and symbol wins
(by ``ts_event``, then by line order). Lines the reader skips as malformed, and lines that are not
books (``MarketsLoaded``), are counted as skipped.

Timestamps without a zone are read as UTC. Markets get ``taker_fee`` (files carry no fees), no
precision and no minimums.
"""

from __future__ import annotations

import csv
import typing as t
from pathlib import Path

import msgspec

from arbitrage.book import check_book
from arbitrage.errors import DataError
from arbitrage.events import BookUpdate, Market, MarketsLoaded
from arbitrage.readers.csv import DEFAULT_CSV_VENUE, market_of, parse_ts_ns, row_side
from arbitrage.readers.parallel import ParallelJsonLinesReader

DEFAULT_TAKER_FEE = 0.001
"""Fee given to markets read from files, which carry none (Binance's base spot taker fee)."""


class Snapshot(msgspec.Struct, kw_only=True):
    """Markets and their latest books read from one file."""

    venue: str
    markets: tuple[Market, ...]
    books: tuple[BookUpdate, ...]
    rows: int = 0
    """Rows (CSV) or lines (JSON lines) read."""
    skipped_bids: int = 0
    """Books whose bid side was empty, nan or not positive (left out of the book)."""
    skipped_asks: int = 0
    skipped_rows: int = 0
    """Rows or lines that gave no book at all."""
    rejected: dict[str, int] = {}
    """Rows or lines skipped as malformed, per reason (``readers.contract.REASONS``)."""

    def markets_loaded(self, staleness_ms: float = float("inf"), ts_init: int = 0) -> list[MarketsLoaded]:
        """One ``MarketsLoaded`` per venue in the snapshot, for feeding a bus."""
        venues = sorted({b.venue for b in self.books} | {self.venue})
        return [MarketsLoaded(venue=v, markets=self.markets, staleness_ms=staleness_ms, ts_init=ts_init)
                for v in venues]


def load_snapshot_csv(path: str | Path, *, venue: str = DEFAULT_CSV_VENUE,
                      taker_fee: float = DEFAULT_TAKER_FEE) -> Snapshot:
    """Read a top-of-book CSV snapshot: one market and one single-level book per row.

    :param venue: the venue name given to every book.
    :raises DataError: if the file cannot be read, has no symbol or price columns, or no book.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or ())
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from exc
    symbol_col = "symbol" if "symbol" in columns else (columns[0] if columns else None)
    has_prices = "bid_price" in columns or "ask_price" in columns
    has_lists = "bids" in columns or "asks" in columns
    if symbol_col is None or not (has_prices or has_lists):
        raise DataError(f"{path}: not a top-of-book snapshot (columns: {columns})")
    markets: dict[str, Market] = {}
    books: dict[str, BookUpdate] = {}
    snap = Snapshot(venue=venue, markets=(), books=(), rows=len(rows))
    rejected: dict[str, int] = {}
    for row in rows:
        symbol = (row.get(symbol_col) or "").strip()
        market = market_of(symbol, row.get("base"), row.get("quote"), taker_fee) if symbol else None
        bids = row_side(row, "bid_price", "bid_volume", "bids")
        asks = row_side(row, "ask_price", "ask_volume", "asks")
        problem = ("symbol" if market is None else "level" if bids is None or asks is None
                   else check_book(bids, asks) if bids or asks else None)
        if problem is not None:
            rejected[problem] = rejected.get(problem, 0) + 1
            snap.skipped_rows += 1
            continue
        assert market is not None and bids is not None and asks is not None
        markets[symbol] = market
        snap.skipped_bids += not bids
        snap.skipped_asks += not asks
        if not bids and not asks:
            snap.skipped_rows += 1
            continue
        ts = parse_ts_ns(row.get("timestamp"))
        books[symbol] = BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks, ts_event=ts, ts_init=ts)
    snap.markets = tuple(markets.values())
    snap.books = tuple(books.values())
    snap.rejected = dict(sorted(rejected.items()))
    if not snap.books:
        raise DataError(f"{path}: no book in the snapshot ({_skipped(snap)})")
    return snap


def _skipped(snap: Snapshot) -> str:
    text = f"{snap.rows} rows"
    if snap.skipped_rows:
        text += f", {snap.skipped_rows} without a book"
    if snap.rejected:
        text += " (" + ", ".join(f"{reason} {count}" for reason, count in snap.rejected.items()) + ")"
    return text


def load_snapshot_jsonl(path: str | Path, *, venue: str | None = None,
                        taker_fee: float = DEFAULT_TAKER_FEE) -> Snapshot:
    """Read a JSON-lines recording and keep the latest book per venue and symbol.

    :param venue: keep only this venue's books; None keeps every venue.
    :raises DataError: if the file cannot be read or gives no book (of ``venue``).
    """
    path = Path(path)
    latest: dict[tuple[str, str], tuple[int, int, BookUpdate]] = {}
    markets: dict[str, Market] = {}
    order = not_books = 0
    try:
        reader = ParallelJsonLinesReader(path, path.stat().st_size)
        for batch in reader.batches():
            for event in batch:
                order += 1
                if type(event) is not BookUpdate:
                    not_books += 1
                    continue
                book = t.cast(BookUpdate, event)
                if venue is not None and book.venue != venue:
                    continue
                if book.symbol not in markets:
                    market = market_of(book.symbol, None, None, taker_fee)
                    assert market is not None, "the reader passes BASE/QUOTE symbols only"
                    markets[book.symbol] = market
                key = (book.venue, book.symbol)
                seen = latest.get(key)
                if seen is None or (book.ts_event, order) >= seen[:2]:
                    latest[key] = (book.ts_event, order, book)
    except OSError as exc:
        raise DataError(f"{path}: cannot read JSON lines ({exc})") from exc
    books = tuple(item[2] for item in latest.values())
    names = sorted({b.venue for b in books})
    stats = reader.stats
    snap = Snapshot(venue=venue or (names[0] if names else "unknown"), markets=tuple(markets.values()),
                    books=books, rows=stats.lines, skipped_bids=sum(not b.bids for b in books),
                    skipped_asks=sum(not b.asks for b in books), skipped_rows=stats.malformed + not_books,
                    rejected=dict(sorted(stats.reasons.items())))
    if not books:
        raise DataError(f"{path}: no book in the snapshot ({_skipped(snap)})")
    return snap


def load_snapshot(path: str | Path, *, venue: str | None = None,
                  taker_fee: float = DEFAULT_TAKER_FEE) -> Snapshot:
    """Read a CSV snapshot or (``.jsonl``/``.json``/``.ndjson``) a JSON-lines recording.

    :raises DataError: if the file cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return load_snapshot_jsonl(path, venue=venue, taker_fee=taker_fee)
    return load_snapshot_csv(path, venue=venue or DEFAULT_CSV_VENUE, taker_fee=taker_fee)
