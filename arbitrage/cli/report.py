"""``arb report``: what a stored run did, from its database (``arbitrage.storage.report``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, build_overrides, fail, load
from arbitrage.errors import ArbError


def report(
    db: Path = typer.Option(None, help="SQLite database path (default from settings).", dir_okay=False),
    run_id: str = typer.Option(None, "--run", help="Run id (default: the latest run)."),
    config: Path = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Report PnL, counts and per-venue and per-symbol tables from the database."""
    from arbitrage.storage.report import build_report, render_report

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
