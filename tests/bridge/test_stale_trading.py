"""An engine fed through Redis stops trading a venue whose collector went quiet, and trades on the rest.

Three venues written by fake collectors (``test_feed.FakeCollector``: the documented feed layout
with plain redis-py) into one engine (``redis_feed``, the cross-exchange strategy, the paper
trader). ``gamma`` is cheap and trades; then its collector stops. Once the feed marks it stale, its
last book is the best buy of all, yet every order goes to the two venues still fresh.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import typing as t
from pathlib import Path

import redis.asyncio as aioredis

from arbitrage.bridge.feed import RedisFeed
from arbitrage.engine import Engine
from arbitrage.events import BookUpdate, FeedStatus, Market, MarketsLoaded, OrderSubmitted
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.trading.plugin import Trader
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import Collect, settings
from tests.bridge.test_feed import FakeCollector, start_engine

BTC = (Market(symbol="BTC/USDT", base="BTC", quote="USDT", taker_fee=0.001),)
STALENESS_MS = 1000.0
"""Long beside the 50 ms between quotes, so only a collector that stopped goes stale on a loaded host."""
TICKS = 100
"""Quotes of each phase at most (50 ms apart): each phase normally ends after a few."""


def quote(venue: str, bid: float, ask: float, n: int) -> BookUpdate:
    """A fresh book, moved up ``n`` hundredths of a cent (the strategy takes a repeated identical
    opportunity only once)."""
    now = time.time_ns()
    return BookUpdate(venue=venue, symbol="BTC/USDT", bids=((bid + n * 1e-4, 1.0),),
                      asks=((ask + n * 1e-4, 1.0),), ts_event=now - 1_000_000, ts_init=now)


def test_a_venue_whose_collector_goes_quiet_gets_no_order_while_fresh_venues_trade_on(
        tmp_path: Path, redis_server: RedisServer) -> None:
    cfg = settings(tmp_path, redis_server.url, redis={"role": "engine", "discover_s": 0.05},
                   trading={"latency_ms": 0.0}, paper={"balances": {"USDT": 1e6, "BTC": 100.0}})
    collect = Collect(OrderSubmitted, FeedStatus)
    engine = Engine(cfg, plugins=[RedisFeed(), CrossExchangeStrategy(), Trader(), collect])

    def orders() -> list[OrderSubmitted]:
        return [e for e in collect.seen if isinstance(e, OrderSubmitted)]

    def stale_at() -> int | None:
        """Index in ``collect.seen`` of gamma's stale status."""
        return next((i for i, e in enumerate(collect.seen)
                     if isinstance(e, FeedStatus) and e.venue == "gamma" and e.status == "stale"), None)

    async def scenario() -> dict[str, t.Any]:
        client = aioredis.from_url(redis_server.url)
        try:
            run = await start_engine(engine)
            collectors = {v: FakeCollector(client, v, run=f"run-{v}") for v in ("alpha", "beta", "gamma")}
            for venue, collector in collectors.items():
                await collector.send(MarketsLoaded(venue=venue, markets=BTC, staleness_ms=STALENESS_MS,
                                                   ts_init=time.time_ns()))

            ticks = itertools.count()

            async def tick(*quotes: tuple[str, float, float]) -> None:
                n = next(ticks)
                for venue, bid, ask in quotes:
                    await collectors[venue].send(quote(venue, bid, ask, n))
                await asyncio.sleep(0.05)

            # gamma cheap (ask 99) against alpha's bid 101; beta in line with alpha
            for _ in range(TICKS):
                if any(o.venue == "gamma" for o in orders()) or run.done():
                    break
                await tick(("alpha", 101.0, 101.1), ("beta", 100.9, 101.2), ("gamma", 98.9, 99.0))
            # gamma's last book is in line (not traded: its level is whole), then its collector goes
            # quiet; alpha and beta keep quoting, in line
            await tick(("alpha", 101.0, 101.1), ("beta", 100.9, 101.2), ("gamma", 101.2, 101.3))
            for _ in range(TICKS):
                if stale_at() is not None or run.done():
                    break
                await tick(("alpha", 101.0, 101.1), ("beta", 100.9, 101.2))
            # alpha's bid jumps to 102: buying beta (ask 101.5) pays, buying gamma (its last ask,
            # 101.3) would pay more
            mark = len(collect.seen)
            for _ in range(TICKS):
                if sum(o.venue == "beta" for o in collect.seen[mark:] if isinstance(o, OrderSubmitted)) >= 3:
                    break
                await tick(("alpha", 102.0, 102.1), ("beta", 101.4, 101.5))
            assert not run.done()
            engine.stop_flag.request("test done")
            summary = await run
        finally:
            await client.aclose()
        return summary

    summary = asyncio.run(asyncio.wait_for(scenario(), 30))
    stale = stale_at()
    assert stale is not None
    before = [o.venue for o in collect.seen[:stale] if isinstance(o, OrderSubmitted)]
    after = [o.venue for o in collect.seen[stale:] if isinstance(o, OrderSubmitted)]
    assert "gamma" in before  # gamma was traded while fresh
    assert after and set(after) == {"alpha", "beta"}  # never gamma once stale; the fresh two trade
    statuses = [e for e in collect.seen if isinstance(e, FeedStatus) and e.status == "stale"]
    assert [e.venue for e in statuses] == ["gamma"]  # alpha and beta never went stale
    assert summary["orders"] == len(before) + len(after)
