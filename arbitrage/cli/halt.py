"""``arb halt`` and ``arb resume``: the kill switch from a terminal.

``halt`` and ``resume`` only write or remove the halt file (``monitor.halt_file``); a running
engine's monitor looks at it every ``monitor.check_interval_s`` and halts or resumes, so they
work from any terminal, and a halt outlives a restart. Heavy modules are imported inside the
commands.
"""

from __future__ import annotations

import getpass
import socket
import time
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, fail, load
from arbitrage.errors import SettingsError


def _halt_path(config: Path | None) -> Path:
    path = load(config, {}).monitor.halt_file
    if not path:
        fail(SettingsError("monitor.halt_file", "no halt file configured; set one to use arb halt/resume"))
    return Path(path)


def halt(
    reason: str = typer.Option("manual halt", "--reason", "-r",
                               help="Why; shown in alerts and the dashboard."),
    config: Path = ConfigOpt,
) -> None:
    """Halt new trading (kill switch): a running engine cancels open orders and stops trading."""
    from arbitrage.monitor.killswitch import read_halt, write_halt

    path = _halt_path(config)
    previous = read_halt(path)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):  # no user name in this environment
        who = socket.gethostname()
    try:
        write_halt(path, f"{reason} (arb halt by {who} at {stamp})")
    except OSError as exc:
        fail(SettingsError("monitor.halt_file", f"cannot write {path}: {exc.strerror or exc}"))
    if previous is not None:
        typer.echo(f"already halted ({previous}); reason replaced")
    typer.echo(f"halt requested: wrote {path}; a running engine halts within its check interval. "
               "`arb resume` lifts it.")


def resume(config: Path = ConfigOpt) -> None:
    """Lift a halt: remove the halt file; a running engine resumes trading."""
    from arbitrage.monitor.killswitch import clear_halt

    path = _halt_path(config)
    try:
        reason = clear_halt(path)
    except OSError as exc:
        fail(SettingsError("monitor.halt_file", f"cannot remove {path}: {exc.strerror or exc}"))
    if reason is None:
        typer.echo(f"not halted (no {path})")
    else:
        typer.echo(f"resumed: removed {path} (was: {reason or 'no reason given'})")
