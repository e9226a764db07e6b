"""The SQLite schema of an arb database, its migrations, and how a database file is opened.

It exists so that every reader and writer agrees on one definition of the tables and opens files
the same way (WAL, schema brought up to date, newer files refused). Tables (every one has a
``run_id`` column and an index on it):

* ``runs`` -- one row per run: times (ISO 8601 UTC), source, strategy, redacted settings JSON and
  the end-of-run summary JSON;
* ``opportunities``, ``arb_results`` -- keyed by ``(run_id, id)`` / ``(run_id, opportunity_id)``;
* ``orders`` -- keyed by ``(run_id, client_order_id)``: inserted when the order is submitted,
  updated by every ``OrderUpdate`` (``fee`` in ``fee_currency``, as the venue charged it; NULL
  in a file from before version 3: the quote); ``label`` is the readable name the id derives from,
  ``leg_index`` its number (``-L{i}``: the opportunity's leg i; ``-H{n}``/``-U{n}``: the n-th
  closing order); ``amount`` and ``price`` are what was intended (the limit), ``filled`` and
  ``average_price`` what the venue did. The row is the write-ahead order journal: committed (and,
  in a realtime run, synced to disk) before the order is sent;
* ``arb_states`` -- append-only history of every arbitrage's states (``ArbStateChanged``): the
  newest row per ``(run_id, opportunity_id)`` is its current state (``queries.arb_states``), also
  for an arbitrage that never got an ``arb_results`` row because the process died;
* ``fills`` -- append-only, one row per venue execution: ``trade_id`` is the venue's id of it
  (NULL where the venue gives none: paper fills, files from before version 5), unique with
  ``(run_id, client_order_id)`` (index ``fills_trade``), so a fill read again after a restart is
  stored once (the writer's ``INSERT OR IGNORE``);
* ``alerts``, ``rejections`` and (optional) ``books`` -- append-only;
* ``positions`` -- the trader's open positions, keyed by ``(run_id, venue, asset, quote)``: the
  newest ``PositionUpdate`` of each (amount 0 once closed; ``realized`` is cumulative).

Keys include ``run_id`` because simulated and replayed runs are deterministic and reuse the same
opportunity and client order ids run after run. JSON columns hold msgspec-encoded structs.
The schema version lives in ``PRAGMA user_version``; ``migrate`` brings an older file up to date
and refuses a newer one.
"""

from __future__ import annotations

import collections.abc as c
import sqlite3
from pathlib import Path

import sqlite_utils

from arbitrage.errors import DataError

__all__ = ["COLUMNS", "PRIMARY_KEYS", "SCHEMA_VERSION", "TABLES", "leg_index", "migrate", "open_database"]

SCHEMA_VERSION = 5
"""Stored in ``PRAGMA user_version``; bump it and add a step to ``_MIGRATIONS`` to change the schema."""

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
        "ts_updated": int, "label": str, "fee_currency": str, "leg_index": int,
    }, ("run_id", "client_order_id")),
    "fills": ({
        "id": int, "run_id": str, "client_order_id": str, "opportunity_id": str, "venue": str, "symbol": str,
        "side": str, "price": float, "amount": float, "fee": float, "fee_currency": str, "ts_event": int,
        "ts_init": int, "trade_id": str,
    }, "id"),
    "arb_results": ({
        "run_id": str, "opportunity_id": str, "strategy": str, "status": str, "quote": str,
        "expected_profit": float, "realized_profit": float, "fees": float, "slippage": float, "legs": str,
        "residual": str, "ts_init": int, "unrealized_profit": float, "positions": str,
    }, ("run_id", "opportunity_id")),
    "arb_states": ({
        "id": int, "run_id": str, "opportunity_id": str, "state": str, "reason": str, "ts_init": int,
    }, "id"),
    "positions": ({
        "run_id": str, "venue": str, "asset": str, "quote": str, "amount": float, "cost": float,
        "mark": float, "stale": int, "realized": float, "ts_init": int,
    }, ("run_id", "venue", "asset", "quote")),
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
    "arb_states": [["opportunity_id"]],
    "books": [["venue", "symbol", "ts_event"]],
}

