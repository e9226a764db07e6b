"""The ``arb`` command line: thin typer commands that build settings and call one package function.

Heavy modules (the engine, ccxt, storage) are imported inside the commands so ``arb --help``
answers at once. ``ArbError`` becomes one line on stderr and its exit code; settings errors exit 2.
"""

from __future__ import annotations

import json
import sys
import typing as t
from pathlib import Path

import typer

from arbitrage.errors import ArbError, SettingsError

app = typer.Typer(
    name="arb",
    help="Real-time crypto arbitrage: find trades that pay after fees, execute both legs at once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(error: ArbError) -> t.NoReturn:
    """Print one line for an expected error and exit with its code."""
    prefix = "settings error" if isinstance(error, SettingsError) else "error"
    typer.echo(f"{prefix}: {error}", err=True)
    raise typer.Exit(error.exit_code)


def parse_balances(items: list[str]) -> dict[str, float]:
    """``["USDT=5000", "BTC=0.1"]`` -> ``{"USDT": 5000.0, "BTC": 0.1}``.

    :raises SettingsError: naming the bad item.
    """
    out: dict[str, float] = {}
    for item in items:
        asset, sep, amount = item.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not sep or not asset.strip() or value < 0:
            raise SettingsError("--paper-balance", f"expected ASSET=AMOUNT with AMOUNT >= 0, got {item!r}")
        out[asset.strip().upper()] = value
    return out


def build_overrides(**flags: t.Any) -> dict[str, t.Any]:
    """Turn command-line flags (None = not given) into a nested settings override."""
    mapping = {
        "strategy": ("run", "strategy"), "source": ("run", "source"), "duration": ("run", "duration"),
        "seed": ("run", "seed"), "db": ("storage", "path"), "min_profit_bps": ("strategy", "min_profit_bps"),
        "max_notional": ("strategy", "max_notional"), "level": ("log", "level"),
        "max_legs": ("strategy", "max_legs"), "sequential_legs": ("trading", "sequential_legs"),
        "metrics_port": ("monitor", "metrics_port"),
    }
    out: dict[str, t.Any] = {}
    for flag, value in flags.items():
        if value is None or flag not in mapping:
            continue
        section, key = mapping[flag]
        out.setdefault(section, {})[key] = str(value) if isinstance(value, Path) else value
    if flags.get("max_notional") is not None:  # one flag sets both the sizing cap and the risk limit
        out.setdefault("trading", {})["max_notional"] = flags["max_notional"]
    return out


def load(config: Path | None, overrides: dict[str, t.Any], paper_balance: list[str] | None = None,
         profile: str | None = None) -> t.Any:
    """Load settings with the layering rules, applying ``--paper-balance`` on top of the file's.

    :param profile: ``--profile NAME``: ``profiles/NAME.toml`` between the file and the environment.
    """
    from arbitrage.settings import load_settings

    try:
        settings = load_settings(config, overrides, profile=profile)
        if paper_balance:
            extra = parse_balances(paper_balance)
            merged = {**settings.paper.balances, **extra}
            settings = load_settings(config, {**overrides, "paper": {"balances": merged}}, profile=profile)
    except ArbError as exc:
        fail(exc)
    return settings


ConfigOpt = typer.Option(None, "--config", "-c", help="Settings file (default ./settings.toml).",
                         dir_okay=False)


@app.command()
def run(
    strategy: str = typer.Option(None, help="Strategy plugin (see `arb strategies`)."),
    source: str = typer.Option(None, help="Market source: sim."),
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
    live: bool = typer.Option(False, "--live", help="Send real orders (needs exchange keys)."),
    as_json: bool = typer.Option(False, "--json", help="Print only a JSON summary on stdout at exit."),
    no_ui: bool = typer.Option(False, "--no-ui", help="Plain log lines instead of the live view."),
    level: str = typer.Option(None, help="Log level (DEBUG, INFO, WARNING, ...)."),
    metrics_port: int = typer.Option(None, help="Serve /metrics and /health on 127.0.0.1:PORT."),
    notify: list[str] = typer.Option(None, "--notify", help="Apprise URL to notify (repeatable).",
                                     metavar="URL"),
    record: Path = typer.Option(None, "--record", help="Also record every book to FILE (.zst = compressed).",
                                dir_okay=False, metavar="FILE"),
    profile: str = typer.Option(None, "--profile", metavar="NAME",
                                help="Settings profile profiles/NAME.toml (written by arb optimize --save)."),
) -> None:
    """Run the arbitrage engine: market data -> strategy -> paper trading -> storage."""
    overrides = build_overrides(strategy=strategy, source=source, duration=duration, seed=seed, db=db,
                                min_profit_bps=min_profit_bps, max_notional=max_notional, level=level,
                                max_legs=max_legs, sequential_legs=sequential_legs, metrics_port=metrics_port)
    settings = load(config, overrides, paper_balance, profile)
    if notify:  # --notify adds to the URLs of the file and the environment
        overrides["notify"] = {"urls": [*settings.notify.urls, *notify]}
        settings = load(config, overrides, paper_balance, profile)
    if settings.monitor.metrics_port and "monitor" not in settings.run.plugins:
        fail(SettingsError("--metrics-port", "needs the monitor plugin in run.plugins"))
    if live or settings.run.live:
        fail(SettingsError("--live", "live trading is not available in this version; paper trading only"))
    from arbitrage.engine import Engine, run_engine
    from arbitrage.logs import setup_logging

    ui = not (no_ui or as_json) and sys.stderr.isatty()
    setup_logging(settings.log, console=not ui, console_level="WARNING" if as_json else None)
    try:
        engine = Engine(settings)
        if record is not None:
            from arbitrage.backtest.recorder import Recorder

            engine.plugins.append(Recorder(record))
        if ui:
            from arbitrage.dashboard import Dashboard

            engine.plugins.append(Dashboard())
        summary = run_engine(engine)
    except ArbError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        print_summary(summary)


def print_summary(summary: dict[str, t.Any]) -> None:
    """Human end-of-run summary on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {summary['run_id']}", min_width=44)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("elapsed", f"{summary['elapsed_s']:.1f} s ({summary['stop_reason']})")
    for key in ("events_processed", "opportunities", "rejected", "orders", "arbs_executed"):
        table.add_row(key.replace("_", " "), f"{summary[key]:,}")
    for status, count in sorted(summary["arbs_by_status"].items()):
        table.add_row(f"  {status}", f"{count:,}")
    for quote, pnl in sorted(summary["realized_pnl"].items()):
        table.add_row(f"realized PnL ({quote})", f"{pnl:+,.6f}")
    for quote, fee in sorted(summary["fees"].items()):
        table.add_row(f"fees ({quote})", f"{fee:,.6f}")
    if summary["handler_errors"]:
        table.add_row("handler errors", str(summary["handler_errors"]), style="red")
    Console().print(table)


@app.command()
def scan(
    data: Path = typer.Option(..., "--data", help="Snapshot: top-of-book CSV or JSON-lines recording.",
                              exists=False, dir_okay=False),
    strategy: str = typer.Option("triangular", help="Strategy to scan with: triangular."),
    venue: str = typer.Option(None, help="Venue name for a CSV snapshot, or the only venue to keep."),
    fee: float = typer.Option(None, help="Taker fee for every market, a fraction (0.001 = 0.1 %)."),
    min_profit_bps: float = typer.Option(None, help="Smallest net profit to list, in bps."),
    max_legs: int = typer.Option(None, help="3, or 4 for 4-asset cycles."),
    limit: int = typer.Option(20, help="Rows to show (the JSON output has all)."),
    config: Path = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, best first."),
) -> None:
    """List every opportunity in one snapshot of books, best first (one shot, no trading)."""
    from arbitrage.errors import DataError
    from arbitrage.readers.snapshot import load_snapshot
    from arbitrage.scan import STRATEGY
    from arbitrage.scan import scan as run_scan

    settings = load(config, build_overrides(min_profit_bps=min_profit_bps, max_legs=max_legs))
    if strategy != STRATEGY:
        fail(SettingsError("--strategy", f"arb scan supports {STRATEGY!r}, got {strategy!r}"))
    if fee is not None and not 0 <= fee < 1:
        fail(SettingsError("--fee", f"expected a fraction in [0, 1), got {fee}"))
    try:
        snapshot = load_snapshot(data, venue=venue)
    except FileNotFoundError:
        fail(DataError(f"{data}: no such file"))
    except ArbError as exc:
        fail(exc)
    found = run_scan(snapshot.books, snapshot.markets, fee_override=fee,
                     min_profit_bps=settings.strategy.min_profit_bps, max_legs=settings.strategy.max_legs,
                     start_assets=settings.strategy.start_assets or None)
    if as_json:
        typer.echo(json.dumps(found))
        return
    print_scan(found[:limit], len(found), len(snapshot.books))


def print_scan(rows: list[dict[str, t.Any]], total: int, books: int) -> None:
    """Human table of scan results."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{total} opportunities in {books} books (showing {len(rows)})")
    for column in ("bps", "cycle", "legs", "spend", "profit"):
        table.add_column(column, justify="right" if column in ("bps", "spend", "profit") else "left")
    for row in rows:
        legs = "\n".join(f"{leg['side']} {leg['amount']:g} {leg['symbol']} @ {leg['price']:g}"
                          for leg in row["legs"])
        table.add_row(f"{row['profit_bps']:.2f}", "→".join(row["assets"]), legs,
                      f"{row['amount']:.6g} {row['start_asset']}", f"{row['profit']:.6g}")
    Console().print(table)


