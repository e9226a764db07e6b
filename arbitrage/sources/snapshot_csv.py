"""Order-book snapshots from files: top-of-book CSV tables and JSON-lines recordings.

CSV: one row per market, columns ``symbol`` (or an unnamed first column holding the symbol),
optional ``timestamp``, ``base``, ``quote``, and ``bid_price``, ``bid_volume``, ``ask_price``,
``ask_volume``. Both layouts of the MO-book Binance.US snapshots load (2022: symbol in the unnamed
first column plus ``bids``/``asks`` lists; 2023: a ``symbol`` column and a row number first). Each
row becomes a single-level book. A side whose price or volume is empty, ``nan`` or not positive is
left out of that book and counted; a row with neither side gives no book. When the price columns
are absent, the ``bids``/``asks`` list columns are read instead (every level they hold).

JSON lines: one book per line, ``{"ts": ms, "venue", "symbol", "bids": [[p, a], ...], "asks": ...}``
(encoded ``BookUpdate`` events, ``{"type": "BookUpdate", ...}``, are read too); the latest book per
venue and symbol wins (by timestamp, then by line order). Lines that are not books are skipped
and counted.

Timestamps without a zone are read as UTC. Markets get ``taker_fee`` (files carry no fees), no
precision and no minimums.
"""

from __future__ import annotations

import csv
import json
import math
import typing as t
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from arbitrage.errors import DataError
from arbitrage.events import BookUpdate, Level, Market, MarketsLoaded

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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

    def markets_loaded(self, staleness_ms: float = float("inf"), ts_init: int = 0) -> list[MarketsLoaded]:
        """One ``MarketsLoaded`` per venue in the snapshot, for feeding a bus."""
        venues = sorted({b.venue for b in self.books} | {self.venue})
        return [MarketsLoaded(venue=v, markets=self.markets, staleness_ms=staleness_ms, ts_init=ts_init)
                for v in venues]


def _float(text: str | None) -> float:
    if text is None:
        return math.nan
    text = text.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_ts_ns(text: str | None) -> int:
    """``2023-03-02 15:36:06.529`` (UTC) or epoch seconds/ms -> ns; 0 if absent or unreadable."""
    if not text or not text.strip():
        return 0
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return 0
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    return int(number * 1e6) * 1000 if number > 1e11 else int(number * 1e9)


def _levels_text(text: str | None) -> tuple[Level, ...]:
    if not text or not text.strip():
        return ()
    try:
        raw = json.loads(text)
    except ValueError:
        return ()
    return _levels(raw)


def _levels(raw: t.Any) -> tuple[Level, ...]:
    out = []
    for item in raw or ():
        try:
            price, amount = float(item[0]), float(item[1])
        except (TypeError, ValueError, IndexError):
            continue
        if price > 0.0 and amount > 0.0 and math.isfinite(price) and math.isfinite(amount):
            out.append((price, amount))
    return tuple(out)


def row_side(row: dict[str, str], price_col: str, volume_col: str, list_col: str) -> tuple[Level, ...]:
    """One side of a CSV row as levels: the price/volume columns, else the list column; () if unusable."""
    if price_col in row:
        price, volume = _float(row.get(price_col)), _float(row.get(volume_col))
        if price > 0.0 and volume > 0.0 and math.isfinite(price) and math.isfinite(volume):
            return ((price, volume),)
        return ()
    return _levels_text(row.get(list_col))


def market_of(symbol: str, base: str | None, quote: str | None, taker_fee: float) -> Market | None:
    """The market of a row (base/quote from their columns or from ``BASE/QUOTE``); None if neither."""
    if not base or not quote:
        if symbol.count("/") != 1:
            return None
        base, quote = symbol.split("/")
    return Market(symbol=symbol, base=base.strip(), quote=quote.strip(), taker_fee=taker_fee)