TABLES: tuple[str, ...] = tuple(_SCHEMA)
"""Every table the schema defines, ``runs`` first."""
COLUMNS: dict[str, tuple[str, ...]] = {name: tuple(columns) for name, (columns, _) in _SCHEMA.items()}
"""Table -> its columns, in schema order (the writer builds its statements from them)."""
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    name: (pk,) if isinstance(pk, str) else pk for name, (_, pk) in _SCHEMA.items()}
"""Table -> its primary key columns; a lone integer ``id`` is the rowid, assigned by SQLite."""


def _create_v1(db: sqlite_utils.Database) -> None:
    for name, (columns, pk) in _SCHEMA.items():
        table = db.table(name)
        table.create(columns, pk=pk, if_not_exists=True)
        if not isinstance(pk, tuple) and name != "runs":  # a (run_id, ...) key already indexes run_id
            table.create_index(["run_id"], if_not_exists=True)
        for index in _EXTRA_INDEXES.get(name, []):
            table.create_index(index, if_not_exists=True)


def _add_columns(db: sqlite_utils.Database, name: str) -> None:
    """Add the columns of table ``name`` that an older file lacks (appended, NULL in old rows)."""
    table = db.table(name)
    for column, kind in _SCHEMA[name][0].items():
        if column not in table.columns_dict:
            table.add_column(column, kind)


def _add_v2(db: sqlite_utils.Database) -> None:
    """Version 2: the ``positions`` table and ``arb_results.unrealized_profit``/``positions`` (added
    to a version 1 file; a new file has them from ``_create_v1``, which creates the whole schema)."""
    _create_v1(db)
    _add_columns(db, "arb_results")


def _add_v3(db: sqlite_utils.Database) -> None:
    """Version 3: ``orders.label`` (the readable name a client order id derives from) and
    ``orders.fee_currency`` (fees charged in base, issue 12)."""
    _add_columns(db, "orders")


def _add_v4(db: sqlite_utils.Database) -> None:
    """Version 4: ``orders.leg_index`` (filled in from ``label`` for old rows) and the
    ``arb_states`` table (issue 14: the leg state machine)."""
    _create_v1(db)
    _add_columns(db, "orders")
    rows = db.execute("SELECT rowid, label FROM orders WHERE label IS NOT NULL AND label != ''").fetchall()
    db.conn.executemany("UPDATE orders SET leg_index = ? WHERE rowid = ?",
                        [(index, rowid) for rowid, label in rows if (index := leg_index(label)) is not None])


def _add_v5(db: sqlite_utils.Database) -> None:
    """Version 5: ``fills.trade_id`` and the unique index ``fills_trade`` on ``(run_id,
    client_order_id, trade_id)``. Fills a reconciliation stored again before (issue 14, finding 8)
    are deleted first: a row equal to an earlier one of its order in everything the venue said
    (price, amount, fee, its currency, time) but published at another moment (``ts_init``: a later
    process). Rows equal in all of that and published together are distinct executions (two
    makers of one size at one price, matched in the same millisecond) and stay."""
    _add_columns(db, "fills")
    db.execute("""
        DELETE FROM fills WHERE id IN (
            SELECT f.id FROM fills f JOIN (
                SELECT run_id, client_order_id, price, amount, fee, fee_currency, ts_event, min(id) AS first
                FROM fills GROUP BY run_id, client_order_id, price, amount, fee, fee_currency, ts_event
                HAVING count(*) > 1) g
            ON f.run_id = g.run_id AND f.client_order_id = g.client_order_id AND f.price = g.price
               AND f.amount = g.amount AND f.fee = g.fee AND f.fee_currency IS g.fee_currency
               AND f.ts_event = g.ts_event
            WHERE f.ts_init != (SELECT ts_init FROM fills WHERE id = g.first))""")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS fills_trade ON fills (run_id, client_order_id, trade_id)")


def leg_index(label: str) -> int | None:
    """The number at the end of an order label (``r-7-L1`` -> 1, ``r-7-H0`` -> 0); None if it has none."""
    _, _, tail = label.rpartition("-")
    return int(tail[1:]) if len(tail) > 1 and tail[0] in "LHU" and tail[1:].isdigit() else None


_MIGRATIONS: dict[int, c.Callable[[sqlite_utils.Database], None]] = {
    1: _create_v1, 2: _add_v2, 3: _add_v3, 4: _add_v4, 5: _add_v5}
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