@app.command()
def strategies() -> None:
    """List the installed strategies, one line each."""
    from arbitrage.plugin import plugins_of_kind

    for name, cls in plugins_of_kind("strategy").items():
        typer.echo(f"{name:16} {cls.description}")


@app.command()
def report(
    db: Path = typer.Option(None, help="SQLite database path (default from settings).", dir_okay=False),
    run_id: str = typer.Option(None, "--run", help="Run id (default: the latest run)."),
    config: Path = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Report PnL, counts and per-venue and per-symbol tables from the database."""
    from arbitrage.report import build_report, render_report

    settings = load(config, build_overrides(db=db))
    try:
        result = build_report(Path(settings.storage.path), run_id)
    except ArbError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True, default=str))
    else:
        from rich.console import Console

        render_report(result, Console())


@app.command()
def logs(
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    level: str = typer.Option(None, help="Only this level and above."),
    grep: str = typer.Option(None, help="Only lines whose message contains this text."),
    run_id: str = typer.Option(None, "--run", help="Only this run."),
    venue: str = typer.Option(None, help="Only this venue."),
    symbol: str = typer.Option(None, help="Only this symbol."),
    opportunity: str = typer.Option(None, help="Only this opportunity id."),
    file: Path = typer.Option(None, help="Log file (default from settings).", dir_okay=False),
    config: Path = ConfigOpt,
) -> None:
    """Print the JSON-lines log file readably; -f follows it."""
    from rich.console import Console

    from arbitrage.logs import follow_log, format_record, read_log

    console = Console(highlight=False)
    path = file or Path(load(config, {}).log.file)
    filters = {"level": level, "grep": grep, "run": run_id, "venue": venue, "symbol": symbol,
               "opportunity": opportunity}
    try:
        records = follow_log(path, **filters) if follow else read_log(path, **filters)
        for record in records:
            if console.is_terminal:
                console.print(format_record(record))
            else:
                typer.echo(format_record(record, markup=False))
    except ArbError as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def main() -> None:
    """Console-script entry point."""
    app()


import arbitrage.cli_backtest  # noqa: E402,F401  (registers commands)
from arbitrage import cli_monitor  # noqa: E402,F401
