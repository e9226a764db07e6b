"""The SQLite schema of a run and the one writer that owns the connection.

Tables (every one has a ``run_id`` column and an index on it):

* ``runs`` -- one row per run: times (ISO 8601 UTC), source, strategy, redacted settings JSON and
  the end-of-run summary JSON;
* ``opportunities``, ``arb_results`` -- keyed by ``(run_id, id)`` / ``(run_id, opportunity_id)``;
* ``orders`` -- keyed by ``(run_id, client_order_id)``: inserted when the order is submitted,
  updated by every ``OrderUpdate``;
* ``fills``, ``alerts``, ``rejections`` and (optional) ``books`` -- append-only.

Keys include ``run_id`` because simulated and replayed runs are deterministic and reuse the same
opportunity and client order ids run after run. JSON columns hold msgspec-encoded structs.
The schema version lives in ``PRAGMA user_version``; ``migrate`` brings an older file up to date
and refuses a newer one.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import sqlite3
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
    BookUpdate,
    Event,
    Fill,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
)
from arbitrage.redact import redact, redact_text

__all__ = [
    "BATCHED_TYPES",
    "OPEN_ORDER_STATUSES",
    "SCHEMA_VERSION",
    "TABLES",
    "Writer",
    "migrate",
    "open_database",
    "run_totals",
    "store_summary",
    "unfinished_orders",
    "utc_now",
]

SCHEMA_VERSION = 1
"""Stored in ``PRAGMA user_version``; bump it and add a step to ``_MIGRATIONS`` to change the schema."""

OPEN_ORDER_STATUSES = ("submitted", "open")
"""Order states that are not final: such an order may still be live on its venue."""

_SCHEMA: dict[str, tuple[dict[str, type], str | tuple[str, ...]]] = {
    "runs": ({
        "run_id": str, "started_at": str, "ended_at": str, "source": str, "strategy": str, "live": int,
        "settings": str, "summary": str,
    }, "run_id"),
    "opportunities": ({
        "run_id": str, "id": str, "strategy": str, "quote": str, "profit": float, "profit_bps": float,
        "notional": float, "legs": str, "book_ts": str, "ts_event": int, "ts_init": int,
    }, ("run_id", "id")),
    "rejections": ({
        "id": int, "run_id": str, "opportunity_id": str, "reason": str, "ts_init": int,
    }, "id"),
    "orders": ({
        "run_id": str, "client_order_id": str, "opportunity_id": str, "venue": str, "symbol": str,
        "side": str, "amount": float, "price": float, "purpose": str, "status": str, "filled": float,
        "average_price": float, "fee": float, "reason": str, "venue_order_id": str, "ts_submitted": int,
        "ts_updated": int,
    }, ("run_id", "client_order_id")),
    "fills": ({
        "id": int, "run_id": str, "client_order_id": str, "opportunity_id": str, "venue": str, "symbol": str,
        "side": str, "price": float, "amount": float, "fee": float, "fee_currency": str, "ts_event": int,
        "ts_init": int,
    }, "id"),
    "arb_results": ({
        "run_id": str, "opportunity_id": str, "strategy": str, "status": str, "quote": str,
        "expected_profit": float, "realized_profit": float, "fees": float, "slippage": float, "legs": str,
        "residual": str, "ts_init": int,
    }, ("run_id", "opportunity_id")),
    "alerts": ({
        "id": int, "run_id": str, "key": str, "level": str, "message": str, "recovered": int, "ts_init": int,
    }, "id"),
    "books": ({
        "id": int, "run_id": str, "venue": str, "symbol": str, "ts_event": int, "ts_init": int, "bids": str,
        "asks": str,
    }, "id"),
}
_EXTRA_INDEXES: dict[str, list[list[str]]] = {
    "orders": [["opportunity_id"]],
    "fills": [["client_order_id"]],
    "books": [["venue", "symbol", "ts_event"]],
}

TABLES: tuple[str, ...] = tuple(_SCHEMA)
"""Every table the schema defines, ``runs`` first."""

_encode = msgspec.json.Encoder().encode


def _json(value: t.Any) -> str:
    return _encode(value).decode()


def utc_now() -> str:
    """Wall-clock time as ISO 8601 UTC with milliseconds (sorts as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- schema ------------------------------------------------------------------------------------------


def _create_v1(db: sqlite_utils.Database) -> None:
    for name, (columns, pk) in _SCHEMA.items():
        table = db.table(name)
        table.create(columns, pk=pk, if_not_exists=True)
        if not isinstance(pk, tuple) and name != "runs":  # a (run_id, ...) key already indexes run_id
            table.create_index(["run_id"], if_not_exists=True)
        for index in _EXTRA_INDEXES.get(name, []):
            table.create_index(index, if_not_exists=True)


_MIGRATIONS: dict[int, c.Callable[[sqlite_utils.Database], None]] = {1: _create_v1}
"""Version -> step that brings a database from ``version - 1`` to ``version``."""


def migrate(db: sqlite_utils.Database) -> int:
    """Create or upgrade the schema to ``SCHEMA_VERSION``; returns the version found before.

    :raises DataError: if the file was written by a newer arb (higher schema version).
    """
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise DataError(f"database schema version {found} is newer than this arb supports "
                        f"({SCHEMA_VERSION}); upgrade arb")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        with db.atomic():
            _MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version}")
    return found


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating parent folders and the file) an arb database in WAL mode, schema up to date.

    The connection may be used from any thread (``check_same_thread=False``); the caller serialises
    access. Close it with ``db.close()``.

    :raises DataError: if the file is not a database or has a newer schema.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10.0)
    try:
        db = sqlite_utils.Database(conn)
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DataError(f"{path}: cannot use as an arb database ({exc})") from exc
    except BaseException:
        conn.close()
        raise
    return db


