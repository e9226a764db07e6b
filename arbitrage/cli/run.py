"""``arb run``: the engine on a market source, with paper trading, until a duration or Ctrl-C.

Every plugin, the live view and the recorder included, is loaded by its entry-point name from
``run.plugins``: ``--record FILE`` adds ``recorder`` (and sets ``backtest.record``), and the live
view adds ``dashboard`` when stderr is a terminal and neither ``--no-ui`` nor ``--json`` is given
(otherwise ``dashboard`` is taken out, even if the settings file lists it). ``--redis URL`` adds
the ``redis`` mirror and ``--role collector|engine`` chooses the plugins of a split deployment
(``arbitrage.bridge.roles``, ``docs/redis.md``).
"""

from __future__ import annotations

import json
import sys
import typing as t
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, ProfileOpt, build_overrides, exit_for, fail, live_gate, load
from arbitrage.errors import ArbError, SettingsError

if t.TYPE_CHECKING:
    from arbitrage.settings import Settings


def run(
    strategy: str = typer.Option(None, help="Strategy plugin (see `arb strategies`)."),
    source: str = typer.Option(None, help="Market source: sim, ccxt (live exchanges), replay."),
    exchanges: str = typer.Option(None, help="ccxt: exchange ids, comma-separated (binance,kraken)."),
    symbols: str = typer.Option(None, help="ccxt: unified symbols, comma-separated (BTC/USDT,ETH/USDT)."),
    rest: bool = typer.Option(None, "--rest/--websocket",
                              help="ccxt: poll REST order books instead of websockets."),
    exchange_url: list[str] = typer.Option(
        None, "--exchange-url", metavar="NAME=BASE",
        help="ccxt: move every URL of exchange NAME under BASE (repeatable)."),
    duration: float = typer.Option(None, help="Seconds to run (0 = until Ctrl-C)."),
    seed: int = typer.Option(None, help="Seed of the simulated market."),
    db: Path = typer.Option(None, help="SQLite database path.", dir_okay=False),
    config: Path = ConfigOpt,
    min_profit_bps: float = typer.Option(None, help="Smallest net profit to act on, in bps."),
    max_notional: float = typer.Option(None, help="Largest trade, in quote currency."),
    paper_balance: list[str] = typer.Option(None, help="ASSET=AMOUNT on every paper venue (repeatable)."),
    max_legs: int = typer.Option(None, help="Triangular: 3, or 4 for 4-asset cycles."),
    sequential_legs: bool = typer.Option(None, "--sequential-legs/--concurrent-legs",
                                         help="Cycles: one leg after another, each fill feeding the next."),
    live: bool = typer.Option(False, "--live", help="Real orders (--source ccxt, keys in the environment)."),
    yes: bool = typer.Option(False, "--yes", help="With --live: do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print only a JSON summary on stdout at exit."),
    no_ui: bool = typer.Option(False, "--no-ui", help="Plain log lines instead of the live view."),
    level: str = typer.Option(None, help="Log level (DEBUG, INFO, WARNING, ...)."),
    metrics_port: int = typer.Option(None, help="Serve /metrics and /health on 127.0.0.1:PORT."),
    notify: list[str] = typer.Option(None, "--notify", help="Apprise URL to notify (repeatable).",
                                     metavar="URL"),
    record: Path = typer.Option(None, "--record", help="Also record every book to FILE (.zst = compressed).",
                                dir_okay=False, metavar="FILE"),
    profile: str = ProfileOpt,
    redis: str = typer.Option(None, "--redis", metavar="URL",
                              help="Mirror events to Redis: redis://host:port/db, "
                                   "redis://user:pass@host:port, rediss:// (TLS)."),
    role: str = typer.Option(None, "--role", metavar="ROLE",
                             help="With --redis: collector (source only, books to Redis) or engine "
                                  "(books from Redis)."),
) -> None:
    """Run the arbitrage engine: market data -> strategy -> paper trading -> storage."""
    try:
        overrides = build_overrides(strategy=strategy, source=source, duration=duration, seed=seed, db=db,
                                    min_profit_bps=min_profit_bps, max_notional=max_notional, level=level,
                                    max_legs=max_legs, sequential_legs=sequential_legs,
                                    metrics_port=metrics_port, exchanges=exchanges, symbols=symbols,
                                    rest=rest, exchange_url=exchange_url)
    except ArbError as exc:
        fail(exc)
    if record is not None:
        overrides.setdefault("backtest", {})["record"] = str(record)
    overrides.update(redis_overrides(redis, role, source))
    settings = load(config, overrides, paper_balance, profile)
    ui = not (no_ui or as_json) and sys.stderr.isatty()
    from arbitrage.bridge.roles import role_run

    run_overrides = role_run(settings, run_plugins(settings, record=record is not None, ui=ui))
    if notify or run_overrides != {"plugins": settings.run.plugins}:
        if notify:  # --notify adds to the URLs of the file and the environment
            overrides["notify"] = {"urls": [*settings.notify.urls, *notify]}
        overrides.setdefault("run", {}).update(run_overrides)
        settings = load(config, overrides, paper_balance, profile)
    if settings.monitor.metrics_port and "monitor" not in settings.run.plugins:
        fail(SettingsError("--metrics-port", "needs the monitor plugin in run.plugins"))
    if settings.run.source == "ccxt":
        from arbitrage.exchanges.client import check_exchange_ids

        try:
            check_exchange_ids(settings.ccxt.exchanges)
        except ArbError as exc:
            fail(exc)
    settings = live_gate(settings, live=live, yes=yes)
    from arbitrage.engine import Engine, run_engine
    from arbitrage.logs import setup_logging

    setup_logging(settings.log, console=not ui, console_level="WARNING" if as_json else None)
    try:
        summary = run_engine(Engine(settings))
    except ArbError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        print_summary(summary)
    exit_for(summary["stop_reason"])


