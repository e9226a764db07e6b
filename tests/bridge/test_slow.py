"""A slow Redis: the server is held with ``CLIENT PAUSE`` while events are published.

The pause (``WRITE``: ``ALL`` would hold the ``CLIENT UNPAUSE`` too) is ended by ``CLIENT UNPAUSE``
once the test has looked, never by a timer, and the mirror waits up to 30 s for an answer
(``connect_timeout_s``), so a held write is slow, not an outage (except in the test that says so).
The first event published is taken by the writer at once and its write is held (``in flight``);
what follows waits in the outbox. The mirror's metrics are read on a clock the test sets
(``time.monotonic_ns`` of the mirror and of its metrics), so the lag is known exactly.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import types
import typing as t
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import generate_latest

import arbitrage.bridge.metrics
import arbitrage.bridge.mirror
from arbitrage.bridge.mirror import RedisBridge
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import Alert, BookUpdate, Fill
from arbitrage.plugin import Context
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import numbered_book as book
from tests.bridge.helpers import numbered_fill as fill
from tests.bridge.helpers import settings, wait_for
from tests.monitor.test_metrics import samples

SECOND = 1_000_000_000
HELD = {"books": True, "events": ["Fill"], "streams": ["BookUpdate"], "pubsub": False,
        "connect_timeout_s": 30.0}
"""Fills (a trading event: always streamed) and books (market data, streamed here too), held writes
waiting for an answer rather than timing out."""


@contextlib.asynccontextmanager
async def paused_mirror(tmp_path: Path, server: RedisServer, mode: str,
                        **redis: t.Any) -> c.AsyncIterator[tuple[Bus, Context, RedisBridge]]:
    """A started mirror on ``server``, which is paused (``CLIENT PAUSE 60000 mode``) until the end."""
    cfg = settings(tmp_path, server.url, redis={**HELD, **redis})
    bus = Bus()
    ctx = Context(bus=bus, settings=cfg, clock=Clock(), run_id="slow-run")
    mirror = RedisBridge()
    mirror.setup(ctx)
    await bus.start()
    await mirror.start()
    try:
        assert server.command("CLIENT", "PAUSE", "60000", mode).startswith(b"+OK")
        yield bus, ctx, mirror
    finally:
        assert server.command("CLIENT", "UNPAUSE").startswith(b"+OK")
        await mirror.stop()
        await bus.stop()


async def publish_in_flight(bus: Bus, mirror: RedisBridge, event: Fill) -> None:
    """Publish ``event`` and let the writer take it: its write is now held by the pause."""
    bus.publish(event)
    await asyncio.wait_for(bus.drain(), 10)
    await wait_for(lambda: not mirror.outbox, what="the writer to take the first event")
    assert mirror.written == 0


def metrics(ctx: Context) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples(generate_latest(ctx.metrics).decode())  # type: ignore[arg-type]


def mirror_figures(values: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    """The mirror's metrics by short name."""
    return {"connected": values[("arb_redis_connected", ())],
            "outages": values[("arb_redis_outages_total", ())],
            "written": values[("arb_redis_written_total", ())],
            "dropped_buffer": values[("arb_redis_dropped_total", (("kind", "market"), ("reason", "buffer")))],
            "dropped_down": values[("arb_redis_dropped_total", (("kind", "market"), ("reason", "down")))],
            "overflow": values[("arb_redis_dropped_total", (("kind", "trading"), ("reason", "overflow")))],
            "depth_market": values[("arb_redis_buffer_depth", (("kind", "market"),))],
            "depth_trading": values[("arb_redis_buffer_depth", (("kind", "trading"),))],
            "lag": values[("arb_redis_mirror_lag_seconds", ())]}


async def streams(url: str) -> tuple[list[str], list[int]]:
    """The client order ids in ``arb:stream:Fill`` and the book numbers in ``arb:stream:BookUpdate``."""
    client = aioredis.from_url(url)
    try:
        fills = [msgspec.json.decode(f[b"event"], type=Fill).client_order_id
                 for _, f in await client.xrange("arb:stream:Fill")]
        books = [msgspec.json.decode(f[b"event"], type=BookUpdate).ts_event
                 for _, f in await client.xrange("arb:stream:BookUpdate")]
    finally:
        await client.aclose()
    return fills, books


