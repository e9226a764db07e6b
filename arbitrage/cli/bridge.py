"""``arb redis tail``: print the events the Redis bridge mirrors, as they arrive (``docs/redis.md``)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import typer

from arbitrage.cli.common import ConfigOpt, ProfileOpt, fail, load
from arbitrage.errors import ArbError, SettingsError


def tail(
    channel: list[str] = typer.Option(None, "--channel", metavar="TYPE",
                                      help="Pub/Sub channel of this event type (repeatable; none and no "
                                           "--stream: every channel)."),
    stream: list[str] = typer.Option(None, "--stream", metavar="TYPE",
                                     help="Stream of this event type, or feed:VENUE (repeatable)."),
    group: str = typer.Option(None, "--group", help="Read the streams as a consumer of this group "
                                                    "(acknowledged: each entry once per group)."),
    consumer: str = typer.Option(None, "--consumer", help="Consumer name in the group (default host-pid)."),
    from_start: bool = typer.Option(False, "--from-start", help="Streams: begin with what they hold."),
    limit: int = typer.Option(None, "--max", min=1, help="Stop after this many events."),
    duration: float = typer.Option(None, "--duration", min=0, help="Stop after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line: source, id, key, event."),
    url: str = typer.Option(None, "--redis", "--url", metavar="URL", help="Redis URL (default: redis.url)."),
    config: Path = ConfigOpt,
    profile: str = ProfileOpt,
) -> None:
    """Print mirrored events as they arrive, from Pub/Sub channels and/or streams."""
    from arbitrage.bridge.entries import EVENTS_BY_NAME

    overrides = {"redis": {"url": url}} if url else {}
    settings = load(config, overrides, profile=profile).redis
    if not settings.url:
        fail(SettingsError("redis.url", "no Redis URL: --redis URL or [redis] url"))
    for flag, names in (("--channel", channel or []), ("--stream", stream or [])):
        for name in names:
            if name not in EVENTS_BY_NAME and not (flag == "--stream" and name.startswith("feed:")):
                fail(SettingsError(flag, f"unknown event type {name!r}"))
    if group is None and consumer is not None:
        fail(SettingsError("--consumer", "needs --group"))
    if group is not None and not stream:
        fail(SettingsError("--group", "needs --stream"))
    from arbitrage.bridge.tail import tail as run_tail

    def write(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        asyncio.run(run_tail(settings, channels=channel or [], streams=stream or [], group=group,
                             consumer=consumer or f"{socket.gethostname()}-{os.getpid()}",
                             from_start=from_start, limit=limit, duration=duration, write=write,
                             as_json=as_json))
    except ArbError as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