# -- rows --------------------------------------------------------------------------------------------


def _opportunity(run_id: str, e: Opportunity) -> dict[str, t.Any]:
    return {"run_id": run_id, "id": e.id, "strategy": e.strategy, "quote": e.quote, "profit": e.profit,
            "profit_bps": e.profit_bps, "notional": e.notional, "legs": _json(e.legs),
            "book_ts": _json(e.book_ts), "ts_event": e.ts_event, "ts_init": e.ts_init}


def _rejection(run_id: str, e: OpportunityRejected) -> dict[str, t.Any]:
    return {"run_id": run_id, "opportunity_id": e.opportunity_id, "reason": e.reason, "ts_init": e.ts_init}


def _order_update(run_id: str, e: OrderUpdate) -> dict[str, t.Any]:
    return {"run_id": run_id, "client_order_id": e.client_order_id, "opportunity_id": e.opportunity_id,
            "venue": e.venue, "symbol": e.symbol, "side": e.side, "amount": e.amount, "status": e.status,
            "filled": e.filled, "average_price": e.average_price, "fee": e.fee,
            "reason": redact_text(e.reason), "venue_order_id": e.venue_order_id, "ts_updated": e.ts_init}


def _fill(run_id: str, e: Fill) -> dict[str, t.Any]:
    return {"run_id": run_id, "client_order_id": e.client_order_id, "opportunity_id": e.opportunity_id,
            "venue": e.venue, "symbol": e.symbol, "side": e.side, "price": e.price, "amount": e.amount,
            "fee": e.fee, "fee_currency": e.fee_currency, "ts_event": e.ts_event, "ts_init": e.ts_init}


def _arb_result(run_id: str, e: ArbResult) -> dict[str, t.Any]:
    return {"run_id": run_id, "opportunity_id": e.opportunity_id, "strategy": e.strategy, "status": e.status,
            "quote": e.quote, "expected_profit": e.expected_profit, "realized_profit": e.realized_profit,
            "fees": e.fees, "slippage": e.slippage, "legs": _json(e.legs), "residual": _json(e.residual),
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
    Alert: ("alerts", _alert),
    BookUpdate: ("books", _book),
}
_REPLACE = frozenset({"opportunities", "arb_results"})
"""Tables keyed by event id: a repeated id replaces the row instead of failing the whole batch."""
BATCHED_TYPES: tuple[type[Event], ...] = tuple(_ROWS)
"""Event types ``Writer.write_batch`` accepts."""

_INSERT_ORDER = (
    "INSERT INTO orders (run_id, client_order_id, opportunity_id, venue, symbol, side, amount, price, "
    "purpose, status, filled, fee, ts_submitted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', 0.0, 0.0, ?) "
    "ON CONFLICT (run_id, client_order_id) DO UPDATE SET price = excluded.price, "
    "purpose = excluded.purpose, ts_submitted = excluded.ts_submitted"
)
"""The one hot-path statement; an update that somehow arrived first keeps its status and fills."""