@pytest.mark.parametrize("n_fills", [8, 11], ids=["within_buffer", "overflow"])
def test_a_paused_redis_never_holds_the_publisher_drops_books_oldest_first_and_keeps_trading_events(
        tmp_path: Path, redis_server: RedisServer, n_fills: int) -> None:
    """``CLIENT PAUSE WRITE``; one fill in flight, then 20 books and ``n_fills`` fills interleaved.

    ``market_buffer`` 5, ``trading_buffer`` 8: books 1-15 are dropped (counted), 16-20 wait;
    every fill waits while at most 8 do, past that the oldest are dropped (counted).
    """
    n_books, market_buffer, trading_buffer = 20, 5, 8

    alerts: list[Alert] = []

    async def scenario() -> tuple[dict[str, float], dict[str, float], int, list[str], list[int]]:
        reader = aioredis.from_url(redis_server.url)
        try:
            async with paused_mirror(tmp_path, redis_server, "WRITE", market_buffer=market_buffer,
                                     trading_buffer=trading_buffer) as (bus, ctx, mirror):
                bus.subscribe(Alert, alerts.append, name="alerts")
                await publish_in_flight(bus, mirror, fill(0))
                returned = 0
                for n in range(1, n_books + 1):  # as a source does: wait for room on the bus, publish
                    await asyncio.wait_for(bus.wait_ready(), 10)
                    bus.publish(book(n))
                    if n <= n_fills:
                        await asyncio.wait_for(bus.wait_ready(), 10)
                        bus.publish(fill(n))
                    returned += 1
                # every wait and publish returned and the mirror's bus queue is empty, yet Redis has
                # nothing: not even the first fill (reads are answered during a WRITE pause)
                await asyncio.wait_for(bus.drain(), 10)
                assert (returned, mirror.subscription.depth, mirror.subscription.stats.overflow) == (20, 0, 0)
                assert await reader.xlen("arb:stream:Fill") == 0
                assert await reader.xlen("arb:stream:BookUpdate") == 0
                held = mirror_figures(metrics(ctx))
                assert server_unpause(redis_server)
                expected = 1 + market_buffer + n_fills - max(0, n_fills - trading_buffer)
                await wait_for(lambda: mirror.written == expected and not mirror.outbox,
                               what="everything waiting written")
            # unpaused and stopped
            after = mirror_figures(metrics(ctx))
            fills, books = await streams(redis_server.url)
            return held, after, mirror.unwritten, fills, books
        finally:
            await reader.aclose()

    held, after, unwritten, fills, books = asyncio.run(scenario())
    overflow = max(0, n_fills - trading_buffer)
    # books: the oldest dropped first, the newest five written, in order
    assert books == list(range(n_books - market_buffer + 1, n_books + 1))
    # fills: the one in flight, then all that waited; past the buffer the oldest were lost
    assert fills == ["c0"] + [f"c{n}" for n in range(1 + overflow, n_fills + 1)]
    assert unwritten == 0
    assert (held["written"], held["dropped_buffer"], held["overflow"], held["dropped_down"]) == (
        0, n_books - market_buffer, overflow, 0)
    assert (held["connected"], held["outages"]) == (1, 0)  # slow is not down
    # waiting: the five newest books, the fills within the buffer and the one in flight
    assert (held["depth_market"], held["depth_trading"]) == (market_buffer, n_fills - overflow + 1)
    assert (after["written"], after["dropped_buffer"], after["overflow"]) == (
        1 + market_buffer + n_fills - overflow, n_books - market_buffer, overflow)
    assert (after["depth_market"], after["depth_trading"], after["lag"], after["outages"]) == (0, 0, 0, 0)
    # Redis slow, not down: the trading events the buffer dropped are told by one error alert
    told = [(a.key, a.level, a.message) for a in alerts]
    assert told == ([("redis.overflow:redis", "error", f"redis mirror: 3 trading events not written to "
                      f"{redis_server.url}: redis.trading_buffer (8) was full, Redis slower than the events")]
                    if overflow else [])


def server_unpause(server: RedisServer) -> bool:
    """End the pause now (the fixture's ``UNPAUSE`` at the end is then a no-op)."""
    return server.command("CLIENT", "UNPAUSE").startswith(b"+OK")


class SetClock:
    """``time.monotonic_ns`` for the mirror and its metrics: whatever the test set."""

    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def monotonic_ns(self) -> int:
        return self.now


