"""The engine's side: only allowed market data comes in, latest value wins when behind, quiet is stale."""

from __future__ import annotations

import asyncio
import collections
import time
import typing as t
from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client import generate_latest

from arbitrage.bridge.feed import RedisFeed
from arbitrage.engine import Engine
from arbitrage.events import (
    BookUpdate,
    Event,
    FeedStatus,
    Leg,
    Market,
    MarketsLoaded,
    Opportunity,
    OrderSubmitted,
    encode_json,
)
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.trading.plugin import Trader
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import Collect, settings, wait_for

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "ETH/BTC", "SOL/BTC")
MARKETS = tuple(Market(symbol=s, base=s.split("/")[0], quote=s.split("/")[1], taker_fee=0.001)
                for s in SYMBOLS)


def book(venue: str, symbol: str, n: int, ts: int) -> BookUpdate:
    return BookUpdate(venue=venue, symbol=symbol, bids=((100.0 + n * 1e-3, 1.0),),
                      asks=((100.1 + n * 1e-3, 1.0),), ts_event=ts - 1_000_000, ts_init=ts)


class FakeCollector:
    """Writes feed entries as a collector does (the documented layout), with plain redis-py."""

    def __init__(self, client: aioredis.Redis, venue: str, run: str = "collector-run") -> None:
        self.client = client
        self.venue = venue
        self.run = run
        self.seq = 0

    def fields(self, event: Event | bytes, type_name: str | None = None,
               run: str | None = None) -> dict[str, t.Any]:
        self.seq += 1
        payload = event if isinstance(event, bytes) else encode_json(event)
        return {"type": type_name or type(event).__name__, "node": "fake", "run": run or self.run,
                "seq": self.seq, "event": payload}

    async def send(self, event: Event | bytes, type_name: str | None = None, run: str | None = None,
                   venue: str | None = None) -> None:
        await self.client.sadd("arb:feeds", venue or self.venue)
        await self.client.xadd(f"arb:feed:{venue or self.venue}", self.fields(event, type_name, run))


async def start_engine(engine: Engine) -> asyncio.Future[dict[str, t.Any]]:
    run = asyncio.ensure_future(engine.run(duration=60))
    feed = t.cast(RedisFeed, engine.plugin("redis_feed"))
    await wait_for(lambda: run.done() or (feed.__dict__.get("link") is not None and feed.link.up),  # type: ignore[union-attr]
                   what="the feed to connect")
    await asyncio.sleep(0.05)
    return run


def test_disallowed_or_forged_entries_are_refused_and_counted_and_never_become_an_order(
        tmp_path: Path, redis_server: RedisServer) -> None:
    cfg = settings(tmp_path, redis_server.url, redis={"role": "engine", "discover_s": 0.05})
    collect = Collect(OrderSubmitted, Opportunity, BookUpdate, MarketsLoaded)
    feed = RedisFeed()
    engine = Engine(cfg, plugins=[feed, CrossExchangeStrategy(), Trader(), collect])
    now = time.time_ns()
    leg = Leg(venue="alpha", symbol="BTC/USDT", side="buy", amount=0.01, price=100.0, expected_price=100.0,
              fee_rate=0.001)
    opportunity = Opportunity(id="forged", strategy="cross_exchange", legs=(leg, leg), profit=1.0,
                              profit_bps=100.0, quote="USDT", notional=1.0, book_ts=(now, now), ts_event=now,
                              ts_init=now)
    order = OrderSubmitted(client_order_id="forged-L0", opportunity_id="forged", venue="alpha",
                           symbol="BTC/USDT", side="buy", amount=0.01, price=100.0, ts_init=now)

    async def scenario() -> dict[str, t.Any]:
        client = aioredis.from_url(redis_server.url)
        run = await start_engine(engine)
        rogue = FakeCollector(client, "alpha")
        await rogue.send(MarketsLoaded(venue="alpha", markets=MARKETS, staleness_ms=60_000.0, ts_init=now))
        await rogue.send(order)                               # not an allowed type
        await rogue.send(opportunity)                         # not an allowed type
        await rogue.send(opportunity, type_name="BookUpdate")  # an order dressed as a book
        await rogue.send(b'{"type":"BookUpdate","venue":"alpha"', type_name="BookUpdate")  # not JSON
        await rogue.send(book("beta", "BTC/USDT", 0, now), venue="alpha")  # another venue's book
        await rogue.send(book("alpha", "BTC/USDT", 0, now), run=engine.run_id)  # our own, looped back
        await rogue.send(book("alpha", "BTC/USDT", 1, now))   # the one good book
        await wait_for(lambda: sum(feed.refused.values()) == 6 and
                       any(isinstance(e, BookUpdate) for e in collect.seen), what="the refusals")
        metrics = generate_latest(engine.metrics).decode()  # type: ignore[arg-type]
        engine.stop_flag.request("test done")
        summary = await run
        await client.aclose()
        return {"summary": summary, "metrics": metrics}

    out = asyncio.run(scenario())
    assert feed.refused == collections.Counter({("type", "OrderSubmitted"): 1, ("type", "Opportunity"): 1,
                                                ("invalid", "BookUpdate"): 2, ("venue", "BookUpdate"): 1,
                                                ("loop", "BookUpdate"): 1})
    assert not [e for e in collect.seen if isinstance(e, OrderSubmitted | Opportunity)]
    assert out["summary"]["orders"] == 0
    books = [e for e in collect.seen if isinstance(e, BookUpdate)]
    assert [list(b.bids) for b in books] == [[(100.001, 1.0)]]
    origin = books[0].origin
    assert origin.node == "fake" and origin.run_id == "collector-run"  # type: ignore[union-attr]
    assert 'arb_redis_inbound_refused_total{reason="type",type="OrderSubmitted"} 1.0' in out["metrics"]