# -- the writer --------------------------------------------------------------------------------------


class Writer:
    """Owns one connection; every write takes its lock, so threads and the loop never collide.

    ``write_order_submitted`` is called on the event loop and commits before it returns;
    ``write_batch`` is meant for ``asyncio.to_thread`` and writes one transaction.
    """

    def __init__(self, path: str | Path, run_id: str, *, batch_size: int = 500) -> None:
        """Open (or create) the database at ``path``.

        :raises DataError: if the file cannot be used (see ``open_database``).
        """
        self.path = Path(path)
        self.run_id = run_id
        self.batch_size = batch_size
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

    def write_order_submitted(self, event: OrderSubmitted) -> None:
        """Insert one submitted order and commit before returning (the money rule)."""
        with self._lock:
            self._check_open()
            conn = self.db.conn
            try:
                conn.execute(_INSERT_ORDER, (self.run_id, event.client_order_id, event.opportunity_id,
                                             event.venue, event.symbol, event.side, event.amount, event.price,
                                             event.purpose, event.ts_init))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            self.rows["orders"] += 1

    def write_batch(self, events: c.Sequence[Event]) -> None:
        """Write ``events`` (any mix of ``BATCHED_TYPES``) in one transaction, one ``insert_all`` per table.

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
            with self.db.atomic():
                for table, rows in grouped.items():
                    if table == "orders":
                        self.db.table("orders").upsert_all(rows, pk=("run_id", "client_order_id"),
                                                           batch_size=self.batch_size)
                    else:
                        self.db.table(table).insert_all(rows, batch_size=self.batch_size,
                                                        replace=table in _REPLACE)
            self.transactions += 1
            for table, rows in grouped.items():
                self.rows["order_updates" if table == "orders" else table] += len(rows)

    def end_run(self, *, ended_at: str | None = None) -> dict[str, t.Any]:
        """Set ``ended_at`` and store the run's totals, counted from the database, as its summary."""
        with self._lock:
            self._check_open()
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


# -- reading -----------------------------------------------------------------------------------------


def _placeholders(run_ids: c.Sequence[str]) -> str:
    return ", ".join("?" * len(run_ids))


def run_totals(conn: sqlite3.Connection, run_ids: str | c.Sequence[str]) -> dict[str, t.Any]:
    """Totals of one run (or several) with the meaning of the engine's summary.

    ``opportunities`` = Opportunity rows, ``arbs_executed`` = ArbResult rows (``arbs_by_status``),
    ``realized_pnl`` and ``fees`` = per quote currency sums of the results, added in the order the
    results were written (as the engine adds them) and rounded to 10 places like the engine does.
    ``rows`` counts every table.
    """
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    marks = _placeholders(ids)
    rows = {name: conn.execute(f"SELECT count(*) FROM {name} WHERE run_id IN ({marks})", ids).fetchone()[0]
            for name in TABLES}
    by_status: dict[str, int] = defaultdict(int)
    pnl: dict[str, float] = defaultdict(float)
    fees: dict[str, float] = defaultdict(float)
    for status, quote, realized, fee in conn.execute(
            f"SELECT status, quote, realized_profit, fees FROM arb_results WHERE run_id IN ({marks}) "
            "ORDER BY rowid", ids):
        by_status[status] += 1
        pnl[quote] += realized
        fees[quote] += fee
    return {
        "opportunities": rows["opportunities"],
        "rejected": rows["rejections"],
        "orders": rows["orders"],
        "arbs_executed": rows["arb_results"],
        "arbs_by_status": dict(by_status),
        "realized_pnl": {k: round(v, 10) for k, v in pnl.items()},
        "fees": {k: round(v, 10) for k, v in fees.items()},
        "rows": rows,
    }


def unfinished_orders(path: str | Path) -> list[dict[str, t.Any]]:
    """Orders of any run whose last known state is not final (``OPEN_ORDER_STATUSES``), oldest first.

    These may still be live on their venue: start-up reconciliation asks the venue about each.
    Returns an empty list when the database does not exist.
    """
    if not Path(path).exists():
        return []
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        marks = _placeholders(OPEN_ORDER_STATUSES)
        cursor = conn.execute(f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY ts_submitted",
                              OPEN_ORDER_STATUSES)
        return [dict(row) for row in cursor]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
