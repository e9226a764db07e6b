"""Clocks: wall time when live, event time in a backtest, so the same code runs in both."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class Clock:
    """Wall clock: ``time_ns`` is ``time.time_ns`` and ``sleep`` is ``asyncio.sleep``."""

    def time_ns(self) -> int:
        """Now, in nanoseconds since the UNIX epoch."""
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        await asyncio.sleep(seconds)


class SimClock(Clock):
    """Clock driven by the data: a replay calls ``advance_to`` with each event's timestamp.

    ``sleep`` resolves when the clock passes the wake-up time, never from wall time, so results do
    not depend on how fast the machine is.

    ``waking`` counts the sleepers that may run now but have not resumed yet: those woken by
    ``advance_to`` and those sleeping zero seconds (a plain turn of the loop). Whoever drives the
    clock reads it to know when the work it released has run, before moving time on: a public
    count, so that no driver needs to look into the event loop's own queues.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._timers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._waking = 0

    def time_ns(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            self._waking += 1
            try:
                await asyncio.sleep(0)
            finally:
                self._waking -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + int(seconds * 1e9), next(self._seq), future))
        try:
            await future
        finally:
            if future.done() and not future.cancelled():  # woken by advance_to, counted there
                self._waking -= 1

    @property
    def waking(self) -> int:
        """Sleepers woken (or sleeping zero seconds) that have not resumed yet."""
        return self._waking

    def advance_to(self, ts_ns: int) -> int:
        """Move time forward to ``ts_ns`` (never backwards); wake due sleepers. Returns how many woke."""
        if ts_ns > self._now:
            self._now = ts_ns
        woken = 0
        timers = self._timers
        while timers and timers[0][0] <= self._now:
            _, _, future = heapq.heappop(timers)
            if not future.done():
                future.set_result(None)
                woken += 1
        self._waking += woken
        return woken

    def next_timer_ns(self) -> int | None:
        """When the earliest sleeper wakes, or None."""
        return self._timers[0][0] if self._timers else None
