"""The main loop the benchmark emulator processes share (``flood.py``, ``frames.py``): serve an
emulator on a free loopback port, print its URL for the parent, run its feed until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import collections.abc as c
import signal
import typing as t

from tests.emulator.server import serve


async def serve_until_stopped(emu: t.Any, feed: c.Coroutine[t.Any, t.Any, None] | None) -> None:
    """Serve ``emu``, print its base URL, run ``feed`` (if any) until a stop signal, then cancel it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(emu) as base_url:
        print(base_url, flush=True)
        task = asyncio.create_task(feed) if feed is not None else None
        await stop.wait()
        if task is not None:
            task.cancel()
