"""``arb record``, ``arb backtest`` and ``arb optimize``: thin commands over ``arbitrage.backtest``.

Everything heavy (engine, readers, matplotlib) is imported inside the commands, so ``arb --help``
stays fast. Backtests trade on paper venues only, and still pass the one ``--live`` gate
(``run.live`` in the settings is refused as ``arb run`` refuses it); ``arb record`` sends no order.
"""

from __future__ import annotations

import json
import sys
import time
import typing as t
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, ProfileOpt, build_overrides, exit_for, fail, load, refuse_live
from arbitrage.errors import ArbError, PluginError, SettingsError

DataOpt = typer.Option(..., "--data", help="Recording to replay (repeatable): .jsonl or .jsonl.zst, "
                       "top-of-book or Tardis .csv (.csv.gz), an arb .db (FILE.db#RUN_ID for one run).",
                       metavar="FILE")
FeeOpt = typer.Option(None, "--fee", help="Taker fee for every market, e.g. 0.001 (overrides recorded fees).")
ParamOpt = typer.Option(None, "--param", help="KEY=VALUE setting, e.g. cooldown_ms=0 or trading.latency_ms=5 "
                        "(repeatable).", metavar="KEY=VALUE")
BalanceOpt = typer.Option(None, help="ASSET=AMOUNT on every paper venue (repeatable).")


def _overrides(params: list[str] | None, **flags: t.Any) -> dict[str, t.Any]:
    """``--param`` values first, then the named flags on top (a flag is more specific)."""
    from arbitrage.settings.profiles import parse_assignment, parse_value, set_value

    overrides: dict[str, t.Any] = {}
    try:
        for item in params or []:
            key, value = parse_assignment(item)
            set_value(overrides, key, parse_value(value))
    except ArbError as exc:
        fail(exc)
    fee, latency, db = flags.pop("fee", None), flags.pop("latency_ms", None), flags.pop("db", None)
    for section, values in build_overrides(**flags).items():
        overrides.setdefault(section, {}).update(values)
    if fee is not None:
        overrides.setdefault("backtest", {})["fee"] = fee
    if latency is not None:
        overrides.setdefault("trading", {})["latency_ms"] = latency
    if db is not None:  # a backtest's database is not the one `arb run` writes (storage.backtest_path)
        overrides.setdefault("storage", {})["backtest_path"] = str(db)
    return overrides


def record(
    out: Path = typer.Option(..., "--out", "-o", help="Recording to write (.jsonl; .zst = zstd-compressed).",
                             dir_okay=False),
    source: str = typer.Option("sim", help="Market source to record: sim, ccxt (live exchanges)."),
    duration: float = typer.Option(60.0, help="Seconds to record."),
    seed: int = typer.Option(None, help="Seed of the simulated market."),
    exchanges: str = typer.Option(None, help="ccxt: exchange ids, comma-separated (binance,kraken)."),
    symbols: str = typer.Option(None, help="ccxt: unified symbols, comma-separated (BTC/USDT,ETH/USDT)."),
    exchange_url: list[str] = typer.Option(
        None, "--exchange-url", metavar="NAME=BASE",
        help="ccxt: move every URL of exchange NAME under BASE (repeatable)."),
    config: Path = ConfigOpt,
) -> None:
    """Record every book of a market source as JSON lines, for `arb backtest`."""
    if duration <= 0:
        fail(SettingsError("--duration", f"must be > 0 seconds to record, got {duration}"))
    if source == "replay":
        fail(SettingsError("--source", "record a live or simulated source, not a replay"))
    try:
        overrides = build_overrides(source=source, duration=duration, seed=seed, exchanges=exchanges,
                                    symbols=symbols, exchange_url=exchange_url)
    except ArbError as exc:
        fail(exc)
    settings = load(config, overrides)
    from arbitrage.backtest.recorder import Recorder
    from arbitrage.engine import Engine, run_engine
    from arbitrage.logs import setup_logging
    from arbitrage.plugin import load_plugin

    setup_logging(settings.log, console=True, console_level="WARNING")
    try:
        source_cls = load_plugin(source, "source")
    except PluginError as exc:
        fail(exc)
    recorder = Recorder(out)
    try:
        started = time.monotonic()
        stopped = run_engine(Engine(settings, plugins=[source_cls(), recorder]), duration)["stop_reason"]
    except ArbError as exc:
        fail(exc)
    size = out.stat().st_size if out.exists() else 0
    summary = recorder.summary()
    typer.echo(f"recorded {summary['books']:,} books ({summary['lines'] - summary['books']} market lists) "
               f"from {source} to {out} ({size / 1e6:.2f} MB) in {time.monotonic() - started:.1f}s")
    exit_for(stopped)


