"""Reports: what a stored run did, read back from its database.

``build_report`` returns plain JSON-ready data; ``render_report`` prints it as rich tables. The
counts mean what the engine's end-of-run summary means (see ``arbitrage.tally.Tally``):
``opportunities`` = Opportunity events, ``arbs_executed`` = ArbResult events (by status in
``arbs_by_status``), ``fees`` = per quote currency sums over the results, ``realized_pnl``,
``unrealized_pnl`` and ``net_pnl`` per quote currency as ``storage.queries.run_totals`` counts
them (results plus the newest state of each position). So ``arb run --json`` and
``arb report --json`` agree on those keys for the same run. ``positions`` lists the positions
still open at the end, each with its cost, last mark and unrealized profit.

Per arbitrage the figure is its net profit (``realized_profit + unrealized_profit``: what it left
open at its mark when it finished): ``win_rate`` counts results with net profit > 0, ``best_trade``
/ ``worst_trade`` rank by it, and each ``symbols`` row has ``net_pnl`` beside ``realized_pnl``.
Attribution: a venue's ``pnl_share`` is each arbitrage's net profit split over its legs'
venues in proportion to the notional they filled (hedges included); a result that filled nothing
is split evenly between its leg venues. A venue's ``fees`` are its orders' fees in the market's
quote, and those of fills that paid in another currency than their order: one charged in the base
valued at the order's average price (a fill's at its price); one in a third currency (BNB)
has no price in the database, so it is listed as it was charged, per currency, in ``other_fees``
(and the table's fees cell: ``0.2020 + 0.5 BNB``), never dropped. ``symbols`` rows are keyed by
market: the symbol of a cross-exchange arbitrage, or the route (``A/B > B/C > A/C``) of a
multi-market one.

``arb_states`` counts the arbitrages by their current state (the newest ``ArbStateChanged`` of
each: ``trading.arbstate``); ``attention`` lists every one in ``needs_attention`` or not in a final
state (cut off: the process stopped while it ran), with its last reason, what its ``ArbResult`` left
open (``residual``, and ``positions`` with their marks; no result if it was cut off), the orders of
its journal still open (``open_orders``) and the critical alerts naming it. A file from before
schema version 4 has no states: both are empty.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import typing as t
from collections import defaultdict
from pathlib import Path

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from arbitrage.errors import DataError
from arbitrage.storage.queries import OPEN_ORDER_STATUSES, arb_states, run_totals

__all__ = ["ALL_RUNS", "build_report", "list_runs", "render_report"]

ALL_RUNS = "all"
"""Pass as ``run_id`` to report every run in the database together."""


def _connect(db_path: str | Path) -> sqlite3.Connection:
    path = Path(db_path)
    if not path.is_file():
        raise DataError(f"{path}: no such database (runs are stored at storage.path, see settings)")
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("SELECT run_id FROM runs LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DataError(f"{path}: not an arb database ({exc})") from exc
    return conn


def list_runs(db_path: str | Path) -> list[dict[str, t.Any]]:
    """Every run in the database, newest first: id, times, source, strategy, live flag.

    :raises DataError: if the file is missing or is not an arb database.
    """
    conn = _connect(db_path)
    try:
        return [dict(row) for row in conn.execute(
            "SELECT run_id, started_at, ended_at, source, strategy, live FROM runs "
            "ORDER BY started_at DESC, rowid DESC")]
    finally:
        conn.close()


def _select_runs(conn: sqlite3.Connection, db_path: str | Path, run_id: str | None) -> list[sqlite3.Row]:
    runs = conn.execute("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC").fetchall()
    if not runs:
        raise DataError(f"{db_path}: no runs stored yet")
    if run_id is None or run_id == "latest":
        return [runs[0]]
    if run_id == ALL_RUNS:
        return runs
    matches = ([r for r in runs if r["run_id"] == run_id]
               or [r for r in runs if r["run_id"].startswith(run_id)])
    if not matches:
        raise DataError(f"{db_path}: no run {run_id!r} (latest is {runs[0]['run_id']})")
    if len(matches) > 1:
        names = ", ".join(r["run_id"] for r in matches[:5])
        raise DataError(f"run id prefix {run_id!r} is ambiguous: {names}")
    return matches


def _quote(symbol: str) -> str:
    return symbol.rpartition("/")[2] or symbol


def _add_fee(venue: dict[str, t.Any], fee: float, currency: str | None, symbol: str, price: float) -> None:
    """Add a fee to a venue row: in its market's quote, one charged in the base at ``price`` (what
    that base cost); one in a third currency to ``other_fees`` as charged (no price for it here)."""
    base, _, quote = symbol.rpartition("/")
    if not currency or currency == quote:
        venue["fees"] += fee
    elif currency == base:
        venue["fees"] += fee * price
    elif fee:
        venue["other_fees"][currency] = round(venue["other_fees"].get(currency, 0.0) + fee, 10)


def _venue_row(venue: str, quote: str) -> dict[str, t.Any]:
    return {"venue": venue, "quote": quote, "orders": 0, "filled_orders": 0, "rejected_orders": 0,
            "filled_notional": 0.0, "fees": 0.0, "other_fees": {}, "pnl_share": 0.0}


def _route(legs: list[dict[str, t.Any]]) -> str:
    symbols: list[str] = []
    for leg in legs:
        if leg.get("purpose", "leg") == "leg" and leg["symbol"] not in symbols:
            symbols.append(leg["symbol"])
    if not symbols:
        symbols = list(dict.fromkeys(leg["symbol"] for leg in legs))
    return " > ".join(symbols) or "?"


def _trade(row: sqlite3.Row, legs: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return {
        "opportunity_id": row["opportunity_id"], "run_id": row["run_id"], "strategy": row["strategy"],
        "status": row["status"], "market": _route(legs),
        "venues": list(dict.fromkeys(leg["venue"] for leg in legs)),
        "quote": row["quote"], "expected_profit": row["expected_profit"],
        "realized_profit": row["realized_profit"], "unrealized_profit": _unrealized(row),
        "net_profit": row["realized_profit"] + _unrealized(row), "fees": row["fees"],
        "ts_init": row["ts_init"],
    }


def _unrealized(row: sqlite3.Row) -> float:
    return row["unrealized_profit"] or 0.0  # NULL in rows written before positions were valued


def build_report(db_path: str | Path, run_id: str | None = None) -> dict[str, t.Any]:
    """Summarise one stored run (the latest by default) or, with ``run_id="all"``, every run.

    :param run_id: a run id, a unique prefix of one, ``None``/``"latest"``, or ``"all"``.
    :raises DataError: if the database is missing, is not an arb database, has no runs, or has no
        run matching ``run_id``.
    """
    conn = _connect(db_path)
    try:
        runs = _select_runs(conn, db_path, run_id)
        ids = [r["run_id"] for r in runs]
        return _build(conn, runs, ids, all_runs=run_id == ALL_RUNS)
    finally:
        conn.close()


def _build(conn: sqlite3.Connection, runs: list[sqlite3.Row], ids: list[str], *,
           all_runs: bool) -> dict[str, t.Any]:
    marks = ", ".join("?" * len(ids))
    totals = run_totals(conn, ids)
    expected: dict[str, float] = defaultdict(float)
    slippage: dict[str, float] = defaultdict(float)
    residual: dict[str, float] = defaultdict(float)
    venue_pnl: dict[tuple[str, str], float] = defaultdict(float)
    markets: dict[tuple[str, str], dict[str, t.Any]] = {}
    best: dict[str, t.Any] | None = None
    worst: dict[str, t.Any] | None = None
    wins = 0
    for row in conn.execute(f"SELECT * FROM arb_results WHERE run_id IN ({marks}) ORDER BY rowid", ids):
        legs = msgspec.json.decode(row["legs"]) if row["legs"] else []
        quote, realized = row["quote"], row["realized_profit"]
        net = realized + _unrealized(row)
        expected[quote] += row["expected_profit"]
        slippage[quote] += row["slippage"]
        wins += net > 0
        for asset, amount in (msgspec.json.decode(row["residual"]) if row["residual"] else {}).items():
            residual[asset] += amount
        weights: dict[str, float] = defaultdict(float)
        for leg in legs:
            weights[leg["venue"]] += abs(leg.get("filled", 0.0) * leg.get("average_price", 0.0))
        total = sum(weights.values())
        for venue, weight in weights.items():
            venue_pnl[(venue, quote)] += net * (weight / total if total else 1 / len(weights))
        market = markets.setdefault((_route(legs), quote), {
            "market": _route(legs), "quote": quote, "arbs": 0, "complete": 0, "net_pnl": 0.0,
            "realized_pnl": 0.0, "expected_pnl": 0.0, "fees": 0.0})
        market["arbs"] += 1
        market["complete"] += row["status"] == "complete"
        market["net_pnl"] += net
        market["realized_pnl"] += realized
        market["expected_pnl"] += row["expected_profit"]
        market["fees"] += row["fees"]
        if best is None or net > best["net_profit"]:
            best = _trade(row, legs)
        if worst is None or net < worst["net_profit"]:
            worst = _trade(row, legs)

    venues: dict[tuple[str, str], dict[str, t.Any]] = {}
    for row in conn.execute(
            f"SELECT venue, symbol, status, filled, average_price, fee, fee_currency FROM orders "
            f"WHERE run_id IN ({marks}) ORDER BY rowid", ids):
        quote = _quote(row["symbol"])
        venue = venues.setdefault((row["venue"], quote), _venue_row(row["venue"], quote))
        venue["orders"] += 1
        filled = row["filled"] or 0.0
        venue["filled_orders"] += filled > 0
        venue["rejected_orders"] += row["status"] == "rejected"
        venue["filled_notional"] += filled * (row["average_price"] or 0.0)
        _add_fee(venue, row["fee"] or 0.0, row["fee_currency"], row["symbol"], row["average_price"] or 0.0)
    # an order's fee is what it paid in one currency; fills that paid in another (BNB while the
    # account held it) keep theirs (trading.venue.other_fees)
    for row in conn.execute(
            "SELECT f.venue, f.symbol, f.price, f.fee, f.fee_currency FROM fills f JOIN orders o "
            "ON o.run_id = f.run_id AND o.client_order_id = f.client_order_id "
            f"WHERE f.run_id IN ({marks}) AND f.fee != 0 AND f.fee_currency IS NOT o.fee_currency "
            "ORDER BY f.id", ids):
        quote = _quote(row["symbol"])
        venue = venues.setdefault((row["venue"], quote), _venue_row(row["venue"], quote))
        _add_fee(venue, row["fee"], row["fee_currency"], row["symbol"], row["price"])
    for (name, quote), pnl in venue_pnl.items():
        venues.setdefault((name, quote), _venue_row(name, quote))["pnl_share"] = pnl

    alerts: dict[str, int] = defaultdict(int)
    for row in conn.execute(
            f"SELECT level, count(*) AS n FROM alerts WHERE run_id IN ({marks}) GROUP BY level", ids):
        alerts[row["level"]] = row["n"]
    reasons = {row["reason"]: row["n"] for row in conn.execute(
        f"SELECT reason, count(*) AS n FROM rejections WHERE run_id IN ({marks}) GROUP BY reason "
        "ORDER BY n DESC, reason", ids)}

    positions = [
        {"run_id": row["run_id"], "venue": row["venue"], "asset": row["asset"], "quote": row["quote"],
         "amount": row["amount"], "cost": row["cost"], "mark": row["mark"], "stale": bool(row["stale"]),
         "unrealized": round(row["amount"] * row["mark"] - row["cost"], 10)}
        for row in conn.execute(f"SELECT * FROM positions WHERE run_id IN ({marks}) AND amount != 0 "
                                "ORDER BY venue, asset, quote, run_id", ids)]

    first, last = runs[-1], runs[0]
    arbs = totals["arbs_executed"]
    summary = msgspec.json.decode(last["summary"]) if last["summary"] and not all_runs else {}
    return {
        "run_id": "all" if all_runs else last["run_id"],
        "runs": ids,
        "started_at": first["started_at"],
        "ended_at": last["ended_at"],
        "finished": all(r["ended_at"] is not None for r in runs),
        "duration_s": sum(_seconds(r["started_at"], r["ended_at"]) for r in runs),
        "source": ", ".join(dict.fromkeys(r["source"] for r in runs)),
        "strategy": ", ".join(dict.fromkeys(r["strategy"] for r in runs)),
        "live": any(r["live"] for r in runs),
        "stop_reason": summary.get("stop_reason", ""),
        "opportunities": totals["opportunities"],
        "rejected": totals["rejected"],
        "rejection_reasons": reasons,
        "orders": totals["orders"],
        "arbs_executed": arbs,
        "arbs_by_status": totals["arbs_by_status"],
        "win_rate": round(wins / arbs, 4) if arbs else None,
        "realized_pnl": totals["realized_pnl"],
        "unrealized_pnl": totals["unrealized_pnl"],
        "net_pnl": totals["net_pnl"],
        "positions": positions,
        "expected_pnl": {k: round(v, 10) for k, v in expected.items()},
        "fees": totals["fees"],
        "slippage": {k: round(v, 10) for k, v in slippage.items()},
        "residual": {k: round(v, 10) for k, v in residual.items() if abs(v) > 1e-12},
        "alerts": dict(alerts),
        "venues": [_rounded(v) for _, v in sorted(venues.items())],
        "symbols": [_rounded(m) for m in sorted(markets.values(), key=lambda m: (-m["arbs"], m["market"]))],
        "best_trade": best,
        "worst_trade": worst,
        **_states(conn, ids),
        "rows": totals["rows"],
    }


_FINAL = ("done", "needs_attention")  # trading.arbstate.FINAL (storage does not import trading)


def _states(conn: sqlite3.Connection, ids: list[str]) -> dict[str, t.Any]:
    """``arb_states`` (current state -> count) and ``attention`` (module doc)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'arb_states'").fetchone():  # before v4
        return {"arb_states": {}, "attention": []}
    current = arb_states(conn, ids)
    counts: dict[str, int] = defaultdict(int)
    for arb in current:
        counts[arb["state"]] += 1
    attention = []
    for arb in current:
        if arb["state"] == "done":
            continue
        run_id, oid = arb["run_id"], arb["opportunity_id"]
        result = conn.execute("SELECT status, residual, positions FROM arb_results WHERE run_id = ? AND "
                              "opportunity_id = ?", (run_id, oid)).fetchone()
        residual = msgspec.json.decode(result["residual"]) if result and result["residual"] else {}
        positions = msgspec.json.decode(result["positions"]) if result and result["positions"] else []
        marks = ", ".join("?" * len(OPEN_ORDER_STATUSES))
        orders = [dict(row) for row in conn.execute(
            f"SELECT client_order_id, label, venue, symbol, side, amount, price, status, filled FROM orders "
            f"WHERE run_id = ? AND opportunity_id = ? AND status IN ({marks}) ORDER BY rowid",
            (run_id, oid, *OPEN_ORDER_STATUSES))]
        names = (f"{oid}:", f"{oid} ", f"({oid}-")  # its own alerts, and its orders' (by label)
        alerts = [row["message"] for row in conn.execute(
            "SELECT message FROM alerts WHERE run_id = ? AND level = 'critical' AND recovered = 0 "
            "AND instr(message, ?) > 0 ORDER BY id", (run_id, oid))
            if row["message"].startswith(names[:2]) or names[2] in row["message"]]
        attention.append({
            "run_id": run_id, "opportunity_id": oid, "state": arb["state"], "final": arb["state"] in _FINAL,
            "reason": arb["reason"], "since": arb["ts_init"], "result": result["status"] if result else None,
            "residual": {k: v for k, v in residual.items() if v},
            "positions": [{k: p.get(k) for k in ("venue", "asset", "quote", "amount", "mark", "stale")}
                          for p in positions],
            "open_orders": orders, "alerts": alerts})
    return {"arb_states": dict(counts), "attention": attention}


