"""A consumer group sees every trading event of a run once, across a consumer's crash and restart.

The run mirrors every type of ``bridge.names.TRADING`` (read from the set: a type added there is
covered, or the test says which one the run never made).
"""

from __future__ import annotations

import asyncio
import typing as t
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from arbitrage.bridge.consumer import Delivery, StreamConsumer
from arbitrage.bridge.mirror import RedisBridge
from arbitrage.bridge.names import TRADING, Names, type_names
from arbitrage.engine import Engine
from arbitrage.events import Alert, Event, Position, PositionUpdate, TradingHalted, TradingResumed
from arbitrage.plugin import Plugin
from arbitrage.sources.sim import SimSource
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.trading.plugin import Trader
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import FAST_TRADING, settings

STREAMS = [Names("arb:").stream(n) for n in type_names(TRADING)]


class Rare(Plugin):
    """Publishes, at start, one of each trading type a healthy simulated run does not make itself.

    Halted then resumed at once: the trader cancels nothing (no order is open yet) and trades on.
    """

    name = "rare"
    kind = "monitor"

    async def start(self) -> None:
        now = self.ctx.clock.time_ns()
        held = Position(venue="alpha", asset="BTC", quote="USDT", amount=0.01, cost=1.0, mark=100.0)
        events: list[Event] = [
            Alert(key="test", level="warning", message="a test alert", ts_init=now),
            TradingHalted(reason="a test halt", rule="test", ts_init=now),
            TradingResumed(reason="the test halt lifted", ts_init=now),
            PositionUpdate(position=held, ts_init=now),
        ]
        for event in events:
            self.ctx.bus.publish(event)


class Crash(Exception):
    """The consumer dies in the middle of a batch."""


def run_with_mirror(tmp_path: Path, url: str) -> None:
    """A simulated run mirroring every trading type; orders reach the paper books at once (no
    latency), so the run fills the same orders every time."""
    cfg = settings(tmp_path, url, sim=FAST_TRADING, trading={"latency_ms": 0.0},
                   redis={"events": type_names(TRADING)})
    engine = Engine(cfg, plugins=[SimSource(realtime=False, max_events=3000), CrossExchangeStrategy(),
                                  Trader(), RedisBridge(), Rare()])
    asyncio.run(engine.run(duration=60))


async def _entries(client: aioredis.Redis) -> list[tuple[str, str]]:
    """(stream, entry id) of every trading entry, in stream order."""
    out = []
    for stream in STREAMS:
        out += [(stream, eid.decode()) for eid, _ in await client.xrange(stream)]
    return out


async def _consume(client: aioredis.Redis, consumer: str, seen: list[Delivery], *,
                   crash_after: int | None = None, until: int, claim_idle_ms: int = 30_000) -> StreamConsumer:
    stop = asyncio.Event()
    reader = StreamConsumer(client, Names("arb:"), STREAMS, "audit", consumer, count=10, block_ms=100,
                            claim_idle_ms=claim_idle_ms)

    async def handle(delivery: Delivery) -> None:
        if crash_after is not None and len(seen) == crash_after:
            raise Crash
        seen.append(delivery)
        if len(seen) >= until:
            stop.set()

    await asyncio.wait_for(reader.run(handle, stop=stop), 30)
    return reader


@pytest.mark.parametrize("restart_as", ["same", "other"])
def test_a_group_handles_every_trading_event_once_across_a_crash(
        tmp_path: Path, redis_server: RedisServer, restart_as: str) -> None:
    run_with_mirror(tmp_path, redis_server.url)

    async def scenario() -> tuple[list[tuple[str, str]], list[Delivery], StreamConsumer]:
        client = aioredis.from_url(redis_server.url)
        try:
            everything = await _entries(client)
            made = {stream for stream, _ in everything}
            assert not [s for s in STREAMS if s not in made], "trading types the run made none of"
            assert len(everything) > 2 * len(STREAMS)
            seen: list[Delivery] = []
            with pytest.raises(Crash):
                await _consume(client, "a", seen, crash_after=7, until=len(everything))
            pending = [await client.xpending(stream, "audit") for stream in STREAMS]
            # delivered to the crashed consumer, never acknowledged (in whichever stream it crashed)
            assert sum(p["pending"] for p in pending) > 0
            name, idle = ("a", 30_000) if restart_as == "same" else ("b", 0)
            reader = await _consume(client, name, seen, until=len(everything), claim_idle_ms=idle)
        finally:
            await client.aclose()
        return everything, seen, reader

    everything, seen, reader = asyncio.run(scenario())
    assert sorted((d.stream, d.entry_id) for d in seen) == sorted(everything)
    assert len({d.key for d in seen}) == len(seen)  # every event once
    assert all(d.event is not None and type(d.event).__name__ == d.stream.rsplit(":", 1)[1] for d in seen)
    for stream in STREAMS:  # each stream in its own order
        ids = [d.entry_id for d in seen if d.stream == stream]
        assert ids == [eid for s, eid in everything if s == stream]
    assert any(d.redelivered for d in seen[7:])
    if restart_as == "other":
        assert reader.reclaimed > 0


def test_the_same_event_written_twice_is_handled_once(tmp_path: Path, redis_server: RedisServer) -> None:
    """A writer's resend (same run:seq, a new entry id) is acknowledged without calling the handler."""
    run_with_mirror(tmp_path, redis_server.url)

    async def scenario() -> tuple[int, list[Delivery], int]:
        client = aioredis.from_url(redis_server.url)
        everything = await _entries(client)
        stream = Names("arb:").stream("Fill")
        _, fields = (await client.xrange(stream, count=1))[0]
        await client.xadd(stream, t.cast(t.Any, fields))  # the resend
        seen: list[Delivery] = []
        reader = await _consume(client, "a", seen, until=len(everything))
        await asyncio.sleep(0.3)
        reader2 = StreamConsumer(client, Names("arb:"), STREAMS, "audit", "a", block_ms=100)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        await reader2.run(lambda d: seen.append(d) or asyncio.sleep(0), stop=stop)  # type: ignore[func-returns-value]
        await client.aclose()
        return len(everything), seen, reader.skipped + reader2.skipped

    total, seen, skipped = asyncio.run(scenario())
    assert len(seen) == total
    assert len({d.key for d in seen}) == total
    assert skipped == 1