def backtest(
    data: list[str] = DataOpt,
    strategy: str = typer.Option(None, help="Strategy plugin (see `arb strategies`)."),
    fee: float = FeeOpt,
    min_profit_bps: float = typer.Option(None, help="Smallest net profit to act on, in bps."),
    paper_balance: list[str] = BalanceOpt,
    max_notional: float = typer.Option(None, help="Largest trade, in quote currency."),
    latency_ms: float = typer.Option(None, help="Paper order latency, in event time."),
    param: list[str] = ParamOpt,
    db: Path = typer.Option(None, help="SQLite database to store the run in (default storage.backtest_path, "
                            "not the database of `arb run`).", dir_okay=False),
    config: Path = ConfigOpt,
    profile: str = ProfileOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    plot: Path = typer.Option(None, help="Write a PNG of cumulative PnL and spreads.", dir_okay=False,
                              metavar="PNG"),
) -> None:
    """Replay recorded books through the strategy and paper venues; report PnL deterministically."""
    overrides = _overrides(param, strategy=strategy, db=db, min_profit_bps=min_profit_bps,
                           max_notional=max_notional, fee=fee, latency_ms=latency_ms)
    settings = load(config, overrides, paper_balance, profile)
    refuse_live(settings)
    from rich.console import Console

    from arbitrage.backtest.runner import run_backtest
    from arbitrage.logs import setup_logging

    setup_logging(settings.log, console=True, console_level="WARNING")
    err = Console(stderr=True)
    started = time.monotonic()
    try:
        if as_json or not err.is_terminal:
            result = run_backtest(settings, data, plot=plot)
        else:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("replaying"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                          TimeRemainingColumn(), console=err, transient=True) as bar:
                task = bar.add_task("replay", total=None)
                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = run_backtest(settings, data, plot=plot, progress=progress)
    except ArbError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
        exit_for(result["stop_reason"])
        return
    from arbitrage.backtest.report import render_result

    render_result(result, _console(), time.monotonic() - started)
    if plot is not None:
        typer.echo(f"plot written to {plot}")
    exit_for(result["stop_reason"])


def optimize(
    data: list[str] = DataOpt,
    grid: list[str] = typer.Option(..., "--grid", help="KEY=V1,V2,... to search (repeatable), e.g. "
                                   "min_profit_bps=2,5,10.", metavar="KEY=VALUES"),
    strategy: str = typer.Option(None, help="Strategy plugin (see `arb strategies`)."),
    jobs: int = typer.Option(None, min=1, help="Worker processes (default: one per CPU)."),
    save: str = typer.Option(None, help="Write the best parameters to profiles/NAME.toml.", metavar="NAME"),
    quote: str = typer.Option(None, help="Rank by net PnL in this currency (default: the most traded)."),
    fee: float = FeeOpt,
    latency_ms: float = typer.Option(None, help="Paper order latency, in event time, for every backtest."),
    paper_balance: list[str] = BalanceOpt,
    param: list[str] = ParamOpt,
    config: Path = ConfigOpt,
    profile: str = ProfileOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the ranked rows as JSON."),
) -> None:
    """Backtest every combination of a parameter grid in parallel and rank by net PnL."""
    from arbitrage.backtest.optimize import parse_grid, run_grid, save_profile

    overrides = _overrides(param, strategy=strategy, fee=fee, latency_ms=latency_ms)
    settings = load(config, overrides, paper_balance, profile)
    refuse_live(settings)
    try:
        parsed = parse_grid(grid)
        rows = run_grid(settings, data, parsed, jobs=jobs, quote=quote.upper() if quote else None)
    except ArbError as exc:
        fail(exc)
    saved = None
    if save and rows:
        try:
            saved = save_profile(save, rows[0], strategy=settings.run.strategy, data=data)
        except (ArbError, OSError, ValueError) as exc:
            fail(exc if isinstance(exc, ArbError) else SettingsError("--save", str(exc)))
    if as_json:
        typer.echo(json.dumps({"rows": rows, "profile": str(saved) if saved else None}, sort_keys=True))
        return
    _print_ranking(rows, list(parsed))
    if saved is not None:
        typer.echo(f"best parameters saved to {saved} (use --profile {save})")


def _console() -> t.Any:
    """Rich console on stdout; 120 columns when it is not a terminal (pipes, files)."""
    from rich.console import Console

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120)


def _print_ranking(rows: list[dict[str, t.Any]], keys: list[str]) -> None:
    from rich.table import Table

    quote = rows[0]["quote"] if rows else ""
    title = f"parameter search: {len(rows)} backtests, ranked by net PnL ({quote}), then drawdown"
    table = Table(title=title)
    for col in ("rank", *keys, "opportunities", "arbs", "fill", f"net PnL {quote}", "max drawdown"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(str(row["rank"]), *(str(row["params"][k]) for k in keys), f"{row['opportunities']:,}",
                      f"{row['arbs']:,}", f"{row['fill_ratio']:.0%}", f"{row['net_pnl']:+,.6f}",
                      f"{row['drawdown']:,.6f}", style="bold" if row["rank"] == 1 else None)
    _console().print(table)
