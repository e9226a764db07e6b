"""The ``books`` table of an arb database (``storage.store_books``) as a replay source."""

from __future__ import annotations

import collections.abc as c
import sqlite3
from pathlib import Path

import msgspec

from arbitrage.book import check_book
from arbitrage.errors import DataError
from arbitrage.events import BookUpdate
from arbitrage.readers.contract import BATCH, Item, Reader, Symbols, is_pair
from arbitrage.readers.jsonl import Levels

_levels = msgspec.json.Decoder(Levels)
_DecodeErrors = (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError)
_NS_MAX = 2**63 - 1


def _ns(value: object) -> int:
    """A stored timestamp as int64 ns. :raises ValueError: for anything else."""
    if type(value) is not int or not 0 <= value <= _NS_MAX:
        raise ValueError(f"timestamp {value!r} is not an integer in 0 .. 2**63-1")
    return value


class SqliteBooksReader(Reader):
    """The ``books`` table of an arb database, one run, in the order the books were stored."""

    format = "sqlite"

    def __init__(self, path: Path, size: int, run_id: str | None = None) -> None:
        super().__init__(path, size)
        self.run_id = run_id

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.Error as exc:
            raise DataError(f"{self.path}: cannot open as SQLite ({exc})") from exc
        return conn

    def select_run(self) -> str:
        """The run to replay: the one asked for, else the latest run that stored books.

        :raises DataError: if the database has no books (``storage.store_books`` was off).
        """
        conn = self._connect()
        try:
            try:
                if self.run_id:
                    row = conn.execute("SELECT COUNT(*) FROM books WHERE run_id = ?",
                                       (self.run_id,)).fetchone()
                    if not row[0]:
                        raise DataError(f"{self.path}: run {self.run_id!r} stored no books")
                    count = int(row[0])
                else:
                    row = conn.execute("SELECT run_id FROM books ORDER BY id DESC LIMIT 1").fetchone()
                    if row is None:
                        raise DataError(f"{self.path}: no stored books (run with storage.store_books = true)")
                    self.run_id = str(row[0])
                    count = int(conn.execute("SELECT COUNT(*) FROM books WHERE run_id = ?",
                                             (self.run_id,)).fetchone()[0])
            except sqlite3.Error as exc:
                raise DataError(f"{self.path}: no books table ({exc})") from exc
        finally:
            conn.close()
        self.stats.size = count
        return self.run_id

    def symbols(self) -> Symbols:
        """``SELECT DISTINCT venue, symbol`` of the run (the books table is indexed on them)."""
        if self.run_id is None:
            self.select_run()
        conn = self._connect()
        try:
            rows = conn.execute("SELECT DISTINCT venue, symbol FROM books WHERE run_id = ?",
                                (self.run_id,)).fetchall()
        finally:
            conn.close()
        found: Symbols = {}
        for venue, symbol in rows:
            if venue and isinstance(symbol, str) and is_pair(symbol):
                found.setdefault(str(venue), set()).add(symbol)
        return found

    def batches(self) -> c.Iterator[list[Item]]:
        stats = self.stats
        if self.run_id is None or not stats.size:
            self.select_run()
        conn = self._connect()
        try:
            cursor = conn.execute("SELECT id, venue, symbol, ts_event, ts_init, bids, asks FROM books "
                                  "WHERE run_id = ? ORDER BY id", (self.run_id,))
            while rows := cursor.fetchmany(BATCH):
                batch: list[Item] = []
                for row_id, venue, symbol, ts_event, ts_init, bids, asks in rows:
                    stats.lines += 1
                    try:
                        times = _ns(ts_event), _ns(ts_init)
                    except ValueError as exc:
                        stats.bad(int(row_id), "schema", f"row id {row_id}: {exc}")
                        continue
                    try:
                        book = BookUpdate(venue=venue, symbol=symbol, bids=_levels.decode(bids),
                                          asks=_levels.decode(asks), ts_event=times[0], ts_init=times[1])
                    except _DecodeErrors as exc:
                        stats.bad(int(row_id), "level", f"row id {row_id}: {exc}")
                        continue
                    if not (venue and isinstance(venue, str) and isinstance(symbol, str) and is_pair(symbol)):
                        stats.bad(int(row_id), "symbol", f"row id {row_id}: {venue!r} {symbol!r}: no venue "
                                  "or not BASE/QUOTE")
                        continue
                    problem = check_book(book.bids, book.asks)
                    if problem is not None:
                        stats.bad(int(row_id), problem, f"row id {row_id}")
                        continue
                    batch.append(book)
                stats.done += len(rows)
                stats.events += len(batch)
                if batch:
                    yield batch
            cursor.close()
        finally:
            conn.close()