def _seconds(start: str | None, end: str | None) -> float:
    """Length of a run in seconds (0 while it has no end)."""
    if not start or not end:
        return 0.0
    try:
        return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 3)
    except ValueError:
        return 0.0


def _rounded(row: dict[str, t.Any]) -> dict[str, t.Any]:
    return {k: round(v, 10) if isinstance(v, float) else v for k, v in row.items()}


# -- rendering ---------------------------------------------------------------------------------------


def _money(amounts: dict[str, float], signed: bool = True) -> str:
    if not amounts:
        return "0"
    parts = [f"{_signed(v) if signed else f'{v:,.4f}'} {escape(k)}" for k, v in sorted(amounts.items())]
    return ", ".join(parts)


def _signed(value: float) -> str:
    color = "green" if value > 0 else "red" if value < 0 else "white"
    return f"[{color}]{value:+,.4f}[/]"


def _trade_line(trade: dict[str, t.Any] | None) -> str:
    if trade is None:
        return "-"
    venues = " / ".join(trade["venues"])
    return (f"net {_signed(trade['net_profit'])} {escape(trade['quote'])} (realized "
            f"{_signed(trade['realized_profit'])}, unrealized {_signed(trade['unrealized_profit'])})  "
            f"{escape(trade['market'])} on {escape(venues)}  "
            f"[dim]({trade['status']}, {escape(trade['opportunity_id'])})[/]")


