"""The monitor plugin: alerts that fire and recover, latency histograms, counts, heartbeats."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from arbitrage.events import (
    FeedStatus,
    Heartbeat,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
)
from arbitrage.monitor import Monitor
from arbitrage.plugin import load_plugin
from tests.monitor.helpers import (
    MS,
    T0,
    MonitorHarness,
    S,
    halt_path,
    opportunity,
    result,
    run,
    settings_with,
)


def test_monitor_is_registered_and_loaded_by_default() -> None:
    from arbitrage.settings import Settings

    assert load_plugin("monitor", "monitor") is Monitor
    assert "monitor" in Settings().run.plugins


def test_stalled_feed_alerts_once_then_recovers_when_books_return(tmp_path: Path) -> None:
    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)))
        await h.start()
        h.markets("alpha", "BTC/USDT", "ETH/USDT", staleness_ms=1000.0)
        h.book("alpha", "BTC/USDT", 100.0, 101.0)
        h.book("alpha", "ETH/USDT", 10.0, 10.1)
        h.check_at(T0 + 900 * MS)
        assert h.keys() == []
        h.clock.advance_to(T0 + 1500 * MS)
        h.book("alpha", "ETH/USDT", 10.0, 10.1)  # ETH keeps updating, BTC stalls
        h.check_at(T0 + 2500 * MS)
        h.check_at(T0 + 3000 * MS)  # still stale: not repeated
        assert h.keys() == ["feed.stale:alpha"]
        stale = h.alerts[0]
        assert stale.level == "warning" and "BTC/USDT" in stale.message and "ETH/USDT" not in stale.message
        assert h.monitor.view.health()["status"] == "degraded"
        # by 3.0 s ETH (last book at 1.5 s) is stale too: same alert, its latest message names both
        assert [f.status for f in h.monitor.view.feeds()] == ["stale", "stale"]
        assert "BTC/USDT, ETH/USDT" in h.monitor.view.health()["reasons"][0]
        h.book("alpha", "BTC/USDT", 100.0, 101.0)
        h.book("alpha", "ETH/USDT", 10.0, 10.1)
        h.check_at(T0 + 3100 * MS)
        await h.stop()
        return h

    h = run(scenario())
    assert [(a.key, a.recovered) for a in h.alerts] == [("feed.stale:alpha", False),
                                                        ("feed.stale:alpha", True)]
    assert h.monitor.view.health() == {"status": "ok", "reasons": []}


def test_feed_stale_s_overrides_the_venue_limit_and_stopped_feeds_are_not_stale(tmp_path: Path) -> None:
    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path), feed_stale_s=10.0))
        await h.start()
        h.markets("alpha", "BTC/USDT", staleness_ms=1000.0)
        h.book("alpha", "BTC/USDT", 100.0, 101.0)
        h.check_at(T0 + 5 * S)
        assert h.keys() == []
        h.check_at(T0 + 11 * S)
        assert h.keys() == ["feed.stale:alpha"]
        h.bus.publish(FeedStatus(venue="alpha", status="stopped", ts_init=h.clock.time_ns()))
        h.check_at(T0 + 12 * S)
        await h.stop()
        return h

    assert run(scenario()).keys(recovered=True) == ["feed.stale:alpha"]


def test_feed_status_error_alerts_until_the_feed_reconnects(tmp_path: Path) -> None:
    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)))
        await h.start()
        h.bus.publish(FeedStatus(venue="beta", status="error", detail="socket closed", ts_init=T0))
        h.check_at(T0 + S)
        h.bus.publish(FeedStatus(venue="beta", status="connected", ts_init=T0 + S))
        h.check_at(T0 + 2 * S)
        await h.stop()
        return h

    h = run(scenario())
    assert [(a.key, a.level, a.recovered) for a in h.alerts] == [
        ("feed.status:beta", "error", False), ("feed.status:beta", "error", True)]
    assert h.alerts[0].message == "beta feed error: socket closed"


def test_blocked_event_loop_raises_loop_lag_then_recovers_after_the_quiet_period(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Monitor, "lag_probe_s", 0.01)

    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path), loop_lag_ms=50.0, error_quiet_s=5.0))
        await h.start()
        await asyncio.sleep(0.03)
        h.check_at(T0 + S)
        assert h.keys() == []
        time.sleep(0.12)  # block the loop: the probe wakes ~120 ms late
        await asyncio.sleep(0.03)
        h.check_at(T0 + 2 * S)
        assert h.keys() == ["loop.lag"]
        assert h.monitor.loop_lag.count > 0 and max(h.monitor.loop_lag.recent) >= 0.1
        h.check_at(T0 + 4 * S)  # within error_quiet_s: still firing, not repeated
        await asyncio.sleep(0.03)
        h.check_at(T0 + 8 * S)
        await h.stop()
        return h

    h = run(scenario())
    assert [(a.key, a.recovered) for a in h.alerts] == [("loop.lag", False), ("loop.lag", True)]
    assert "limit 50 ms" in h.alerts[0].message


def test_failing_inline_subscriber_alerts_and_recovers_after_quiet_period(tmp_path: Path) -> None:
    def broken(_: OpportunityRejected) -> None:
        raise ValueError("boom")

    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path), error_quiet_s=30.0))
        h.bus.subscribe(OpportunityRejected, broken, name="broken")
        await h.start()
        h.bus.publish(OpportunityRejected(opportunity_id="o1", reason="busy", ts_init=T0))
        h.check_at(T0 + S)
        h.bus.publish(OpportunityRejected(opportunity_id="o2", reason="busy", ts_init=T0 + S))
        h.check_at(T0 + 20 * S)  # a new error: still the same alert, not repeated
        h.check_at(T0 + 49 * S)
        assert h.keys(recovered=True) == []
        h.check_at(T0 + 51 * S)
        await h.stop()
        return h

    h = run(scenario())
    assert [(a.key, a.level, a.recovered) for a in h.alerts] == [
        ("subscriber.errors:broken:OpportunityRejected", "error", False),
        ("subscriber.errors:broken:OpportunityRejected", "error", True)]


def test_failing_queued_subscriber_alerts(tmp_path: Path) -> None:
    async def broken(_: OpportunityRejected) -> None:
        raise RuntimeError("disk full")

    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)))
        h.bus.subscribe_queued(OpportunityRejected, broken, name="writer")
        await h.start()
        h.bus.publish(OpportunityRejected(opportunity_id="o1", reason="busy", ts_init=T0))
        await h.bus.drain()
        h.check_at(T0 + S)
        await h.stop()
        return h

    assert run(scenario()).keys() == ["subscriber.errors:writer:OpportunityRejected"]


def test_dropping_and_stuck_queued_subscriber_alerts(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def slow(_: OpportunityRejected) -> None:
        await release.wait()

    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path), heartbeat_s=1.0, queue_full=0.5))
        h.bus.subscribe_queued(OpportunityRejected, slow, name="slow", maxsize=4, policy="drop_oldest")
        await h.start()
        for i in range(8):
            h.bus.publish(OpportunityRejected(opportunity_id=f"o{i}", reason="busy", ts_init=T0 + i))
        await asyncio.sleep(0)
        h.check_at(T0 + S)
        h.check_at(T0 + 5 * S)  # > 3 x heartbeat_s without handling anything
        release.set()
        await h.bus.drain()
        await h.stop()
        return h

    h = run(scenario())
    assert h.keys() == ["subscriber.drops:slow:OpportunityRejected", "queue.full:slow:OpportunityRejected",
                        "subscriber.stuck:slow:OpportunityRejected"]
    assert h.monitor.view.health()["status"] == "degraded"


def test_silent_heartbeat_source_alerts_and_monitor_publishes_its_own(tmp_path: Path) -> None:
    async def scenario() -> tuple[MonitorHarness, list[Heartbeat]]:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path), heartbeat_s=1.0))
        await h.start()
        with h.bus.collect(Heartbeat) as beats:
            h.bus.publish(Heartbeat(source="notifier", ts_init=T0))
            h.check_at(T0 + 5 * S)
            h.check_at(T0 + 5 * S + 500 * MS)
        await h.stop()
        return h, beats

    h, beats = run(scenario())
    assert h.keys() == ["heartbeat:notifier"]
    assert [b.source for b in beats] == ["notifier", "monitor"]  # the second check is within heartbeat_s


def test_latency_histograms_follow_one_arbitrage(tmp_path: Path) -> None:
    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)))
        await h.start()
        h.book("alpha", "BTC/USDT", 100.0, 101.0, ts_event=T0 - 5 * MS)  # received at T0
        opp = opportunity("o1", book_ts=T0 - 5 * MS, ts_init=T0 + 2 * MS)
        h.bus.publish(opp)
        for i, leg in enumerate(opp.legs):
            h.bus.publish(OrderSubmitted(client_order_id=f"o1-L{i}", opportunity_id="o1", venue=leg.venue,
                                         symbol=leg.symbol, side=leg.side, amount=0.01, price=100.0,
                                         ts_init=T0 + 3 * MS))
        for i, (leg, at) in enumerate(zip(opp.legs, (20, 30), strict=True)):
            h.bus.publish(OrderUpdate(client_order_id=f"o1-L{i}", opportunity_id="o1", venue=leg.venue,
                                      symbol=leg.symbol, side=leg.side, status="filled", amount=0.01,
                                      filled=0.01, average_price=100.0, fee=0.001, ts_event=T0 + at * MS,
                                      ts_init=T0 + at * MS))
        h.bus.publish(result("o1", ts=T0 + 40 * MS))
        h.bus.publish(opportunity("o2", book_ts=T0, ts_init=T0 + 50 * MS))
        h.bus.publish(OpportunityRejected(opportunity_id="o2", reason="busy", ts_init=T0 + 50 * MS))
        await h.stop()
        return h

    m = run(scenario()).monitor
    assert list(m.latency["book_to_opportunity"].recent) == [pytest.approx(0.002)]  # o2's book was never seen
    assert list(m.latency["opportunity_to_ack"].recent) == [pytest.approx(0.028)]  # the last leg acknowledged
    assert list(m.latency["opportunity_to_result"].recent) == [pytest.approx(0.038)]
    assert (m.opportunities, dict(m.rejected), dict(m.orders), dict(m.arbs)) == (
        2, {"busy": 1}, {"leg": 2}, {"complete": 1})
    assert m._pending == {} and m._legs == {}
    latency = m.view.latency()
    assert latency["opportunity_to_result"].count == 1
    assert latency["opportunity_to_result"].p50_ms == pytest.approx(38)


def test_pnl_fees_and_residual_accumulate_from_results(tmp_path: Path) -> None:
    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)))
        await h.start()
        h.bus.publish(result("a", realized=2.5, residual={"BTC": 0.001}))
        h.bus.publish(result("b", status="partial", realized=-0.5, residual={"BTC": -0.0004, "ETH": 0.0}))
        await h.stop()
        return h

    view = run(scenario()).monitor.view
    assert view.pnl() == {"USDT": pytest.approx(2.0)}
    assert view.daily_pnl() == {"USDT": pytest.approx(2.0)}
    assert view.residual() == {"BTC": pytest.approx(0.0006)}
    assert view.counts()["arbs"] == {"complete": 1, "partial": 1}
