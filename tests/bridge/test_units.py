"""The bridge's parts on their own: outbox, inbound gate, names, settings; buffers while Redis is down."""

from __future__ import annotations

import asyncio
import typing as t
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import generate_latest

from arbitrage.bridge.entries import Inbound, Refused
from arbitrage.bridge.mirror import RedisBridge
from arbitrage.bridge.names import Names
from arbitrage.bridge.outbox import Entry, Outbox
from arbitrage.bridge.roles import role_run
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import EVENT_TYPES, Alert, BookUpdate, Fill, Origin, encode_json
from arbitrage.plugin import Context
from arbitrage.settings import RedisSettings, Settings
from arbitrage.settings.sections import INBOUND_ALLOWED, EventName
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import settings, wait_for


def entry(seq: int, lossy: bool) -> Entry:
    return Entry(seq, [("PUBLISH", "c", str(seq))], lossy, seq)


def test_outbox_keeps_publish_order_drops_market_data_oldest_first_and_counts_overflow() -> None:
    box = Outbox(lossy_max=2, kept_max=3)
    for seq, lossy in enumerate([True, False, True, True, False, False, False], 1):
        box.put(entry(seq, lossy))
    assert (box.dropped_full, box.overflow) == (1, 1)  # book 1 and kept entry 2 went first
    batch = box.take(10)
    assert [e.seq for e in batch] == [3, 4, 5, 6, 7]
    box.put_back(batch)
    assert box.dropped_down == 2 and [e.seq for e in box.kept] == [5, 6, 7]
    assert all(e.unsure for e in box.kept)
    assert not box.lossy


def book(venue: str = "alpha") -> BookUpdate:
    return BookUpdate(venue=venue, symbol="BTC/USDT", bids=[(1.0, 1.0)], asks=[(2.0, 1.0)], ts_event=1,
                      ts_init=2)


def fields(event: t.Any, type_name: str | None = None, run: str = "r") -> dict[bytes, bytes]:
    return {b"type": (type_name or type(event).__name__).encode(), b"node": b"n", b"run": run.encode(),
            b"seq": b"7", b"event": encode_json(event)}


def test_inbound_takes_allowed_market_data_only() -> None:
    gate = Inbound(["BookUpdate", "MarketsLoaded"], run_id="me")
    assert gate.decode(fields(book()), "alpha") == (book(), "n", "r", 7)
    fill = Fill(client_order_id="c", opportunity_id="o", venue="alpha", symbol="BTC/USDT", side="buy",
                price=1.0, amount=1.0, fee=0.0, fee_currency="USDT", ts_event=1, ts_init=1)
    for data, reason in [(fields(fill), "type"), (fields(fill, "BookUpdate"), "invalid"),
                         (fields(book(), run="me"), "loop"), (fields(book("beta")), "venue"),
                         ({**fields(book()), b"seq": b"x"}, "invalid"),
                         ({b"type": b"BookUpdate"}, "invalid")]:
        with pytest.raises(Refused) as refused:
            gate.decode(data, "alpha")
        assert refused.value.reason == reason


def test_settings_name_every_event_type_and_never_let_trading_events_in() -> None:
    assert set(t.get_args(EventName)) == {tp.__name__ for tp in EVENT_TYPES}
    assert not set(INBOUND_ALLOWED) & {"OrderSubmitted", "OrderUpdate", "Fill", "Opportunity", "ArbResult",
                                        "BalanceUpdate", "PositionUpdate", "TradingHalted", "TradingResumed"}


def test_an_event_without_origin_encodes_as_before_and_one_with_origin_keeps_it() -> None:
    plain = book()
    assert b"origin" not in encode_json(plain)
    remote = msgspec.structs.replace(plain, origin=Origin(node="c1", run_id="r", seq=3, ts_init=1))
    assert msgspec.json.decode(encode_json(remote), type=BookUpdate) == remote