def redis_overrides(url: str | None, role: str | None, source: str | None) -> dict[str, t.Any]:
    """``--redis`` and ``--role`` as settings (``[redis]``); the engine role takes no ``--source``."""
    if role is not None and role not in ("collector", "engine"):
        fail(SettingsError("--role", f"expected collector or engine, got {role!r}"))
    if role == "engine" and source is not None:
        fail(SettingsError("--source", "the engine role reads its books from Redis (drop --source)"))
    values = {key: value for key, value in (("url", url), ("role", role)) if value is not None}
    return {"redis": values} if values else {}


def run_plugins(settings: Settings, *, record: bool, ui: bool) -> list[str]:
    """``run.plugins`` with ``recorder`` for ``--record`` and ``dashboard`` exactly when the view is on."""
    plugins = [name for name in settings.run.plugins if name != "dashboard"]
    if record and "recorder" not in plugins:
        plugins.append("recorder")
    if ui:
        plugins.append("dashboard")
    return plugins


def print_summary(summary: dict[str, t.Any]) -> None:
    """Human end-of-run summary on stdout."""
    from rich.console import Console
    from rich.table import Table

    from arbitrage.sources.gate import books_rejected

    table = Table(title=f"run {summary['run_id']}", min_width=44)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("elapsed", f"{summary['elapsed_s']:.1f} s ({summary['stop_reason']})")
    for key in ("events_processed", "opportunities", "rejected", "orders", "arbs_executed"):
        table.add_row(key.replace("_", " "), f"{summary[key]:,}")
    rejected = books_rejected(summary["plugins"].get(summary["source"], {}))
    if rejected:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in rejected.items())
        table.add_row("books rejected", f"{sum(rejected.values()):,} ({reasons})", style="yellow")
    for status, count in sorted(summary["arbs_by_status"].items()):
        table.add_row(f"  {status}", f"{count:,}")
    for quote, pnl in sorted(summary["net_pnl"].items()):
        table.add_row(f"net PnL ({quote})", f"{pnl:+,.6f}")
        table.add_row(f"  realized ({quote})", f"{summary['realized_pnl'].get(quote, 0.0):+,.6f}")
        table.add_row(f"  unrealized ({quote})", f"{summary['unrealized_pnl'].get(quote, 0.0):+,.6f}")
    for quote, fee in sorted(summary["fees"].items()):
        table.add_row(f"fees ({quote})", f"{fee:,.6f}")
    if summary["handler_errors"]:
        table.add_row("handler errors", str(summary["handler_errors"]), style="red")
    Console().print(table)