def render_report(report: dict[str, t.Any], console: Console) -> None:
    """Print a report from ``build_report`` as rich tables."""
    overview = Table(title=f"run {report['run_id']}", show_header=False, title_justify="left")
    overview.add_column(style="bold")
    overview.add_column()
    status = "finished" if report["finished"] else "[yellow]not finished (running or crashed)[/]"
    mode = "[red]live[/]" if report["live"] else "paper"
    overview.add_row("runs", str(len(report["runs"])) if report["run_id"] == "all" else report["run_id"])
    overview.add_row("period", f"{report['started_at']} → {report['ended_at'] or '…'}")
    overview.add_row("duration", f"{report['duration_s']:,.1f} s  {status}")
    overview.add_row("source / strategy", f"{report['source']} / {report['strategy']}  ({mode})")
    if report["stop_reason"]:
        overview.add_row("stop reason", escape(report["stop_reason"]))
    overview.add_row("opportunities", f"{report['opportunities']:,}  (rejected {report['rejected']:,})")
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(report["arbs_by_status"].items()))
    overview.add_row("arbs executed",
                     f"{report['arbs_executed']:,}" + (f"  ({by_status})" if by_status else ""))
    if report["win_rate"] is not None:
        overview.add_row("win rate", f"{report['win_rate']:.1%}  [dim](net profit > 0)[/]")
    overview.add_row("orders", f"{report['orders']:,}")
    overview.add_row("realized PnL", _money(report["realized_pnl"]))
    overview.add_row("unrealized PnL", _money(report["unrealized_pnl"]))
    overview.add_row("net PnL", _money(report["net_pnl"]))
    overview.add_row("expected PnL", _money(report["expected_pnl"]))
    overview.add_row("fees", _money(report["fees"], signed=False))
    if report["residual"]:
        residual = ", ".join(f"{v:+g} {escape(k)}" for k, v in report["residual"].items())
        overview.add_row("[yellow]residual exposure[/]", residual)
    if report["alerts"]:
        overview.add_row("alerts", ", ".join(f"{k} {v}" for k, v in sorted(report["alerts"].items())))
    overview.add_row("best trade", _trade_line(report["best_trade"]))
    overview.add_row("worst trade", _trade_line(report["worst_trade"]))
    if report["arb_states"]:
        overview.add_row("arbitrage states", ", ".join(
            f"{'[red]' if k == 'needs_attention' else ''}{k} {v}{'[/]' if k == 'needs_attention' else ''}"
            for k, v in sorted(report["arb_states"].items())))
    console.print(overview)

    if report["attention"]:
        attention = Table(title="[red]arbitrages that need attention or did not finish[/]",
                          title_justify="left")
        for name in ("arbitrage", "state", "left open (mark)", "why"):
            attention.add_column(name)
        for a in report["attention"]:
            open_ = ", ".join(f"{p['amount']:+.8g} {escape(p['asset'])} on {escape(p['venue'])} @ "
                              f"{p['mark']:.8g} {escape(p['quote'])}" for p in a["positions"])
            if not open_ and a["residual"]:
                open_ = ", ".join(f"{v:+.8g} {escape(k)}" for k, v in a["residual"].items())
            if a["result"] is None:
                orders = ", ".join(f"{escape(o['label'] or o['client_order_id'])} {o['status']}"
                                   for o in a["open_orders"])
                open_ = "no result (cut off)" + (f"; open orders: {orders}" if orders else "")
            state = a["state"] if a["final"] else f"{a['state']} [yellow](not finished)[/]"
            attention.add_row(escape(a["opportunity_id"]), state, open_ or "-",
                              escape("; ".join(a["alerts"]) or a["reason"]))
        console.print(attention)

    if report["positions"]:
        positions = Table(title="open positions", title_justify="left")
        for name, justify in (("venue", "left"), ("asset", "left"), ("amount", "right"), ("cost", "right"),
                              ("mark", "right"), ("unrealized", "right")):
            positions.add_column(name, justify=justify)  # type: ignore[arg-type]
        for p in report["positions"]:
            stale = "  [yellow]last known[/]" if p["stale"] else ""
            mark = f"{p['mark']:,.8g} {escape(p['quote'])}{stale}"
            positions.add_row(escape(p["venue"]), escape(p["asset"]), f"{p['amount']:+,.8g}",
                              f"{p['cost']:,.4f}", mark, _signed(p["unrealized"]))
        console.print(positions)

    if report["venues"]:
        venues = Table(title="venues", title_justify="left")
        for name, justify in (("venue", "left"), ("quote", "left"), ("orders", "right"), ("filled", "right"),
                              ("rejected", "right"), ("filled notional", "right"), ("fees", "right"),
                              ("net PnL share", "right")):
            venues.add_column(name, justify=justify)  # type: ignore[arg-type]
        for v in report["venues"]:
            venues.add_row(escape(v["venue"]), escape(v["quote"]), f"{v['orders']:,}",
                           f"{v['filled_orders']:,}", f"{v['rejected_orders']:,}",
                           f"{v['filled_notional']:,.2f}",
                           " + ".join([f"{v['fees']:,.4f}", *(f"{amount:,.8g} {escape(currency)}" for
                                                               currency, amount in v["other_fees"].items())]),
                           _signed(v["pnl_share"]))
        console.print(venues)

    if report["symbols"]:
        symbols = Table(title="markets", title_justify="left")
        for name, justify in (("market", "left"), ("quote", "left"), ("arbs", "right"), ("complete", "right"),
                              ("net PnL", "right"), ("realized PnL", "right"), ("expected PnL", "right"),
                              ("fees", "right")):
            symbols.add_column(name, justify=justify)  # type: ignore[arg-type]
        for m in report["symbols"]:
            symbols.add_row(escape(m["market"]), escape(m["quote"]), f"{m['arbs']:,}", f"{m['complete']:,}",
                            _signed(m["net_pnl"]), _signed(m["realized_pnl"]), _signed(m["expected_pnl"]),
                            f"{m['fees']:,.4f}")
        console.print(symbols)

    if report["rejection_reasons"]:
        reasons = Table(title="rejections", title_justify="left")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, count in report["rejection_reasons"].items():
            reasons.add_row(escape(reason), f"{count:,}")
        console.print(reasons)
