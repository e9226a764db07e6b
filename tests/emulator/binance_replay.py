"""Replaying the real Binance recording (``cryptofeed/BINANCE.jsonl.zst``) into an emulated exchange.

The recording holds a REST depth snapshot per symbol (NKNUSDT, BLZETH, LRCBTC, RUNEEUR) and the
``depthUpdate`` frames of those symbols. ``load`` makes each snapshot the book (its
``lastUpdateId`` the book's update id); the replay then feeds every recorded diff in recorded
order, ``pace`` seconds apart, through ``EmulatedExchange.feed_diff``: diffs older than the
snapshot are dropped there, the others keep their recorded ids (shifted by what our own fills
inserted, see ``core``) and their recorded frame, which the websocket sends on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import typing as t

from tests.emulator.core import EmulatedExchange
from tests.emulator.recordings import cryptofeed

__all__ = ["BinanceReplay", "recorded_diffs", "recorded_snapshots"]

Start = t.Literal["subscribe", "listen", "manual"]


def recorded_snapshots() -> dict[str, dict[str, t.Any]]:
    """Market id -> the recorded REST depth reply (``lastUpdateId``, ``bids``, ``asks``)."""
    return {line["url"].split("symbol=")[1].split("&")[0]: json.loads(line["data"])
            for line in cryptofeed("BINANCE") if line["t"] == "http" and "/depth?" in line["url"]}


def recorded_diffs() -> list[dict[str, t.Any]]:
    """Every recorded ``depthUpdate`` payload (``e``, ``E``, ``s``, ``U``, ``u``, ``b``, ``a``), in order."""
    diffs = []
    for line in cryptofeed("BINANCE"):
        if line["t"] == "recv":
            frame = json.loads(line["data"])
            data = frame.get("data", frame)
            if data.get("e") == "depthUpdate":
                diffs.append(data)
    return diffs


class BinanceReplay:
    """Feeds the recording into one exchange.

    :param pace: seconds between two fed diffs (0: as fast as the loop goes, yielding each time).
    :param start: ``subscribe`` begins at the first depth subscription (so a client sees the
        replay from its start), ``listen`` as soon as the server listens, ``manual`` at ``begin()``.
    :param pause_after: hold the feed once this many diffs are fed, until ``resume()`` (a test
        subscribes mid-replay without racing the replay's end).
    """

    def __init__(self, *, pace: float = 0.002, start: Start = "subscribe",
                 pause_after: int | None = None) -> None:
        self.pace, self.start, self.pause_after = pace, start, pause_after
        self.fed = 0
        """Recorded diffs fed so far (dropped ones included)."""
        self.done = asyncio.Event()
        self.paused = asyncio.Event()
        """Set while the feed is held at ``pause_after``."""
        self._resumed = asyncio.Event()
        self._exchange: EmulatedExchange | None = None
        self._task: asyncio.Task[None] | None = None

    def load(self, exchange: EmulatedExchange) -> None:
        """Make every recorded snapshot the book of its market in ``exchange``."""
        self._exchange = exchange
        for market_id, snapshot in recorded_snapshots().items():
            rules = exchange.market_by_id(market_id)
            exchange.load_snapshot(rules.symbol, snapshot["bids"], snapshot["asks"], snapshot["lastUpdateId"])

    async def attach(self, exchange: EmulatedExchange) -> None:
        """``load``, then begin at once when ``start`` is ``listen`` (the server calls this)."""
        self.load(exchange)
        if self.start == "listen":
            self.begin()

    def subscribed(self) -> None:
        """A client subscribed to a depth stream: begin when ``start`` is ``subscribe``."""
        if self.start == "subscribe":
            self.begin()

    def begin(self) -> None:
        """Start feeding (once; later calls do nothing). Must run in the server's loop."""
        if self._task is None and self._exchange is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(self._exchange))

    def resume(self) -> None:
        """Go on feeding after ``pause_after``."""
        self._resumed.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, exchange: EmulatedExchange) -> None:
        for data in recorded_diffs():
            rules = exchange.market_by_id(data["s"])
            exchange.feed_diff(rules.symbol, data["b"], data["a"], data["U"], data["u"], raw=data)
            self.fed += 1
            if self.fed == self.pause_after:
                self.paused.set()
                await self._resumed.wait()
                self.paused.clear()
            await asyncio.sleep(self.pace)
        self.done.set()
