"""CSV formats: top-of-book tables (MO-book snapshots) and Tardis ``book_snapshot_N`` files, and the
row helpers the top-of-book table and ``arb scan``'s snapshots share (``row_side``, ``market_of``,
``parse_ts_ns``)."""

from __future__ import annotations

import collections.abc as c
import contextlib
import csv
import gzip
import io
import math
import typing as t
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from arbitrage.book import check_book
from arbitrage.errors import DataError
from arbitrage.events import BookUpdate, Level, Market
from arbitrage.readers.contract import BATCH, Item, Reader, Symbols, split_symbol

DEFAULT_CSV_VENUE = "binanceus"
"""Venue of top-of-book CSV rows without a ``venue`` column (the MO-book files are Binance.US)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_MAX = 2**63
"""Timestamps are int64 nanoseconds."""


def parse_ts_ns(text: str | None) -> int:
    """``2023-03-02 15:36:06.529`` (UTC) or epoch seconds/ms -> ns; 0 if absent, unreadable or
    outside 1970 .. 2262 (int64 nanoseconds)."""
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
        ns = (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    else:
        if not math.isfinite(number):
            return 0
        ns = int(number * 1e6) * 1000 if number > 1e11 else int(number * 1e9)
    return ns if 0 < ns < _NS_MAX else 0


def _cell(row: dict[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def row_side(row: dict[str, str], price_col: str, volume_col: str, list_col: str) -> tuple[Level, ...] | None:
    """One side of a CSV row as levels: the price/volume columns, else the list column.

    :returns: () when the side is absent (its cells empty, or an empty list), None when it is
        there but unreadable (``abc``, a price without a volume, a list that is not of pairs). The
        values are not checked: ``check_book`` rejects ``nan``, ``inf``, ``-1`` and levels out of
        order, for the whole row.
    """
    if price_col in row:
        price, volume = _cell(row, price_col), _cell(row, volume_col)
        if not price and not volume:
            return ()
        try:
            return ((float(price), float(volume)),)
        except ValueError:
            return None
    text = _cell(row, list_col)
    if not text:
        return ()
    try:
        raw = msgspec.json.decode(text)
        return tuple((float(price), float(amount)) for price, amount in raw)
    except (msgspec.DecodeError, TypeError, ValueError):
        return None


def market_of(symbol: str, base: str | None, quote: str | None, taker_fee: float) -> Market | None:
    """The market of a row (base/quote from their columns or from ``BASE/QUOTE``); None if neither."""
    if not base or not quote:
        if symbol.count("/") != 1:
            return None
        base, quote = symbol.split("/")
    return Market(symbol=symbol, base=base.strip(), quote=quote.strip(), taker_fee=taker_fee)


def _open_text(path: Path, raw: t.BinaryIO) -> t.TextIO:
    return io.TextIOWrapper(_unzipped(path, raw), encoding="utf-8", newline="")


def _unzipped(path: Path, raw: t.BinaryIO) -> t.BinaryIO:
    return t.cast(t.BinaryIO, gzip.GzipFile(fileobj=raw)) if path.name.endswith(".gz") else raw


class TopOfBookCsvReader(Reader):
    """Top-of-book CSV rows (one single-level book each)."""

    format = "csv"

    def _symbol_column(self, reader: csv.DictReader[str]) -> str:
        columns = list(reader.fieldnames or ())
        symbol_col = "symbol" if "symbol" in columns else (columns[0] if columns else None)
        if symbol_col is None or not ({"bid_price", "ask_price", "bids", "asks"} & set(columns)):
            raise DataError(f"{self.path}: not a top-of-book CSV (columns: {columns})")
        return symbol_col

    def check(self) -> None:
        """:raises DataError: without a symbol column and price (or list) columns."""
        try:
            with open(self.path, "rb") as raw, _open_text(self.path, raw) as text:
                self._symbol_column(csv.DictReader(text))
        except (csv.Error, UnicodeDecodeError, EOFError, OSError) as exc:
            raise DataError(f"{self.path}: unreadable CSV header ({exc})") from exc

    def symbols(self) -> Symbols:
        found: Symbols = {}
        with open(self.path, "rb") as raw, _open_text(self.path, raw) as text:
            reader = csv.DictReader(text)
            symbol_col = self._symbol_column(reader)
            with contextlib.suppress(csv.Error, UnicodeDecodeError):
                for row in reader:
                    symbol = (row.get(symbol_col) or "").strip()
                    if symbol and market_of(symbol, row.get("base"), row.get("quote"), 0.0) is not None:
                        venue = (row.get("venue") or "").strip() or DEFAULT_CSV_VENUE
                        found.setdefault(venue, set()).add(symbol)
        return found

    def batches(self) -> c.Iterator[list[Item]]:
        stats = self.stats
        with open(self.path, "rb") as raw, _open_text(self.path, raw) as text:
            reader = csv.DictReader(text)
            symbol_col = self._symbol_column(reader)
            batch: list[Item] = []
            try:
                for row in reader:
                    stats.lines += 1
                    number = reader.line_num
                    symbol = (row.get(symbol_col) or "").strip()
                    market = (market_of(symbol, row.get("base"), row.get("quote"), 0.0)
                              if symbol else None)
                    if market is None:
                        stats.bad(number, "symbol", f"symbol {symbol!r} is not BASE/QUOTE")
                        continue
                    ts = parse_ts_ns(row.get("timestamp"))
                    if ts <= 0:
                        stats.bad(number, "timestamp")
                        continue
                    bids = row_side(row, "bid_price", "bid_volume", "bids")
                    asks = row_side(row, "ask_price", "ask_volume", "asks")
                    if bids is None or asks is None:
                        stats.bad(number, "level", "a price or volume that is not a number")
                        continue
                    problem = check_book(bids, asks)
                    if problem is not None:
                        stats.bad(number, problem)
                        continue
                    venue = (row.get("venue") or "").strip() or DEFAULT_CSV_VENUE
                    batch.append(BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks, ts_event=ts,
                                            ts_init=ts))
                    if len(batch) >= BATCH:
                        stats.events += len(batch)
                        stats.done = raw.tell()
                        yield batch
                        batch = []
            except (csv.Error, UnicodeDecodeError) as exc:
                stats.bad(reader.line_num, "unreadable", f"unreadable CSV from here on ({exc})")
            stats.events += len(batch)
            stats.done = stats.size
            if batch:
                yield batch


class TardisCsvReader(Reader):
    """Tardis ``book_snapshot_N`` CSV: N levels a side, timestamps in microseconds."""

    format = "tardis"

    def __init__(self, path: Path, size: int) -> None:
        super().__init__(path, size)
        self._names: dict[str, str | None] = {}

    def _layout(self, header: list[str]) -> tuple[tuple[int, int, int, int], list[tuple[int, int]],
                                                  list[tuple[int, int]]]:
        col = {name: i for i, name in enumerate(header)}
        try:
            fixed = (col["exchange"], col["symbol"], col["timestamp"], col["local_timestamp"])
        except KeyError as exc:
            raise DataError(f"{self.path}: not a Tardis book_snapshot CSV (no {exc} column)") from None
        sides = []
        for side in ("bids", "asks"):
            levels = []
            n = 0
            while f"{side}[{n}].price" in col and f"{side}[{n}].amount" in col:
                levels.append((col[f"{side}[{n}].price"], col[f"{side}[{n}].amount"]))
                n += 1
            sides.append(levels)
        return fixed, sides[0], sides[1]

    def _symbol(self, raw_symbol: str) -> str | None:
        symbol = self._names.get(raw_symbol, "")
        if symbol == "":
            pair = split_symbol(raw_symbol)
            symbol = self._names[raw_symbol] = f"{pair[0]}/{pair[1]}" if pair else None
        return symbol

    def check(self) -> None:
        """:raises DataError: without the Tardis columns (exchange, symbol, both timestamps)."""
        try:
            with open(self.path, "rb") as raw, _unzipped(self.path, raw) as data:
                self._layout(data.readline().decode("utf-8", "replace").strip().split(","))
        except (EOFError, OSError) as exc:
            raise DataError(f"{self.path}: unreadable Tardis CSV ({exc})") from exc

    def symbols(self) -> Symbols:
        """Exchange and symbol of every row, split off each line's front (Tardis CSV is unquoted)."""
        found: Symbols = {}
        with open(self.path, "rb") as raw, _unzipped(self.path, raw) as data:
            header = data.readline().decode("utf-8", "replace").strip().split(",")
            (i_ex, i_sym, _, _), _, _ = self._layout(header)
            last = max(i_ex, i_sym)
            seen: set[bytes] = set()
            with contextlib.suppress(EOFError, OSError):
                for line in data:
                    fields = line.split(b",", last + 1)
                    if len(fields) <= last:
                        continue
                    key = fields[i_ex] + b"," + fields[i_sym]
                    if key in seen:
                        continue
                    seen.add(key)
                    venue, symbol = fields[i_ex].decode(errors="replace"), self._symbol(
                        fields[i_sym].decode(errors="replace"))
                    if venue and symbol is not None:
                        found.setdefault(venue, set()).add(symbol)
        return found

    def batches(self) -> c.Iterator[list[Item]]:
        stats = self.stats
        with open(self.path, "rb") as raw, _open_text(self.path, raw) as text:
            reader = csv.reader(text)
            (i_ex, i_sym, i_ts, i_local), bid_cols, ask_cols = self._layout(next(reader, []))
            normalise = self._symbol
            batch: list[Item] = []
            try:
                for row in reader:
                    stats.lines += 1
                    number = reader.line_num
                    try:
                        raw_symbol = row[i_sym]
                        symbol = normalise(raw_symbol)
                        if symbol is None:
                            stats.bad(number, "symbol", f"no base and quote in symbol {raw_symbol!r}")
                            continue
                        ts_event = int(row[i_ts]) * 1000
                        ts_init = int(row[i_local]) * 1000
                        if not row[i_ex] or not 0 <= ts_event < _NS_MAX or not 0 <= ts_init < _NS_MAX:
                            raise ValueError("no exchange, or a timestamp out of range")
                    except (ValueError, IndexError) as exc:
                        stats.bad(number, "schema", f"bad field ({exc})")
                        continue
                    try:
                        bids = _row_levels(row, bid_cols)
                        asks = _row_levels(row, ask_cols)
                    except (ValueError, IndexError) as exc:
                        stats.bad(number, "level", f"bad level ({exc})")
                        continue
                    problem = check_book(bids, asks)
                    if problem is not None:
                        stats.bad(number, problem)
                        continue
                    batch.append(BookUpdate(venue=row[i_ex], symbol=symbol, bids=bids, asks=asks,
                                            ts_event=ts_event, ts_init=ts_init))
                    if len(batch) >= BATCH:
                        stats.events += len(batch)
                        stats.done = raw.tell()
                        yield batch
                        batch = []
            except (csv.Error, UnicodeDecodeError, EOFError, OSError) as exc:
                stats.bad(reader.line_num, "unreadable", f"unreadable from here on ({exc})")
            stats.events += len(batch)
            stats.done = stats.size
            if batch:
                yield batch


def _row_levels(row: list[str], columns: list[tuple[int, int]]) -> tuple[tuple[float, float], ...]:
    """Levels of one side, up to the first empty price (values checked by ``check_book``).

    :raises ValueError: for a price or amount that is not a number.
    """
    out = []
    for i_price, i_amount in columns:
        price = row[i_price]
        if not price:
            break
        out.append((float(price), float(row[i_amount])))
    return tuple(out)
