"""``arb scan``: every opportunity in one snapshot of books, best first (one shot, no trading).

The books come from a snapshot file (``--data``) or, with ``--exchange``, straight from live
exchanges: markets loaded, order books fetched once, then the same scanner.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, build_overrides, fail, load
from arbitrage.errors import ArbError, SettingsError

if t.TYPE_CHECKING:
    from arbitrage.settings import Settings


def scan(
    data: Path = typer.Option(None, "--data", help="Snapshot: top-of-book CSV or JSON-lines recording.",
                              exists=False, dir_okay=False),
    exchanges: list[str] = typer.Option(None, "--exchange", "--exchanges",
                                        help="Scan live books of these ccxt exchanges instead of --data "
                                             "(repeat, or comma-separated)."),
    exchange_url: list[str] = typer.Option(None, "--exchange-url", metavar="NAME=BASE",
                                           help="Move every URL of exchange NAME under BASE."),
    symbols: str = typer.Option(None, "--symbols", help="Live: unified symbols, comma-separated "
                                                        "(default \\[ccxt] symbols)."),
    depth: int = typer.Option(None, help="Live: levels a side to fetch (default \\[ccxt] depth)."),
    concurrency: int = typer.Option(4, help="Live: order-book requests in flight per exchange."),
    strategy: str = typer.Option("triangular", help="Strategy to scan with: triangular, or cross_exchange "
                                                    "(live, two exchanges or more)."),
    venue: str = typer.Option(None, help="Venue name for a CSV snapshot, or the only venue to keep."),
    fee: float = typer.Option(None, help="Taker fee for every market, a fraction (0.001 = 0.1 %)."),
    min_profit_bps: float = typer.Option(None, help="Smallest net profit to list, in bps."),
    max_legs: int = typer.Option(None, help="3, or 4 for 4-asset cycles."),
    limit: int = typer.Option(20, help="Rows to show (the JSON output has all)."),
    config: Path = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the opportunities, best "
                                 "first, and the books read and skipped."),
) -> None:
    """List every opportunity in one snapshot of books, best first (one shot, no trading)."""
    from arbitrage.strategies.scan import CROSS, STRATEGIES, STRATEGY

    try:
        overrides = build_overrides(min_profit_bps=min_profit_bps, max_legs=max_legs, exchanges=exchanges,
                                    symbols=symbols, exchange_url=exchange_url)
    except ArbError as exc:
        fail(exc)
    settings = load(config, overrides)
    if strategy not in STRATEGIES:
        fail(SettingsError("--strategy", f"arb scan supports {', '.join(STRATEGIES)}; got {strategy!r}"))
    if fee is not None and not 0 <= fee < 1:
        fail(SettingsError("--fee", f"expected a fraction in [0, 1), got {fee}"))
    if (data is None) == (not exchanges):
        fail(SettingsError("--data", "give either --data FILE or --exchange NAME"))
    if exchanges:
        scan_live(settings, strategy, fee=fee, depth=depth, concurrency=concurrency, limit=limit,
                  as_json=as_json)
        return
    if strategy == CROSS:
        fail(SettingsError("--strategy", f"{CROSS} scans live books: give --exchange twice or more"))
    assert strategy == STRATEGY
    scan_file(settings, data, venue=venue, fee=fee, limit=limit, as_json=as_json)


def scan_file(settings: Settings, data: Path, *, venue: str | None, fee: float | None, limit: int,
              as_json: bool) -> None:
    """Triangular scan of a snapshot file."""
    from arbitrage.errors import DataError
    from arbitrage.readers.snapshot import load_snapshot
    from arbitrage.strategies.scan import scan as run_scan

    try:
        snapshot = load_snapshot(data, venue=venue)
    except FileNotFoundError:
        fail(DataError(f"{data}: no such file"))
    except ArbError as exc:
        fail(exc)
    found = run_scan(snapshot.books, snapshot.markets, fee_override=fee,
                     min_profit_bps=settings.strategy.min_profit_bps, max_legs=settings.strategy.max_legs,
                     start_assets=settings.strategy.start_assets or None)
    quality = {"books": len(snapshot.books), "rows": snapshot.rows, "skipped_rows": snapshot.skipped_rows,
               "skipped_bids": snapshot.skipped_bids, "skipped_asks": snapshot.skipped_asks,
               "rejected": snapshot.rejected}
    if as_json:
        typer.echo(json.dumps({"opportunities": found, **quality}))
        return
    print_scan(found[:limit], len(found), quality)


def scan_live(settings: Settings, strategy: str, *, fee: float | None, depth: int | None, concurrency: int,
              limit: int, as_json: bool) -> None:
    """Fetch every exchange's books once and scan them; an exchange that cannot be loaded is one
    line on stderr and exit 1."""
    import asyncio

    from arbitrage.exchanges.check import classify, one_line
    from arbitrage.exchanges.snapshot import fetch_venue
    from arbitrage.strategies.scan import CROSS, scan_cross
    from arbitrage.strategies.scan import scan as run_scan

    section = settings.ccxt
    names, symbols = section.exchanges, section.symbols
    if strategy == CROSS and len(names) < 2:
        fail(SettingsError("--exchange", f"{CROSS} needs two exchanges or more, got {', '.join(names)}"))
    if not symbols:
        fail(SettingsError("--symbols", "a live scan needs symbols: give --symbols or set [ccxt] symbols"))
    if (depth is not None and depth < 1) or concurrency < 1:
        fail(SettingsError("--depth" if concurrency >= 1 else "--concurrency", "expected a positive number"))
    try:
        import ccxt.async_support as ccxt_async

        for name in names:
            if name not in ccxt_async.exchanges:
                raise SettingsError("--exchange", f"unknown exchange {name!r} (not a ccxt exchange id)")
    except ArbError as exc:
        fail(exc)

    async def fetch_all() -> list[t.Any]:
        return list(await asyncio.gather(*(
            fetch_venue(name, section, symbols, depth=depth or section.depth, concurrency=concurrency)
            for name in names), return_exceptions=True))

    fetched = asyncio.run(fetch_all())
    failed = False
    for name, result in zip(names, fetched, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            typer.echo(f"{name}: {classify(result)}: {one_line(result)}", err=True)
            failed = True
    if failed:
        raise typer.Exit(1)
    books = [book for result in fetched for book in result.snapshot.books]
    if strategy == CROSS:
        found = scan_cross(books, {name: result.markets for name, result in zip(names, fetched, strict=True)},
                           settings, fee_override=fee)
    else:
        found = []
        for result in fetched:
            found.extend(run_scan(result.snapshot.books, result.markets, fee_override=fee,
                                  min_profit_bps=settings.strategy.min_profit_bps,
                                  max_legs=settings.strategy.max_legs,
                                  start_assets=settings.strategy.start_assets or None))
        found.sort(key=lambda item: (-item["profit_bps"], -item["profit"]))
    skipped = {name: result.snapshot.skipped for name, result in zip(names, fetched, strict=True)}
    missing = {name: result.missing for name, result in zip(names, fetched, strict=True)}
    if as_json:
        typer.echo(json.dumps({"opportunities": found, "books": len(books),
                               "skipped": {name: bad for name, bad in skipped.items() if bad},
                               "missing": {name: gone for name, gone in missing.items() if gone}}))
        return
    for what, per_venue in (("skipped", skipped), ("not scanned", missing)):
        for name, reasons in per_venue.items():
            for symbol, why in reasons.items():
                typer.echo(f"{name} {symbol}: {what}: {why}", err=True)
    bad = sum(len(reasons) for reasons in skipped.values())
    print_scan(found[:limit], len(found), {"books": len(books), "rejected": {}}, skipped=bad)


def print_scan(rows: list[dict[str, t.Any]], total: int, quality: dict[str, t.Any],
               skipped: int | None = None) -> None:
    """Human table of scan results (legs name their venue when they carry one), then what was
    skipped: malformed snapshot rows, or (``skipped``) live books empty, crossed or failed."""
    from rich.console import Console
    from rich.table import Table

    title = f"{total} opportunities in {quality['books']} books (showing {len(rows)})"
    if skipped is not None:
        title += f"; {skipped} books skipped (empty, crossed or failed)"
    table = Table(title=title)
    for column in ("bps", "cycle", "legs", "spend", "profit"):
        table.add_column(column, justify="right" if column in ("bps", "spend", "profit") else "left")
    for row in rows:
        legs = "\n".join(f"{leg['side']} {leg['amount']:g} {leg['symbol']} @ {leg['price']:g}"
                          + (f" on {leg['venue']}" if "venue" in leg else "") for leg in row["legs"])
        table.add_row(f"{row['profit_bps']:.2f}", "→".join(row["assets"]), legs,
                      f"{row['amount']:.6g} {row['start_asset']}", f"{row['profit']:.6g}")
    console = Console()
    console.print(table)
    if quality["rejected"]:
        reasons = ", ".join(f"{reason} {count}" for reason, count in quality["rejected"].items())
        console.print(f"{sum(quality['rejected'].values())} of {quality['rows']} rows skipped as malformed: "
                      f"{reasons}", style="yellow", markup=False)
