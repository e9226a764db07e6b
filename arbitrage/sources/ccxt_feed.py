"""The live market source: real exchanges' order books through ccxt.pro (``--source ccxt``).

``arb run --source ccxt --exchanges binance,kraken --symbols BTC/USDT,ETH/USDT`` watches every
listed symbol on every listed exchange (``[ccxt]`` settings, ``docs/exchanges.md``): one task per
venue (``arbitrage.sources.ccxt_venue.VenueFeed``), each publishing ``MarketsLoaded``, then
``BookUpdate`` and a ``FeedStatus`` on every change of its state. The venues share one cap on
simultaneous snapshot resyncs (``max_resyncs``, per process) and draw their requests from the run's
request budgets (``ctx.budgets``), which the live venue shares, orders first.

Books a venue rejects (``sources.gate``) are counted in its summary and, on ``/metrics``, as
``arb_books_rejected{venue,reason}``.

Start returns at once: a venue that cannot be reached keeps retrying with backoff (its
``FeedStatus`` says so) while the others run. Stop cancels the tasks, closes every exchange and
announces each venue ``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing as t

from arbitrage.errors import SettingsError
from arbitrage.events import FeedStatus
from arbitrage.plugin import Context, Plugin
from arbitrage.sources.ccxt_venue import VenueFeed

__all__ = ["CcxtSource"]


class _Rejections:
    """``arb_books_rejected{venue,reason}``: the venues' rejected books (``sources.gate``), read
    when ``/metrics`` is scraped."""

    def __init__(self, feeds: list[VenueFeed]) -> None:
        self.feeds = feeds

    def collect(self) -> t.Iterator[t.Any]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("arb_books_rejected", "Books a source rejected before publishing "
                                     "them, by reason.", labels=["venue", "reason"])
        for feed in self.feeds:
            for reason, count in sorted(feed.gate.rejected.items()):
                family.add_metric([feed.name, reason], float(count))
        yield family


class CcxtSource(Plugin):
    """Market source on live exchanges through ccxt.pro websockets or ccxt REST polling."""

    name = "ccxt"
    kind = "source"
    description = "Live order books from exchanges through ccxt.pro (websockets) or REST polling."

    def __init__(self) -> None:
        self.feeds: list[VenueFeed] = []
        self._tasks: list[asyncio.Task[None]] = []

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        if not ctx.settings.ccxt.exchanges or not ctx.settings.ccxt.symbols:
            raise SettingsError("ccxt", "the ccxt source needs exchanges and symbols "
                                        "(--exchanges, --symbols)")
        ctx.metrics.register(_Rejections(self.feeds))


    async def start(self) -> None:
        """One task per exchange; the exchange instances are made inside them, in this loop."""
        resyncs = asyncio.Semaphore(self.ctx.settings.ccxt.max_resyncs)
        loop = asyncio.get_running_loop()
        for name in self.ctx.settings.ccxt.exchanges:
            feed = VenueFeed(name, self.ctx, resyncs)
            self.feeds.append(feed)
            self._tasks.append(loop.create_task(feed.run(), name=f"source:ccxt:{name}"))

    async def stop(self) -> None:
        """Cancel every venue's task (each closes its exchange) and announce the venues stopped."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        now = self.ctx.clock.time_ns()
        for feed in self.feeds:
            self.ctx.bus.publish(FeedStatus(venue=feed.name, status="stopped", ts_init=now), feed.name)

    def summary(self) -> dict[str, t.Any]:
        return {feed.name: feed.summary() for feed in self.feeds}
