"""``arb logs``: the JSON-lines log file, readable, filtered, optionally followed."""

from __future__ import annotations

from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, fail, load
from arbitrage.errors import ArbError


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