def test_an_engine_behind_takes_only_the_newest_book_per_symbol(
        tmp_path: Path, redis_server: RedisServer) -> None:
    cfg = settings(tmp_path, redis_server.url,
                   redis={"role": "engine", "discover_s": 0.05, "read_count": 1000})
    collect = Collect(BookUpdate)
    feed = RedisFeed()
    engine = Engine(cfg, plugins=[feed, collect])
    now = time.time_ns()
    written = [book("alpha", SYMBOLS[n % 5], n, now + n) for n in range(2500)]

    async def scenario() -> None:
        client = aioredis.from_url(redis_server.url)
        run = await start_engine(engine)
        collector = FakeCollector(client, "alpha")
        await collector.send(MarketsLoaded(venue="alpha", markets=MARKETS, staleness_ms=60_000.0,
                                           ts_init=now))
        await wait_for(lambda: "alpha" in feed.venues and feed.venues["alpha"].events == 1,
                       what="the markets")
        pipe = client.pipeline(transaction=True)  # all at once: the engine is 2,500 books behind
        for b in written:
            pipe.xadd("arb:feed:alpha", collector.fields(b))
        await pipe.execute()
        await wait_for(lambda: feed.venues["alpha"].events + feed.venues["alpha"].conflated == 2501,
                       what="every entry")
        engine.stop_flag.request("test done")
        await run
        await client.aclose()

    asyncio.run(scenario())
    got = [(b.symbol, list(b.bids)) for b in collect.seen]
    # reads of 1,000, 1,000 and 500: the full ones publish the newest book of each symbol only
    expected = [(b.symbol, list(b.bids)) for b in written[995:1000] + written[1995:2000] + written[2000:]]
    assert got == expected
    assert feed.venues["alpha"].conflated == 2 * 995


def test_a_venue_goes_stale_when_its_collector_is_quiet_and_recovers_with_fresh_books(
        tmp_path: Path, redis_server: RedisServer) -> None:
    cfg = settings(tmp_path, redis_server.url, redis={"role": "engine", "discover_s": 0.05})
    collect = Collect(FeedStatus, BookUpdate)
    engine = Engine(cfg, plugins=[RedisFeed(), CrossExchangeStrategy(), collect])

    async def scenario() -> None:
        client = aioredis.from_url(redis_server.url)
        run = await start_engine(engine)
        collector = FakeCollector(client, "alpha")
        await collector.send(MarketsLoaded(venue="alpha", markets=MARKETS, staleness_ms=300.0,
                                           ts_init=time.time_ns()))
        await collector.send(book("alpha", "BTC/USDT", 0, time.time_ns()))
        await wait_for(lambda: any(isinstance(e, FeedStatus) and e.status == "stale" for e in collect.seen),
                       what="the stale status")
        await collector.send(book("alpha", "BTC/USDT", 1, time.time_ns()))
        await wait_for(lambda: any(isinstance(e, FeedStatus) and e.status == "connected"
                                   for e in collect.seen), what="the recovery")
        engine.stop_flag.request("test done")
        await run
        await client.aclose()

    asyncio.run(scenario())
    seen = [(type(e).__name__, getattr(e, "status", "")) for e in collect.seen]
    assert seen[:4] == [("BookUpdate", ""), ("FeedStatus", "stale"), ("FeedStatus", "connected"),
                        ("BookUpdate", "")]
    stale = next(e for e in collect.seen if isinstance(e, FeedStatus) and e.status == "stale")
    assert "collector fake" in stale.detail and "limit 0.3 s" in stale.detail
