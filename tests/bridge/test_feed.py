"""The engine's side: only allowed market data comes in, latest value wins when behind, quiet is stale."""

from __future__ import annotations

import asyncio
import collections
import json
import time
import typing as t
from pathlib import Path

import msgspec
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from prometheus_client import generate_latest

from arbitrage.book import check_book
from arbitrage.bridge.feed import RedisFeed
from arbitrage.bridge.feed import VenueFeed as FeedVenue
from arbitrage.clock import SimClock
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
from arbitrage.plugin import Context
from arbitrage.settings import RedisSettings, Settings
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


# -- bad books from a collector, on the decode path (no Redis) ------------------------------------

T0 = 1_700_000_000_000_000_000
FUTURE_NS = 5_000_000_000
BAD_NUMBERS: list[t.Any] = [-1.0, 0.0, -0.0, 1e308, "abc", None, True, [1.0], "NaN"]


class ListBus:
    def __init__(self) -> None:
        self.events: list[t.Any] = []

    def publish(self, event: t.Any, sender: t.Any = None) -> None:
        self.events.append(event)


@st.composite
def entry_payload(draw: st.DrawFn, ts: int) -> bytes:
    """A collector's BookUpdate entry as JSON, maybe damaged (numbers, order, sides, times, the
    JSON itself); ``ts`` a plausible exchange time."""
    bids: list[list[t.Any]] = [[100.0 - i, 1.0] for i in range(draw(st.integers(0, 4)))]
    asks: list[list[t.Any]] = [[101.0 + i, 1.0] for i in range(draw(st.integers(0, 4)))]
    side = bids if draw(st.booleans()) else asks
    harm = draw(st.sampled_from(["none", "none", "number", "swap", "crossed", "pair"]))
    if side and harm == "number":
        level = side[draw(st.integers(0, len(side) - 1))]
        level[draw(st.integers(0, 1))] = draw(st.sampled_from(BAD_NUMBERS))
    elif len(side) > 1 and harm == "swap":
        side[0], side[1] = side[1], side[0]
    elif bids and harm == "crossed":
        bids[0][0] = 200.0  # passes: a crossed book is the venue's state
    elif side and harm == "pair":
        side[0] = side[0][:1]
    ts_event = draw(st.sampled_from([ts, ts, ts, ts - 2_000_000_000, T0 + 86_400 * 10**9,
                                     4_102_444_800 * 10**9, 1.5, "x", -1]))
    # equal: the collector dated it with its receive time (the venue gave none)
    ts_init = ts_event if draw(st.integers(0, 4)) == 0 else ts + 1_000_000
    event = {"type": "BookUpdate", "venue": draw(st.sampled_from(["alpha", "alpha", "beta"])),
             "symbol": draw(st.sampled_from(["BTC/USDT", "ETH/USDT"])), "bids": bids, "asks": asks,
             "ts_event": ts_event, "ts_init": ts_init}
    text = json.dumps(event).encode()
    if draw(st.integers(0, 14)) == 0:
        text = text[:draw(st.integers(0, len(text) - 1))]  # truncated
    return text


def expected_reason(payload: bytes, now: int, newest: dict[str, int]) -> tuple[str, BookUpdate | None]:
    """The refusal reason of one entry (``ok`` if published), worked out from the documented rules:
    msgspec's BookUpdate type (else ``invalid``), the feed's venue, ``check_book``, then time."""
    try:
        book = msgspec.json.decode(payload, type=BookUpdate)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "invalid", None
    if book.venue != "alpha":
        return "venue", None
    problem = check_book(book.bids, book.asks)
    if problem:
        return problem, None
    if book.ts_event > now + FUTURE_NS:
        return "future", None
    if book.ts_event != book.ts_init:
        if book.ts_event < newest.get(book.symbol, -1):
            return "older", None
        newest[book.symbol] = book.ts_event
    return "ok", book


@examples(max_examples=150, deadline=None)
@given(st.data())
def test_bad_books_from_a_collector_are_refused_by_reason_and_never_published(data: st.DataObject) -> None:
    bus, clock = ListBus(), SimClock(T0)
    ctx = Context(bus=bus, settings=Settings(redis=RedisSettings(url="redis://h", role="engine")),  # type: ignore[arg-type]
                  clock=clock, run_id="engine-run")
    feed = RedisFeed()
    feed.setup(ctx)
    venue = FeedVenue("alpha", "arb:feed:alpha")
    feed.venues["alpha"] = venue
    newest: dict[str, int] = {}
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    wanted = []
    for n in range(data.draw(st.integers(1, 25))):
        now = T0 + n * 10_000_000
        clock.advance_to(now)
        payload = data.draw(entry_payload(now - 3_000_000))
        why, book = expected_reason(payload, now, newest)
        fields = {b"type": b"BookUpdate", b"node": b"c1", b"run": b"collector-run", b"seq": str(n).encode(),
                  b"event": payload}
        feed._take(venue, [(f"{n + 1}-0".encode(), fields)])
        if book is None:
            counts[(why, "BookUpdate")] += 1
        else:
            wanted.append((book.symbol, book.bids, book.asks, book.ts_event))
    published = [e for e in bus.events if isinstance(e, BookUpdate)]
    assert [(b.symbol, b.bids, b.asks, b.ts_event) for b in published] == wanted
    assert feed.refused == counts
    gate_counts = {why: n for (why, _), n in counts.items() if why not in ("invalid", "venue")}
    assert feed.summary().get("rejected", {}) == dict(sorted(gate_counts.items()))
    for b in published:
        assert check_book(b.bids, b.asks) is None and b.ts_event <= b.ts_init + FUTURE_NS
