"""The one writer that owns a run's database connection, and the event -> row mapping it writes.

It exists so that a single object serialises every write to the file (the event loop's committed
order inserts and the batch thread's transactions) under one lock. Rows are written with SQL
statements built once per table from ``storage.schema`` and ``executemany``: sqlite-utils'
``insert_all``/``upsert_all`` re-inspect the table and rebuild the SQL on every call, which cost
~0.3 ms per small batch, all of it holding the lock the loop's order inserts wait on. The schema is
created with sqlite-utils (``storage.schema``); reading back is in ``storage.queries``.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import threading
import typing as t
from collections import defaultdict
from pathlib import Path

import msgspec
import sqlite_utils

from arbitrage.errors import DataError
from arbitrage.events import (
    Alert,
    ArbResult,
    ArbStateChanged,
    BookUpdate,
    Event,
    Fill,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
    PositionUpdate,
    encode_hook,
)
from arbitrage.redact import redact, redact_text
from arbitrage.storage.queries import run_totals
from arbitrage.storage.schema import COLUMNS, PRIMARY_KEYS, leg_index, open_database

__all__ = ["BATCHED_TYPES", "Writer", "store_summary", "utc_now"]

_encode = msgspec.json.Encoder(enc_hook=encode_hook).encode


def _json(value: t.Any) -> str:
    return _encode(value).decode()


def utc_now() -> str:
    """Wall-clock time as ISO 8601 UTC with milliseconds (sorts as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- rows --------------------------------------------------------------------------------------------


def _opportunity(run_id: str, e: Opportunity) -> dict[str, t.Any]:
    return {"run_id": run_id, "id": e.id, "strategy": e.strategy, "quote": e.quote, "profit": e.profit,
            "profit_bps": e.profit_bps, "notional": e.notional, "legs": _json(e.legs),
            "book_ts": _json(e.book_ts), "ts_event": e.ts_event, "ts_init": e.ts_init}


def _rejection(run_id: str, e: OpportunityRejected) -> dict[str, t.Any]:
    return {"run_id": run_id, "opportunity_id": e.opportunity_id, "reason": e.reason, "ts_init": e.ts_init}


def _order_update(run_id: str, e: OrderUpdate) -> dict[str, t.Any]:
    return {"run_id": e.run_id or run_id, "client_order_id": e.client_order_id,
            "opportunity_id": e.opportunity_id,
            "venue": e.venue, "symbol": e.symbol, "side": e.side, "amount": e.amount, "status": e.status,
            "filled": e.filled, "average_price": e.average_price, "fee": e.fee,
            "reason": redact_text(e.reason), "venue_order_id": e.venue_order_id, "ts_updated": e.ts_init,
            "fee_currency": e.fee_currency or e.symbol.rpartition("/")[2]}  # empty: the quote


def _fill(run_id: str, e: Fill) -> dict[str, t.Any]:
    return {"run_id": e.run_id or run_id, "client_order_id": e.client_order_id,
            "opportunity_id": e.opportunity_id, "venue": e.venue, "symbol": e.symbol, "side": e.side,
            "price": e.price, "amount": e.amount, "fee": e.fee, "fee_currency": e.fee_currency,
            "ts_event": e.ts_event, "ts_init": e.ts_init, "trade_id": e.trade_id or None}


def _arb_result(run_id: str, e: ArbResult) -> dict[str, t.Any]:
    return {"run_id": e.run_id or run_id, "opportunity_id": e.opportunity_id, "strategy": e.strategy,
            "status": e.status,
            "quote": e.quote, "expected_profit": e.expected_profit, "realized_profit": e.realized_profit,
            "fees": e.fees, "slippage": e.slippage, "legs": _json(e.legs), "residual": _json(e.residual),
            "ts_init": e.ts_init, "unrealized_profit": e.unrealized_profit, "positions": _json(e.positions)}


def _arb_state(run_id: str, e: ArbStateChanged) -> dict[str, t.Any]:
    return {"run_id": e.run_id or run_id, "opportunity_id": e.opportunity_id, "state": e.state,
            "reason": redact_text(e.reason), "ts_init": e.ts_init}


def _position(run_id: str, e: PositionUpdate) -> dict[str, t.Any]:
    p = e.position
    return {"run_id": run_id, "venue": p.venue, "asset": p.asset, "quote": p.quote, "amount": p.amount,
            "cost": p.cost, "mark": p.mark, "stale": int(p.stale), "realized": e.realized,
            "ts_init": e.ts_init}


def _alert(run_id: str, e: Alert) -> dict[str, t.Any]:
    return {"run_id": run_id, "key": e.key, "level": e.level, "message": redact_text(e.message),
            "recovered": int(e.recovered), "ts_init": e.ts_init}


def _book(run_id: str, e: BookUpdate) -> dict[str, t.Any]:
    return {"run_id": run_id, "venue": e.venue, "symbol": e.symbol, "ts_event": e.ts_event,
            "ts_init": e.ts_init, "bids": _json(e.bids), "asks": _json(e.asks)}


_ROWS: dict[type[Event], tuple[str, c.Callable[[str, t.Any], dict[str, t.Any]]]] = {
    Opportunity: ("opportunities", _opportunity),
    OpportunityRejected: ("rejections", _rejection),
    OrderUpdate: ("orders", _order_update),
    Fill: ("fills", _fill),
    ArbResult: ("arb_results", _arb_result),
    ArbStateChanged: ("arb_states", _arb_state),
    PositionUpdate: ("positions", _position),
    Alert: ("alerts", _alert),
    BookUpdate: ("books", _book),
}
_REPLACE = frozenset({"opportunities", "arb_results", "positions"})
"""Tables keyed by event id (or position): a repeated key replaces the row instead of failing the
whole batch (``positions`` keeps the newest update of each)."""
_IGNORE = frozenset({"fills"})
"""Tables with a natural unique key besides the rowid (``fills``: run, client order id, venue trade
id): a row already stored is kept and the repeat ignored (a fill read again after a restart)."""
_SUBMIT_ONLY = frozenset({"price", "purpose", "ts_submitted", "label", "leg_index"})
"""``orders`` columns only ``write_order_submitted`` writes: an ``OrderUpdate`` must not clobber them."""
BATCHED_TYPES: tuple[type[Event], ...] = tuple(_ROWS)
"""Event types ``Writer.write_batch`` accepts."""


def _row_columns(table: str) -> tuple[str, ...]:
    """The columns a row of ``table`` carries: all but a rowid ``id`` and, in ``orders``, ``_SUBMIT_ONLY``."""
    skip = {"id"} if PRIMARY_KEYS[table] == ("id",) else set()
    if table == "orders":
        skip |= _SUBMIT_ONLY
    return tuple(column for column in COLUMNS[table] if column not in skip)


def _statement(table: str) -> str:
    """The INSERT of one row of ``table`` with named parameters (the row builders' dict keys).

    ``orders`` is an upsert on its key that sets only the columns an update carries, as
    ``upsert_all`` did: a new row is inserted, an existing one keeps price, purpose, ts_submitted.
    """
    columns = _row_columns(table)
    names = ", ".join(f'"{column}"' for column in columns)  # quoted: ``alerts.key`` is a keyword
    verb = "INSERT OR REPLACE" if table in _REPLACE else "INSERT OR IGNORE" if table in _IGNORE else "INSERT"
    sql = (f"{verb} INTO {table} ({names}) "
           f"VALUES ({', '.join(':' + column for column in columns)})")
    if table == "orders":
        key = PRIMARY_KEYS[table]
        sql += (f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
                + ", ".join(f'"{column}" = excluded."{column}"' for column in columns if column not in key))
    return sql


_STATEMENTS: dict[str, str] = {table: _statement(table) for table, _ in _ROWS.values()}
"""Table -> its row INSERT; the sqlite3 statement cache prepares each once per connection."""

_INSERT_ORDER = (
    "INSERT INTO orders (run_id, client_order_id, opportunity_id, venue, symbol, side, amount, price, "
    "purpose, status, filled, fee, ts_submitted, label, leg_index) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', 0.0, 0.0, ?, ?, ?) "
    "ON CONFLICT (run_id, client_order_id) DO UPDATE SET price = excluded.price, "
    "purpose = excluded.purpose, ts_submitted = excluded.ts_submitted, label = excluded.label, "
    "leg_index = excluded.leg_index"
)
"""The one hot-path statement; an update that somehow arrived first keeps its status and fills."""


# -- the writer --------------------------------------------------------------------------------------


class Writer:
    """Owns one connection; every write takes its lock, so threads and the loop never collide.

    ``write_order_submitted`` is called on the event loop and commits before it returns;
    ``write_batch`` is meant for ``asyncio.to_thread`` and writes one transaction.
    """

    def __init__(self, path: str | Path, run_id: str, *, sync_journal: bool = False) -> None:
        """Open (or create) the database at ``path``.

        :param sync_journal: commit each submitted order with ``PRAGMA synchronous = FULL`` (the
            WAL synced to disk before the commit returns: a realtime run's write-ahead journal);
            batches keep ``NORMAL`` (synced at checkpoints, and by the next journal commit).
        :raises DataError: if the file cannot be used (see ``open_database``).
        """
        self.path = Path(path)
        self.run_id = run_id
        self.sync_journal = sync_journal
        self.db = open_database(self.path)
        self.rows: dict[str, int] = defaultdict(int)
        """Rows written per table by this writer (``order_updates`` counts OrderUpdate upserts)."""
        self.transactions = 0
        """Committed batch transactions (one per ``write_batch`` call that had rows)."""
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"storage writer for {self.path} is closed")

    def start_run(self, *, source: str, strategy: str, settings: dict[str, t.Any], live: bool = False,
                  started_at: str | None = None) -> None:
        """Insert this run's row; ``settings`` is redacted before it is stored."""
        row = {"run_id": self.run_id, "started_at": started_at or utc_now(), "ended_at": None,
               "source": source, "strategy": strategy, "live": int(live), "settings": _json(redact(settings)),
               "summary": None}
        with self._lock:
            self._check_open()
            with self.db.atomic():
                self.db.table("runs").insert(row, replace=True)
            self.rows["runs"] += 1

    def write_order_submitted(self, event: OrderSubmitted, *, commit: bool = True,
                              opportunity: Opportunity | None = None) -> None:
        """Insert one submitted order and commit before returning (the money rule); with
        ``sync_journal`` the commit is on disk when this returns.

        :param opportunity: the order's opportunity, written (or replaced) in the same transaction:
            the journal then holds what the arbitrage expected (its profit, legs, fee rates) even
            when the process dies before the batch that would have stored it.

        :param commit: False leaves the row to the next batch's commit (a backtest: a simulated
            order has nothing to recover after a crash, and a commit per order was most of what
            storage cost a replay); the row is still inserted before the order is sent.
        """
        row = (self.run_id, event.client_order_id, event.opportunity_id, event.venue, event.symbol,
               event.side, event.amount, event.price, event.purpose, event.ts_init, event.label,
               leg_index(event.label))
        planned = _opportunity(self.run_id, opportunity) if opportunity is not None else None
        sync = commit and self.sync_journal
        with self._lock:
            self._check_open()
            conn = self.db.conn
            if sync:
                if conn.in_transaction:  # the level cannot change inside one (realtime runs commit all)
                    conn.commit()
                conn.execute("PRAGMA synchronous = FULL")
            try:
                if planned is not None:
                    conn.execute(_STATEMENTS["opportunities"], planned)
                conn.execute(_INSERT_ORDER, row)
                if commit:
                    conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                if sync:
                    conn.execute("PRAGMA synchronous = NORMAL")
            self.rows["orders"] += 1

    def write_batch(self, events: c.Sequence[Event]) -> None:
        """Write ``events`` (any mix of ``BATCHED_TYPES``) in one transaction, one ``executemany`` per table.

        Rows are built before the lock is taken, so the loop's order inserts wait only for SQLite.
        On failure nothing of the batch is kept and the error propagates.
        """
        grouped: dict[str, list[dict[str, t.Any]]] = defaultdict(list)
        run_id = self.run_id
        for event in events:
            table, row = _ROWS[type(event)]
            grouped[table].append(row(run_id, event))
        if not grouped:
            return
        with self._lock:
            self._check_open()
            conn = self.db.conn
            written: dict[str, int] = {}
            try:
                for table, rows in grouped.items():
                    written[table] = conn.executemany(_STATEMENTS[table], rows).rowcount  # less repeats
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            self.transactions += 1
            for table, count in written.items():
                self.rows["order_updates" if table == "orders" else table] += count

    def end_run(self, *, ended_at: str | None = None) -> dict[str, t.Any]:
        """Set ``ended_at`` and store the run's totals, counted from the database, as its summary."""
        with self._lock:
            self._check_open()
            self.db.conn.commit()  # order rows left to a batch's commit (backtests), if none came
            summary = run_totals(self.db.conn, self.run_id)
            with self.db.atomic():
                self.db.execute("UPDATE runs SET ended_at = ?, summary = ? WHERE run_id = ?",
                                [ended_at or utc_now(), _json(summary), self.run_id])
        return summary

    def store_summary(self, summary: dict[str, t.Any]) -> None:
        """Merge ``summary`` (e.g. the engine's) over the run's stored summary; redacted first."""
        with self._lock:
            self._check_open()
            _merge_summary(self.db, self.run_id, summary)

    def close(self) -> None:
        """Close the connection (idempotent); later writes raise ``RuntimeError``."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.db.close()


def _merge_summary(db: sqlite_utils.Database, run_id: str, summary: dict[str, t.Any]) -> None:
    row = db.execute("SELECT summary FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        raise DataError(f"run {run_id} is not in the database")
    merged = msgspec.json.decode(row[0]) if row[0] else {}
    merged.update(redact(msgspec.to_builtins(summary, enc_hook=str)))
    with db.atomic():
        db.execute("UPDATE runs SET summary = ? WHERE run_id = ?", [_json(merged), run_id])


def store_summary(path: str | Path, run_id: str, summary: dict[str, t.Any]) -> None:
    """Merge ``summary`` into a run's stored summary in the database at ``path`` (after the run).

    :raises DataError: if the database or the run does not exist.
    """
    if not Path(path).exists():
        raise DataError(f"{path}: no such database")
    db = open_database(path)
    try:
        _merge_summary(db, run_id, summary)
    finally:
        db.close()