def load_snapshot_csv(path: str | Path, *, venue: str = "binanceus",
                      taker_fee: float = DEFAULT_TAKER_FEE) -> Snapshot:
    """Read a top-of-book CSV snapshot: one market and one single-level book per row.

    :param venue: the venue name given to every book.
    :raises DataError: if the file cannot be read or has no symbol or price columns.
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
    for row in rows:
        symbol = (row.get(symbol_col) or "").strip()
        market = market_of(symbol, row.get("base"), row.get("quote"), taker_fee) if symbol else None
        if market is None:
            snap.skipped_rows += 1
            continue
        markets[symbol] = market
        bids = row_side(row, "bid_price", "bid_volume", "bids")
        asks = row_side(row, "ask_price", "ask_volume", "asks")
        snap.skipped_bids += not bids
        snap.skipped_asks += not asks
        if not bids and not asks:
            snap.skipped_rows += 1
            continue
        ts = parse_ts_ns(row.get("timestamp"))
        books[symbol] = BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks, ts_event=ts, ts_init=ts)
    snap.markets = tuple(markets.values())
    snap.books = tuple(books.values())
    return snap


def load_snapshot_jsonl(path: str | Path, *, venue: str | None = None,
                        taker_fee: float = DEFAULT_TAKER_FEE) -> Snapshot:
    """Read a JSON-lines recording and keep the latest book per venue and symbol.

    :param venue: keep only this venue's books; None keeps every venue.
    :raises DataError: if the file cannot be read.
    """
    path = Path(path)
    latest: dict[tuple[str, str], tuple[int, int, BookUpdate]] = {}
    markets: dict[str, Market] = {}
    lines = skipped = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if not line.strip():
                    continue
                lines += 1
                book = _book_from_json(line)
                if book is None:
                    skipped += 1
                    continue
                if venue is not None and book.venue != venue:
                    continue
                market = market_of(book.symbol, None, None, taker_fee)
                if market is None:
                    skipped += 1
                    continue
                markets.setdefault(book.symbol, market)
                key = (book.venue, book.symbol)
                seen = latest.get(key)
                if seen is None or (book.ts_event, number) >= seen[:2]:
                    latest[key] = (book.ts_event, number, book)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read JSON lines ({exc})") from exc
    books = tuple(item[2] for item in latest.values())
    names = sorted({b.venue for b in books})
    return Snapshot(venue=venue or (names[0] if names else "unknown"), markets=tuple(markets.values()),
                    books=books, rows=lines, skipped_bids=sum(not b.bids for b in books),
                    skipped_asks=sum(not b.asks for b in books), skipped_rows=skipped)


def _book_from_json(line: str) -> BookUpdate | None:
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("symbol"), str):
        return None
    if raw.get("type", "BookUpdate") != "BookUpdate":
        return None
    if "ts_event" in raw:
        ts = int(raw["ts_event"])
    elif isinstance(raw.get("ts"), int):
        ts = raw["ts"] * 1_000_000
    elif isinstance(raw.get("ts"), float):
        ts = int(raw["ts"] * 1e6)
    else:
        ts = 0
    bids, asks = _levels(raw.get("bids")), _levels(raw.get("asks"))
    if not bids and not asks:
        return None
    return BookUpdate(venue=str(raw.get("venue") or "unknown"), symbol=raw["symbol"], bids=bids, asks=asks,
                      ts_event=ts, ts_init=int(raw.get("ts_init", ts)))


def load_snapshot(path: str | Path, *, venue: str | None = None,
                  taker_fee: float = DEFAULT_TAKER_FEE) -> Snapshot:
    """Read a CSV snapshot or (``.jsonl``/``.json``/``.ndjson``) a JSON-lines recording.

    :raises DataError: if the file cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return load_snapshot_jsonl(path, venue=venue, taker_fee=taker_fee)
    return load_snapshot_csv(path, venue=venue or "binanceus", taker_fee=taker_fee)
