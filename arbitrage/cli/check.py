"""``arb check``: per exchange, reachable, markets, websocket support, symbols, keys (never shown)."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, build_overrides, fail, load
from arbitrage.errors import SettingsError

if t.TYPE_CHECKING:
    from arbitrage.exchanges.check import ExchangeReport

ExchangesOpt = typer.Option(None, "--exchanges", "--exchange",
                            help="ccxt exchange ids, comma-separated or repeated "
                                 "(default \\[ccxt] exchanges).")
ExchangeUrlOpt = typer.Option(None, "--exchange-url", metavar="NAME=BASE",
                              help="Move every URL of exchange NAME under BASE (an emulator, a gateway).")
SymbolsOpt = typer.Option(None, "--symbols",
                          help="Unified symbols, comma-separated (default \\[ccxt] symbols).")


def check(
    exchanges: list[str] = ExchangesOpt,
    exchange_url: list[str] = ExchangeUrlOpt,
    symbols: str = SymbolsOpt,
    timeout: float = typer.Option(5.0, help="Seconds to wait for a request before the exchange is "
                                            "unreachable."),
    config: Path = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, one object per exchange."),
) -> None:
    """Check each exchange: reachable, markets, websocket books, symbols found, keys valid. Exit 1
    when one fails (unreachable, or keys set but refused), 2 for bad settings."""
    import asyncio
    import os

    import msgspec

    from arbitrage.errors import ArbError
    from arbitrage.exchanges.check import check_exchanges

    try:
        overrides = build_overrides(exchanges=exchanges, symbols=symbols, exchange_url=exchange_url)
    except ArbError as exc:
        fail(exc)
    settings = load(config, overrides)
    section = settings.ccxt
    if not section.exchanges:
        fail(SettingsError("ccxt.exchanges", "no exchange to check: give --exchanges or set [ccxt] "
                                             "exchanges"))
    if not timeout > 0:
        fail(SettingsError("--timeout", f"expected a positive number of seconds, got {timeout}"))
    section = msgspec.structs.replace(section, timeout_ms=min(section.timeout_ms, timeout * 1000.0))
    try:
        reports = asyncio.run(check_exchanges(section.exchanges, section, section.symbols, os.environ))
    except ArbError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps([{**msgspec.to_builtins(report), "ok": report.ok} for report in reports]))
    else:
        print_reports(reports, section.symbols)
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


def print_reports(reports: list[ExchangeReport], symbols: list[str]) -> None:
    """One line on stderr per unreachable exchange, a table of the others."""
    from rich.console import Console
    from rich.table import Table

    reached = [report for report in reports if report.reachable]
    for report in reports:
        if not report.reachable:
            typer.echo(f"{report.exchange}: {report.error}", err=True)
    if not reached:
        return
    table = Table(title="arb check")
    for column in ("exchange", "markets", "websocket", "symbols", "keys", "result"):
        table.add_column(column)
    for report in reached:
        ws = ("yes (batch)" if report.websocket_batch else "yes") \
            if report.websocket else "no (REST)"
        found = f"{len(report.symbols_found)}/{len(symbols)} found" if symbols else "none configured"
        missing = "\n".join(f"{symbol}: {why}" for symbol, why in report.symbols_missing.items())
        keys = report.keys + (f" ({report.keys_detail})" if report.keys_detail else "")
        result = "[green]ok[/green]" if report.ok else f"[red]FAIL[/red] {report.error}".rstrip()
        table.add_row(report.exchange, f"{report.markets} ({report.spot} spot)", ws,
                      found + (f"\n{missing}" if missing else ""), keys, result)
    Console().print(table)
