"""Redis killed and restarted mid-run: both sides reconnect, alert and recover; no trading event is lost."""

from __future__ import annotations

import asyncio
import json
import typing as t
from pathlib import Path

import redis.asyncio as aioredis

from arbitrage.bridge.feed import RedisFeed
from arbitrage.bridge.mirror import RedisBridge
from arbitrage.engine import Engine
from arbitrage.events import (
    Alert,
    ArbResult,
    BookUpdate,
    FeedStatus,
    Fill,
    OrderSubmitted,
    OrderUpdate,
    encode_json,
)
from arbitrage.sources.sim import SimSource
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.trading.plugin import Trader
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import FAST_TRADING, Collect, settings

KEPT = (OrderSubmitted, OrderUpdate, Fill, ArbResult, Alert)


def test_redis_restarting_mid_run_loses_no_trading_event(
        tmp_path: Path, redis_factory: t.Callable[..., RedisServer]) -> None:
    server = redis_factory("--appendonly", "yes", "--appendfsync", "always")  # what was acknowledged survives
    venues = [{"name": "alpha", "staleness_ms": 300.0}, {"name": "beta", "taker_fee": 0.0008,
                                                         "staleness_ms": 300.0}]
    collector = Engine(settings(tmp_path / "c", server.url, redis={"role": "collector", "retry_max_s": 0.2},
                                sim={**FAST_TRADING, "venues": venues}),
                       plugins=[SimSource(), RedisBridge()])
    seen = Collect(*KEPT, BookUpdate, FeedStatus)
    feed = RedisFeed()
    engine = Engine(settings(tmp_path / "e", server.url, redis={"role": "engine", "discover_s": 0.05,
                                                                 "retry_max_s": 0.2}),
                    plugins=[feed, CrossExchangeStrategy(), Trader(), RedisBridge(), seen])
    marks: dict[str, int] = {}

    async def outage() -> None:
        await asyncio.sleep(2.0)
        marks["books_before"] = feed.venues["alpha"].events if "alpha" in feed.venues else 0
        server.kill()
        await asyncio.sleep(1.0)
        server.start()
        marks["books_at_restart"] = sum(v.events for v in feed.venues.values())

    async def scenario() -> dict[str, list[tuple[bytes, dict[bytes, bytes]]]]:
        (tmp_path / "c").mkdir()
        (tmp_path / "e").mkdir()
        running = asyncio.ensure_future(engine.run(duration=6.0))
        await asyncio.sleep(0.3)
        await asyncio.gather(collector.run(duration=5.0), outage(), running)
        client = aioredis.from_url(server.url)
        streams = {tp.__name__: await client.xrange(f"arb:stream:{tp.__name__}") for tp in KEPT}
        await client.aclose()
        return streams

    streams = asyncio.run(scenario())
    alerts = [e for e in seen.seen if isinstance(e, Alert)]
    for label in ("feed", "mirror"):
        assert [a.recovered for a in alerts if a.key == f"redis.down:{label}"] == [False, True], label
    assert marks["books_before"] > 0
    assert sum(v.events for v in feed.venues.values()) > marks["books_at_restart"]  # books again after it
    statuses = [e.status for e in seen.seen if isinstance(e, FeedStatus) and e.venue == "alpha"]
    assert "stale" in statuses and statuses[statuses.index("stale") + 1] == "connected"
    run = engine.run_id.encode()
    for tp in KEPT:
        published = [json.loads(encode_json(e)) for e in seen.seen if type(e) is tp]
        by_key: dict[bytes, t.Any] = {}
        for _, fields in streams[tp.__name__]:
            if fields[b"run"] == run:
                by_key.setdefault(fields[b"seq"], json.loads(fields[b"event"]))
        assert list(by_key.values()) == published, tp.__name__
    assert any(isinstance(e, ArbResult) for e in seen.seen)
    mirror = engine.plugin("redis").summary()
    assert mirror["outages"] == 1 and mirror["unwritten"] == 0 and mirror["trading_overflow"] == 0
    assert collector.plugin("redis").summary()["outages"] == 1
