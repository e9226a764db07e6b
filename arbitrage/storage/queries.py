"""Read-side helpers: totals, arbitrage states and unfinished orders, read back from an arb database.

They exist apart from the writer because their callers (reports, start-up reconciliation, the
writer's end-of-run summary) only read, often from a file no writer has open.
"""

from __future__ import annotations

import collections.abc as c
import sqlite3
import typing as t
from collections import defaultdict
from pathlib import Path

from arbitrage.storage.schema import TABLES

__all__ = ["OPEN_ORDER_STATUSES", "arb_states", "run_totals", "unfinished_arbitrages", "unfinished_orders"]

OPEN_ORDER_STATUSES = ("submitted", "open", "unknown")
"""Order states that are not final: such an order may still be live on its venue (``unknown``: its
answer was lost and the venue's lookups did not find out)."""


def _placeholders(run_ids: c.Sequence[str]) -> str:
    return ", ".join("?" * len(run_ids))


def run_totals(conn: sqlite3.Connection, run_ids: str | c.Sequence[str]) -> dict[str, t.Any]:
    """Totals of one run (or several) with the meaning of the engine's summary.

    ``opportunities`` = Opportunity rows, ``arbs_executed`` = ArbResult rows (``arbs_by_status``),
    ``realized_pnl`` and ``fees`` = per quote currency sums of the results, added in the order the
    results were written (as the engine adds them), plus what reducing positions realized
    (positions in venue, asset, quote order, as the engine adds them);
    ``unrealized_pnl`` = the open positions' ``amount * mark - cost`` at their newest update;
    ``net_pnl`` = realized + unrealized; all rounded to 10 places like the engine does.
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
    unrealized: dict[str, float] = {}
    for quote, realized, amount, value in conn.execute(
            f"SELECT quote, realized, amount, amount * mark - cost FROM positions WHERE run_id IN ({marks}) "
            "ORDER BY venue, asset, quote, run_id", ids):
        if realized:
            pnl[quote] += realized
        if amount:
            unrealized[quote] = unrealized.get(quote, 0.0) + value
    net = dict(pnl)
    for quote, value in unrealized.items():
        net[quote] = net.get(quote, 0.0) + value
    return {
        "opportunities": rows["opportunities"],
        "rejected": rows["rejections"],
        "orders": rows["orders"],
        "arbs_executed": rows["arb_results"],
        "arbs_by_status": dict(by_status),
        "realized_pnl": {k: round(v, 10) for k, v in pnl.items()},
        "unrealized_pnl": {k: round(v, 10) for k, v in unrealized.items()},
        "net_pnl": {k: round(v, 10) for k, v in net.items()},
        "fees": {k: round(v, 10) for k, v in fees.items()},
        "rows": rows,
    }


def _read(path: str | Path) -> sqlite3.Connection | None:
    """A read-only connection to the database at ``path`` (rows as ``sqlite3.Row``), None if absent."""
    if not Path(path).exists():
        return None
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _journal(path: str | Path, query: c.Callable[[sqlite3.Connection], list[dict[str, t.Any]]],
             ) -> list[dict[str, t.Any]]:
    """``query`` on a read-only connection to the journal at ``path``; an empty list when the database
    does not exist or has no ``orders`` table (nothing was ever journaled there).

    :raises sqlite3.DatabaseError: when the journal exists but cannot be read (corrupt, locked, an
        I/O error, tables of another shape): "nothing to reconcile" would then be a guess, and
        trading must wait.
    """
    conn = _read(path)
    if conn is None:
        return []
    try:
        journaled = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orders'")
        if journaled.fetchone() is None:
            return []
        return query(conn)
    finally:
        conn.close()


def unfinished_orders(path: str | Path) -> list[dict[str, t.Any]]:
    """Orders of any run whose last known state is not final (``OPEN_ORDER_STATUSES``), oldest first,
    each with ``live`` (1 if its run traded for real, 0 paper, None if the run row is missing) and
    ``fills_stored`` (the amount its stored fills add up to: what reconciliation must not store again).

    These may still be live on their venue: start-up reconciliation asks the venue about each.
    Returns an empty list when the database does not exist; raises ``sqlite3.DatabaseError`` when
    it cannot be read (``_journal``).
    """
    def query(conn: sqlite3.Connection) -> list[dict[str, t.Any]]:
        marks = _placeholders(OPEN_ORDER_STATUSES)
        cursor = conn.execute(
            f"SELECT o.*, r.live AS live, (SELECT COALESCE(SUM(f.amount), 0.0) FROM fills f "
            f"WHERE f.run_id = o.run_id AND f.client_order_id = o.client_order_id) AS fills_stored "
            f"FROM orders o LEFT JOIN runs r ON r.run_id = o.run_id "
            f"WHERE o.status IN ({marks}) ORDER BY o.ts_submitted", OPEN_ORDER_STATUSES)
        return [dict(row) for row in cursor]

    return _journal(path, query)


def unfinished_arbitrages(path: str | Path) -> list[dict[str, t.Any]]:
    """Arbitrages of live runs that a process left unfinished, oldest first: those with an order
    whose state is not final, or with orders but no ``arb_results`` row in any run (the process
    died before its result). Live opportunity ids embed their run's id, so an arbitrage is its
    opportunity id across runs: the hedges a later run sent to finish it belong to it too. Each is
    its ``opportunities`` row (``None`` fields when the row was never written: it is batched, the
    orders are not) plus ``run_id`` (the run that found it), ``opportunity_id``, ``state`` (its
    newest ``arb_states`` row, None if none) and ``orders``: every order of it in any run, in
    submission order.

    Returns an empty list when the database does not exist; raises ``sqlite3.DatabaseError`` when
    it cannot be read (``_journal``).
    """
    def query(conn: sqlite3.Connection) -> list[dict[str, t.Any]]:
        marks = _placeholders(OPEN_ORDER_STATUSES)
        ids = [tuple(row) for row in conn.execute(
            "SELECT o.opportunity_id, min(o.run_id) FROM orders o LEFT JOIN runs r ON r.run_id = o.run_id "
            "WHERE r.live IS NOT 0 GROUP BY o.opportunity_id "  # a missing run row counts as live
            f"HAVING sum(o.status IN ({marks})) > 0 OR NOT EXISTS "
            "(SELECT 1 FROM arb_results a WHERE a.opportunity_id = o.opportunity_id) "
            "ORDER BY min(o.ts_submitted)", OPEN_ORDER_STATUSES)]
        out = []
        for opportunity_id, run_id in ids:
            row = conn.execute("SELECT * FROM opportunities WHERE id = ? ORDER BY ts_init LIMIT 1",
                               (opportunity_id,)).fetchone()
            arb = dict(row) if row is not None else dict.fromkeys(
                ("strategy", "quote", "profit", "profit_bps", "notional", "legs", "book_ts", "ts_event",
                 "ts_init"))
            state = conn.execute("SELECT state FROM arb_states WHERE opportunity_id = ? ORDER BY id DESC "
                                 "LIMIT 1", (opportunity_id,)).fetchone()
            arb.update(run_id=row["run_id"] if row is not None else run_id, opportunity_id=opportunity_id,
                       state=state[0] if state is not None else None,
                       orders=[dict(o) for o in conn.execute(
                           "SELECT * FROM orders WHERE opportunity_id = ? ORDER BY ts_submitted, rowid",
                           (opportunity_id,))])
            out.append(arb)
        return out

    return _journal(path, query)


def arb_states(conn: sqlite3.Connection,
               run_ids: str | c.Sequence[str] | None = None) -> list[dict[str, t.Any]]:
    """The current state of every arbitrage (of ``run_ids``, or of all runs): the newest
    ``arb_states`` row per ``(run_id, opportunity_id)``, in the order the arbitrages started.

    Each dict has ``run_id``, ``opportunity_id``, ``state``, ``reason``, ``ts_init`` (of that state)
    and ``started`` (``ts_init`` of its first state). An arbitrage whose state is not final
    (``trading.arbstate.FINAL``) was cut off: the process stopped before it finished.
    """
    where, params = "", []
    if run_ids is not None:
        params = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        where = f"WHERE run_id IN ({_placeholders(params)})"
    cursor = conn.execute(
        "SELECT s.run_id, s.opportunity_id, s.state, s.reason, s.ts_init, g.started FROM arb_states s "
        f"JOIN (SELECT run_id, opportunity_id, max(id) AS newest, min(ts_init) AS started FROM arb_states "
        f"{where} GROUP BY run_id, opportunity_id) g ON s.id = g.newest ORDER BY g.started, s.id", params)
    names = ("run_id", "opportunity_id", "state", "reason", "ts_init", "started")
    return [dict(zip(names, row, strict=True)) for row in cursor]
