"""The mirror as an outside consumer sees it: plain redis-py, no project code on the reading side."""

from __future__ import annotations

import asyncio
import json
import typing as t
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from arbitrage.bridge.mirror import RedisBridge
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.engine import Engine
from arbitrage.events import EVENT_TYPES, BookUpdate, Event, Fill, Opportunity, Origin, encode_json
from arbitrage.plugin import Context
from arbitrage.sources.sim import SimSource
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.trading.plugin import Trader
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import FAST_TRADING, Collect, settings, wait_for

TRADING = {"OrderSubmitted", "OrderUpdate", "Fill", "ArbResult", "ArbStateChanged", "PositionUpdate",
           "BalanceUpdate", "Alert", "TradingHalted", "TradingResumed"}


def _json(event: Event) -> t.Any:
    return json.loads(encode_json(event))


def test_an_outside_consumer_gets_exactly_the_mirrored_events_in_order(
        tmp_path: Path, redis_server: RedisServer) -> None:
    # no paper latency: a non-realtime run with 25 ms of it may end before any fill
    cfg = settings(tmp_path, redis_server.url, sim=FAST_TRADING, trading={"latency_ms": 0.0})
    mirrored = [tp for tp in EVENT_TYPES if tp.__name__ in cfg.redis.events]
    streamed = {n for n in cfg.redis.events if n in TRADING or n in cfg.redis.streams}

    async def scenario() -> tuple[list[Event], list[tuple[str, bytes]], dict[str, list[t.Any]]]:
        client = aioredis.from_url(redis_server.url)
        pubsub = client.pubsub()
        await pubsub.psubscribe("arb:*")
        heard: list[tuple[str, bytes]] = []

        async def listen() -> None:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    heard.append((message["channel"].decode(), message["data"]))

        listener = asyncio.ensure_future(listen())
        collect = Collect(*mirrored, BookUpdate)
        engine = Engine(cfg, plugins=[SimSource(realtime=False, max_events=4000), CrossExchangeStrategy(),
                                      Trader(), RedisBridge(), collect])
        summary = await engine.run(duration=60)
        sent = [e for e in collect.seen if type(e) is not BookUpdate]
        await wait_for(lambda: len(heard) >= len(sent), what="every Pub/Sub message")
        await asyncio.sleep(0.2)  # anything extra would arrive now
        listener.cancel()
        streams = {}
        for name in streamed:
            streams[name] = await client.xrange(f"arb:stream:{name}")
        await pubsub.aclose()
        await client.aclose()
        assert summary["plugins"]["redis"]["written"] == len(sent)
        assert sum(isinstance(e, BookUpdate) for e in collect.seen) == 4000  # books are not mirrored
        return sent, heard, streams

    sent, heard, streams = asyncio.run(scenario())
    kinds = {type(e).__name__ for e in sent}
    assert {"Opportunity", "OrderSubmitted", "Fill", "OrderUpdate", "ArbResult", "ArbStateChanged",
            "FeedStatus"} <= kinds
    assert streams["ArbStateChanged"]  # a trading event: streamed by default
    expected = [(f"arb:{type(e).__name__}", _json(e)) for e in sent]
    assert [(ch, json.loads(data)) for ch, data in heard] == expected
    for name, entries in streams.items():
        expected = [_json(e) for e in sent if type(e).__name__ == name]
        assert [json.loads(fields[b"event"]) for _, fields in entries] == expected, name
        assert {fields[b"type"] for _, fields in entries} <= {name.encode()}
        seqs = [int(fields[b"seq"]) for _, fields in entries]
        assert seqs == sorted(set(seqs))
    assert {name for name, entries in streams.items() if entries} == kinds & streamed


def _origin(seq: int) -> Origin:
    return Origin(node="elsewhere", run_id="other-run", seq=seq, ts_init=seq)


@pytest.mark.parametrize("role", ["engine", "collector"])
def test_events_that_came_in_from_another_process_are_never_written_back(
        tmp_path: Path, redis_server: RedisServer, role: str) -> None:
    """Of each type one event made here and one received (``origin`` set): only the local ones go out."""
    redis = {"role": role, "books": True, "events": ["Opportunity", "Fill"],
             "streams": ["BookUpdate", "Opportunity"]}
    cfg = settings(tmp_path, redis_server.url, redis=redis)
    bus = Bus()
    ctx = Context(bus=bus, settings=cfg, clock=Clock(), run_id="run1")
    mirror = RedisBridge()
    book = BookUpdate(venue="alpha", symbol="BTC/USDT", bids=((1.0, 1.0),), asks=((2.0, 1.0),), ts_event=1,
                      ts_init=2)
    opp = Opportunity(id="o1", strategy="cross_exchange", legs=(), profit=1.0, profit_bps=10.0, quote="USDT",
                      notional=10.0, book_ts=(1,), ts_event=1, ts_init=2)
    fill = Fill(client_order_id="c1", opportunity_id="o1", venue="alpha", symbol="BTC/USDT", side="buy",
                price=1.0, amount=1.0, fee=0.0, fee_currency="USDT", ts_event=1, ts_init=2)
    local = [book, opp, fill]
    remote = [msgspec.structs.replace(e, origin=_origin(n), ts_init=3) for n, e in enumerate(local, 1)]

    async def scenario() -> tuple[list[tuple[str, t.Any]], dict[str, list[t.Any]]]:
        client = aioredis.from_url(redis_server.url)
        pubsub = client.pubsub()
        try:
            await pubsub.psubscribe("arb:*")
            confirmed = await pubsub.get_message(timeout=5)
            assert confirmed is not None and confirmed["type"] == "psubscribe"
            mirror.setup(ctx)
            await bus.start()
            await mirror.start()
            for theirs, ours in zip(remote, local, strict=True):  # the received one first
                bus.publish(theirs, "alpha")
                bus.publish(ours, "alpha")
            await wait_for(lambda: mirror.written + mirror.skipped_remote >= 6 and not mirror.outbox,
                           what="every event written or skipped")
            heard: list[tuple[str, t.Any]] = []
            while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3)):
                heard.append((message["channel"].decode(), json.loads(message["data"])))
            await mirror.stop()
            await bus.stop()
            streams: dict[str, list[t.Any]] = {}
            for key in sorted(await client.keys("arb:*")):
                if await client.type(key) == b"stream":
                    streams[key.decode()] = [json.loads(f[b"event"]) for _, f in await client.xrange(key)]
        finally:
            await pubsub.aclose()
            await client.aclose()
        return heard, streams

    heard, streams = asyncio.run(scenario())
    assert mirror.skipped_remote == 3
    assert heard == [(f"arb:{type(e).__name__}", _json(e)) for e in local]
    expected = {"arb:stream:BookUpdate": [_json(book)], "arb:stream:Opportunity": [_json(opp)],
                "arb:stream:Fill": [_json(fill)]}
    if role == "collector":  # a collector's feed stream: its own book only
        expected["arb:feed:alpha"] = [_json(book)]
    assert streams == expected
    assert all("origin" not in entry for entries in streams.values() for entry in entries)