def test_mirror_metrics_are_the_true_depth_drops_and_age_of_the_oldest_unwritten_event(
        tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """``CLIENT PAUSE WRITE``; ``market_buffer`` 1, ``trading_buffer`` 2; events at set times (s):

    1.0 fill A (taken by the writer: in flight), 2.5 fill B, 4.0 book C, 4.25 book D (C dropped),
    5.0 fill E, 6.0 fill F (B dropped). Read at 10.0: A, D, E, F wait, the oldest (A) for 9 s.
    """
    clock = SetClock()
    t0 = clock.now
    fake_time = types.SimpleNamespace(monotonic_ns=clock.monotonic_ns)
    monkeypatch.setattr(arbitrage.bridge.mirror, "time", fake_time)
    monkeypatch.setattr(arbitrage.bridge.metrics, "time", fake_time)

    async def scenario() -> tuple[dict[str, float], dict[str, float], dict[str, float], list[str], list[int]]:
        async with paused_mirror(tmp_path, redis_server, "WRITE", market_buffer=1,
                                 trading_buffer=2) as (bus, ctx, mirror):
            clock.now = t0 + SECOND
            await publish_in_flight(bus, mirror, fill(0))  # A
            for at, event in [(2.5, fill(1)), (4.0, book(2)), (4.25, book(3)), (5.0, fill(4)),
                              (6.0, fill(5))]:
                clock.now = t0 + int(at * SECOND)
                bus.publish(event)
                await asyncio.wait_for(bus.drain(), 10)
            clock.now = t0 + 10 * SECOND
            held = mirror_figures(metrics(ctx))
            clock.now = t0 + 12 * SECOND
            held_later = mirror_figures(metrics(ctx))
            assert server_unpause(redis_server)
            await wait_for(lambda: mirror.written == 4 and not mirror.outbox, what="A, D, E and F written")
            clock.now = t0 + 13 * SECOND
            after = mirror_figures(metrics(ctx))
        fills, books = await streams(redis_server.url)
        return held, held_later, after, fills, books

    held, held_later, after, fills, books = asyncio.run(scenario())
    assert held == {"connected": 1, "outages": 0, "written": 0, "dropped_buffer": 1, "dropped_down": 0,
                    "overflow": 1, "depth_market": 1, "depth_trading": 3, "lag": pytest.approx(9.0)}
    assert held_later["lag"] == pytest.approx(11.0)  # the same oldest event, 2 s older
    assert after == {"connected": 1, "outages": 0, "written": 4, "dropped_buffer": 1, "dropped_down": 0,
                     "overflow": 1, "depth_market": 0, "depth_trading": 0, "lag": 0}
    assert (fills, books) == (["c0", "c4", "c5"], [3])


def test_at_stop_a_write_still_held_counts_as_unwritten(tmp_path: Path, redis_server: RedisServer) -> None:
    """Stopped while paused (``flush_timeout_s`` 0.2): the fill in flight and the one waiting are
    unwritten."""
    cfg = settings(tmp_path, redis_server.url, redis={**HELD, "flush_timeout_s": 0.2})
    bus = Bus()
    ctx = Context(bus=bus, settings=cfg, clock=Clock(), run_id="slow-run")
    mirror = RedisBridge()

    async def scenario() -> dict[str, t.Any]:
        mirror.setup(ctx)
        await bus.start()
        await mirror.start()
        assert redis_server.command("CLIENT", "PAUSE", "60000", "WRITE").startswith(b"+OK")
        try:
            await publish_in_flight(bus, mirror, fill(0))
            bus.publish(fill(1))
            await asyncio.wait_for(bus.drain(), 10)
            await mirror.stop()
            await bus.stop()
        finally:
            assert server_unpause(redis_server)
        return mirror.summary()

    summary = asyncio.run(scenario())
    assert (summary["written"], summary["unwritten"]) == (0, 2)


def test_a_write_held_past_connect_timeout_is_an_outage_whose_fill_is_written_once(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """``connect_timeout_s`` 0.3: the held write of a fill and a book times out. The book is lost with
    its batch (``market``/``down``), the fill waits and is written once, after the pause: Redis drops
    the timed-out connection's held commands, and the resend looks before it adds."""

    async def scenario() -> tuple[list[Alert], dict[str, float], int, list[str], list[int]]:
        alerts: list[Alert] = []
        async with paused_mirror(tmp_path, redis_server, "WRITE", connect_timeout_s=0.3,
                                 retry_max_s=0.1) as (bus, ctx, mirror):
            bus.subscribe(Alert, alerts.append)
            bus.publish(fill(0))
            bus.publish(book(1))  # one batch with the fill
            await asyncio.wait_for(bus.drain(), 10)
            assert mirror.link is not None
            await wait_for(lambda: mirror.link.outages >= 1, what="the held write to time out")
            assert server_unpause(redis_server)
            await wait_for(lambda: mirror.written == 1 and not mirror.outbox and not mirror.sending,
                           what="the fill written")
            figures = mirror_figures(metrics(ctx))
            outages = mirror.link.outages
        fills, books = await streams(redis_server.url)
        return alerts, figures, outages, fills, books

    alerts, figures, outages, fills, books = asyncio.run(scenario())
    assert (fills, books) == (["c0"], [])
    assert (figures["dropped_down"], figures["dropped_buffer"], figures["overflow"]) == (1, 0, 0)
    assert figures["outages"] == outages >= 1  # PING is answered during a WRITE pause: one per timeout
    downs = [a.recovered for a in alerts if a.key == "redis.down:mirror"]
    assert downs == [False, True] * outages
