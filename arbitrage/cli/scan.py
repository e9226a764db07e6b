"""``arb scan``: every opportunity in one snapshot of books, best first (one shot, no trading)."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, build_overrides, fail, load
from arbitrage.errors import ArbError, SettingsError


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
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the opportunities, best "
                                 "first, and the books read and skipped."),
) -> None:
    """List every opportunity in one snapshot of books, best first (one shot, no trading)."""
    from arbitrage.errors import DataError
    from arbitrage.readers.snapshot import load_snapshot
    from arbitrage.strategies.scan import STRATEGY
    from arbitrage.strategies.scan import scan as run_scan

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
    quality = {"books": len(snapshot.books), "rows": snapshot.rows, "skipped_rows": snapshot.skipped_rows,
               "skipped_bids": snapshot.skipped_bids, "skipped_asks": snapshot.skipped_asks,
               "rejected": snapshot.rejected}
    if as_json:
        typer.echo(json.dumps({"opportunities": found, **quality}))
        return
    print_scan(found[:limit], len(found), quality)


def print_scan(rows: list[dict[str, t.Any]], total: int, quality: dict[str, t.Any]) -> None:
    """Human table of scan results, then what was skipped reading the snapshot."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{total} opportunities in {quality['books']} books (showing {len(rows)})")
    for column in ("bps", "cycle", "legs", "spend", "profit"):
        table.add_column(column, justify="right" if column in ("bps", "spend", "profit") else "left")
    for row in rows:
        legs = "\n".join(f"{leg['side']} {leg['amount']:g} {leg['symbol']} @ {leg['price']:g}"
                          for leg in row["legs"])
        table.add_row(f"{row['profit_bps']:.2f}", "→".join(row["assets"]), legs,
                      f"{row['amount']:.6g} {row['start_asset']}", f"{row['profit']:.6g}")
    console = Console()
    console.print(table)
    if quality["rejected"]:
        reasons = ", ".join(f"{reason} {count}" for reason, count in quality["rejected"].items())
        console.print(f"{sum(quality['rejected'].values())} of {quality['rows']} rows skipped as malformed: "
                      f"{reasons}", style="yellow", markup=False)
