"""Backtest report: the result dict rendered with rich, and the ``--plot`` PNG (matplotlib, headless)."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import typing as t
from pathlib import Path

__all__ = ["plot_result", "pnl_curve", "render_result"]


def _money(value: float) -> str:
    return f"{value:+,.6f}"


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def render_result(result: t.Mapping[str, t.Any], console: t.Any, elapsed_s: float | None = None) -> None:
    """Print the overview, the best and worst trades and the per venue pair and per symbol tables."""
    from rich.markup import escape
    from rich.table import Table

    title = f"backtest {result['run_id']} ({result['strategy']})"
    if elapsed_s:
        title += f" in {elapsed_s:.1f}s, {result['events'] / elapsed_s:,.0f} books/s"
    overview = Table(title=title, show_header=False)
    overview.add_column("figure")
    overview.add_column("value", justify="right")
    overview.add_row("data", f"{_when(result['first_ts'])} .. {_when(result['last_ts'])} UTC")
    overview.add_row("books replayed", f"{result['events']:,}")
    overview.add_row("opportunities", f"{result['opportunities']:,}  (rejected {result['rejected']:,})")
    statuses = ", ".join(f"{k} {v}" for k, v in result["arbs_by_status"].items())
    executed = f"{result['arbs_executed']:,}" + (f"  ({statuses})" if statuses else "")
    overview.add_row("arbs executed", executed)
    overview.add_row("fill ratio", f"{result['fill_ratio']:.1%}")
    for quote in sorted(set(result["net_pnl"]) | set(result["gross_pnl"])):
        overview.add_row(f"net PnL ({quote})", _money(result["net_pnl"].get(quote, 0.0)))
        overview.add_row(f"realized PnL ({quote})", _money(result["realized_pnl"].get(quote, 0.0)))
        overview.add_row(f"unrealized PnL ({quote})", _money(result["unrealized_pnl"].get(quote, 0.0)))
        if quote in result["gross_pnl"]:
            overview.add_row(f"gross PnL ({quote})", _money(result["gross_pnl"][quote]))
            overview.add_row(f"fees ({quote})", f"{result['fees'][quote]:,.6f}")
            overview.add_row(f"max drawdown ({quote})", f"{result['max_drawdown'][quote]:,.6f}")
    malformed = result["malformed"]["total"]
    reasons = ", ".join(f"{reason} {count}" for reason, count in result["malformed"]["reasons"].items())
    overview.add_row("malformed records skipped", f"{malformed} ({reasons})" if malformed else "0",
                     style="yellow" if malformed else None)
    if result["out_of_order"]:
        overview.add_row("out-of-order books", str(result["out_of_order"]), style="yellow")
    if result["handler_errors"]:
        overview.add_row("handler errors", str(result["handler_errors"]), style="red")
    overview.add_row("fingerprint", result["fingerprint"][:16])
    console.print(overview)
    for f in result["malformed"]["files"]:
        for example in f["examples"]:
            where = f"{f['path']}:{example['line']}" if example["line"] else f["path"]
            console.print(f"[yellow]malformed[/] {escape(where)}: {escape(example['reason'])}",
                          highlight=False, markup=True)
    if result["arbs"]:
        trades = Table(title="best and worst trades")
        for col in ("", "time (UTC)", "route", "buy", "sell", "net", "realized", "unrealized", "status"):
            trades.add_column(col, justify="right" if col.endswith(("net", "realized")) else "left")
        for label in ("best", "worst"):
            for row in (row for rows in result[label].values() for row in rows):
                trades.add_row(label, _when(row["ts"]), row["route"], row["buy_venue"], row["sell_venue"],
                               f"{_money(row['net_profit'])} {row['quote']}", _money(row["realized_profit"]),
                               _money(row["unrealized_profit"]), row["status"])
        console.print(trades)
        for key, label in (("by_venue_pair", "venue_pair"), ("by_symbol", "symbol")):
            table = Table(title=f"per {label.replace('_', ' ')}")
            for col in (label.replace("_", " "), "quote", "arbs", "complete", "net PnL", "realized PnL",
                        "fees"):
                table.add_column(col, justify="left" if col in ("quote",) or col.startswith(("venue", "sym"))
                                 else "right")
            for row in result[key]:
                table.add_row(row[label], row["quote"], str(row["arbs"]), str(row["complete"]),
                              _money(row["net_pnl"]), _money(row["realized_pnl"]), f"{row['fees']:,.6f}")
            console.print(table)


def pnl_curve(arbs: c.Iterable[t.Mapping[str, t.Any]], quote: str) -> tuple[list[int], list[float]]:
    """The ``--plot`` curve of ``quote``: when each arbitrage finished (ms) and the running sum of
    their net profit (realized plus what each left open at its mark)."""
    times: list[int] = []
    totals: list[float] = []
    total = 0.0
    for arb in arbs:
        if arb["quote"] == quote:
            total += arb["net_profit"]
            times.append(arb["ts"])
            totals.append(total)
    return times, totals


def plot_result(result: t.Mapping[str, t.Any], spreads: c.Sequence[tuple[int, str, float]],
                path: Path) -> Path:
    """Write a PNG: cumulative net PnL per quote currency (each arbitrage's net profit: realized plus
    what it left open at its mark), and the best cross-venue spread per symbol.

    Uses matplotlib's Agg canvas directly (no pyplot, no display needed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7), layout="constrained")
    FigureCanvasAgg(fig)
    pnl_ax, spread_ax = fig.subplots(2, 1, sharex=True)
    for quote in result["net_pnl"]:
        times, totals = pnl_curve(result["arbs"], quote)
        if times:
            pnl_ax.step([_datetime(ms) for ms in times], totals, where="post", label=quote)
    pnl_ax.set_title(f"cumulative net PnL, {result['arbs_executed']} arbs ({result['strategy']})")
    pnl_ax.set_ylabel("net PnL")
    pnl_ax.axhline(0.0, color="grey", linewidth=0.5)
    if result["net_pnl"]:
        pnl_ax.legend(loc="upper left")
    by_symbol: dict[str, tuple[list[t.Any], list[float]]] = {}
    for ts, symbol, bps in spreads:
        xs, ys = by_symbol.setdefault(symbol, ([], []))
        xs.append(_datetime(ts // 1_000_000))
        ys.append(bps)
    for symbol, (xs, ys) in sorted(by_symbol.items()):
        spread_ax.plot(xs, ys, linewidth=0.8, label=symbol)
    spread_ax.axhline(0.0, color="grey", linewidth=0.5)
    spread_ax.set_title("best cross-venue spread (bid on one venue over ask on another), before fees")
    spread_ax.set_ylabel("bps")
    spread_ax.set_xlabel("time (UTC)")
    locator = AutoDateLocator()
    spread_ax.xaxis.set_major_locator(locator)
    spread_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if by_symbol:
        spread_ax.legend(loc="upper left", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
