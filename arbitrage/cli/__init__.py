"""The ``arb`` command line: thin typer commands that build settings and call one package function.

One module per command group (``run``, ``scan``, ``check``, ``strategies``, ``report``, ``logs``,
``backtest`` for record/backtest/optimize, ``halt`` for halt/resume, ``notify``, ``bridge`` for
``arb redis tail``), sharing ``common`` (options, settings loading, errors, the ``--live`` gate). The
commands are plain functions registered here, in the order ``arb --help`` lists them, each inside
``common.guarded`` (an ``ArbError`` is one line and its exit code; Ctrl-C exits 130). Heavy modules
(the engine, ccxt, storage) are imported inside the commands so ``arb --help`` answers at once.
"""

from __future__ import annotations

import typer

from arbitrage.cli import backtest, bridge, check, halt, logs, notify, report, run, scan, strategies
from arbitrage.cli.common import guarded

__all__ = ["app", "main"]

app = typer.Typer(
    name="arb",
    help="Real-time crypto arbitrage: find trades that pay after fees, execute both legs at once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (run.run, scan.scan, check.check, strategies.strategies, report.report, logs.logs,
                backtest.record, backtest.backtest, backtest.optimize, halt.halt, halt.resume):
    app.command()(guarded(command))

notify_app = typer.Typer(help="Notifications: `arb notify test` sends a test message to every URL.",
                         no_args_is_help=True)
notify_app.command("test")(guarded(notify.send_test))
app.add_typer(notify_app, name="notify")

redis_app = typer.Typer(help="The Redis bridge: `arb redis tail` prints mirrored events as they arrive.",
                        no_args_is_help=True)
redis_app.command("tail")(guarded(bridge.tail))
app.add_typer(redis_app, name="redis")


def main() -> None:
    """Console-script entry point."""
    app()
