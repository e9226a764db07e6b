"""``arb notify test``: send a test message to every configured notification URL."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, fail, load
from arbitrage.errors import SettingsError


def _show_apprise_reasons() -> int:
    """Print Apprise's own (redacted) explanations of failed sends on stderr, and no other log line."""
    from loguru import logger

    logger.remove()
    return logger.add(sys.stderr, level="DEBUG", format="  {message}",
                      filter=lambda record: record["message"].startswith("apprise "))


def send_test(
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
