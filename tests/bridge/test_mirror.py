"""The mirror as an outside consumer sees it: plain redis-py, no project code on the reading side."""

from __future__ import annotations

import asyncio
import json
import typing as t
from pathlib import Path

import redis.asyncio as aioredis

from arbitrage.bridge.mirror import RedisBridge
from arbitrage.engine import Engine
from arbitrage.events import EVENT_TYPES, BookUpdate, Event, encode_json
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
    cfg = settings(tmp_path, redis_server.url, sim=FAST_TRADING)
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
