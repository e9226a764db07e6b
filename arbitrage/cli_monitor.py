"""``arb halt``, ``arb resume`` and ``arb notify test``: the kill switch and notifications from a terminal.

``halt`` and ``resume`` only write or remove the halt file (``monitor.halt_file``); a running
engine's monitor looks at it every ``monitor.check_interval_s`` and halts or resumes, so they
work from any terminal, and a halt outlives a restart. Heavy modules are imported inside the
commands.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from pathlib import Path

import typer

from arbitrage.cli import ConfigOpt, app, fail, load
from arbitrage.errors import SettingsError

notify_app = typer.Typer(help="Notifications: `arb notify test` sends a test message to every URL.",
                         no_args_is_help=True)
app.add_typer(notify_app, name="notify")


def _halt_path(config: Path | None) -> Path:
    path = load(config, {}).monitor.halt_file
    if not path:
        fail(SettingsError("monitor.halt_file", "no halt file configured; set one to use arb halt/resume"))
    return Path(path)


@app.command()
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


@app.command()
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


def _show_apprise_reasons() -> int:
    """Print Apprise's own (redacted) explanations of failed sends on stderr, and no other log line."""
    from loguru import logger

    logger.remove()
    return logger.add(sys.stderr, level="DEBUG", format="  {message}",
                      filter=lambda record: record["message"].startswith("apprise "))


@notify_app.command("test")
def notify_test(
    url: list[str] = typer.Option(None, "--notify", "--url", metavar="URL",
                                  help="Also send to this Apprise URL (repeatable)."),
    config: Path = ConfigOpt,
) -> None:
    """Send a test message to every configured notification URL and report each result."""
    from arbitrage.notify.channels import configured_urls, load_channels, preload_apprise, send_all

    settings = load(config, {}).notify
    urls = configured_urls(settings, os.environ, url or [])
    if not urls and not settings.config:
        fail(SettingsError("notify.urls",
                           "no notification URL: set [notify] urls, ARB_NOTIFY_URLS or --notify URL"))
    from loguru import logger

    preload_apprise()
    handler = _show_apprise_reasons()
    try:
        channels = load_channels(urls, settings.config, settings.timeout_s)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        results = send_all(channels, "arb test notification",
                           f"arb on {socket.gethostname()} can reach this channel ({stamp}).")
    except SettingsError as exc:
        fail(exc)
    finally:
        logger.remove(handler)
    for result in results:
        typer.echo(f"{'ok    ' if result.ok else 'FAILED'} {result.label}")
    failed = sum(not r.ok for r in results)
    typer.echo(f"{len(results) - failed} of {len(results)} channel(s) reached")
    if failed:
        raise typer.Exit(1)