def test_names_put_everything_under_the_prefix() -> None:
    names = Names("x:")
    assert (names.channel("Fill"), names.stream("Fill"), names.feed("alpha"), names.markets("alpha"),
            names.feeds) == ("x:Fill", "x:stream:Fill", "x:feed:alpha", "x:markets:alpha", "x:feeds")
    assert names.venue_of(b"x:feed:alpha") == "alpha"
    assert [names.resolve_stream(n) for n in ("Fill", "feed:beta", "x:stream:Alert")] == [
        "x:stream:Fill", "x:feed:beta", "x:stream:Alert"]


@pytest.mark.parametrize(("redis", "expected"), [
    ({}, {"plugins": ["trader", "storage"]}),
    ({"url": "redis://h"}, {"plugins": ["trader", "storage", "redis"]}),
    ({"url": "redis://h", "role": "engine"},
     {"plugins": ["trader", "storage", "redis"], "source": "redis_feed"}),
    ({"url": "redis://h", "role": "collector"}, {"plugins": ["redis", "recorder"], "strategy": ""}),
])
def test_roles_choose_the_plugins(redis: dict[str, str], expected: dict[str, t.Any]) -> None:
    s = Settings(redis=RedisSettings(**redis))
    plugins = ["trader", "storage"] + (["recorder"] if redis.get("role") == "collector" else [])
    assert role_run(s, plugins) == expected


def test_while_redis_is_down_trading_events_wait_in_a_bounded_buffer_and_market_data_is_dropped(
        tmp_path: Path, redis_factory: t.Callable[..., RedisServer]) -> None:
    server = redis_factory()
    cfg = settings(tmp_path, server.url, redis={"books": True, "trading_buffer": 5, "market_buffer": 3,
                                                "retry_max_s": 0.1, "events": ["Fill"], "pubsub": False})
    bus = Bus()
    ctx = Context(bus=bus, settings=cfg, clock=Clock(), run_id="run1")
    mirror = RedisBridge()
    alerts: list[Alert] = []
    bus.subscribe(Alert, alerts.append)
    fills = [Fill(client_order_id=f"c{n}", opportunity_id="o", venue="alpha", symbol="BTC/USDT", side="buy",
                  price=1.0, amount=1.0, fee=0.0, fee_currency="USDT", ts_event=n, ts_init=n)
             for n in range(10)]

    async def scenario() -> tuple[list[t.Any], str]:
        mirror.setup(ctx)
        await bus.start()
        await mirror.start()
        server.kill()
        for n, fill in enumerate(fills):
            bus.publish(book())
            bus.publish(fill)
            if n == 0:
                await wait_for(lambda: mirror.link is not None and not mirror.link.up,
                               what="the failed write")
        await bus.drain()
        metrics = generate_latest(ctx.metrics).decode()  # type: ignore[arg-type]
        server.start()
        await wait_for(lambda: not mirror.outbox and mirror.link is not None and mirror.link.up,
                       what="the buffer written")
        await mirror.stop()
        await bus.stop()
        client = aioredis.from_url(server.url)
        entries = await client.xrange("arb:stream:Fill")
        await client.aclose()
        return entries, metrics

    entries, metrics = asyncio.run(scenario())
    written = [msgspec.json.decode(f[b"event"], type=Fill).client_order_id for _, f in entries]
    box = mirror.outbox
    assert written == [f"c{n}" for n in range(5, 10)]  # the newest five: c0 (its write failed) to c4 dropped
    assert box.overflow == 5
    assert (box.dropped_down, box.dropped_full) == (1, 6)  # book 0 with the failed batch, 6 of the 9 after
    assert 'arb_redis_dropped_total{kind="trading",reason="overflow"} 5.0' in metrics
    assert "arb_redis_buffer_depth" in metrics
    downs = [a for a in alerts if a.key == "redis.down:mirror"]
    assert [a.recovered for a in downs] == [False, True]
    assert "trading events LOST" in downs[1].message
