"""``arb strategies``: the installed strategy plugins."""

from __future__ import annotations

import typer


def strategies() -> None:
    """List the installed strategies, one line each."""
    from arbitrage.plugin import plugins_of_kind

    for name, cls in plugins_of_kind("strategy").items():
        typer.echo(f"{name:16} {cls.description}")
