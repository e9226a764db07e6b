"""The notifier against a real HTTP endpoint on 127.0.0.1: content, dedupe, throttle, never blocking."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from loguru import logger
from prometheus_client import generate_latest

from arbitrage.errors import SettingsError
from arbitrage.events import Alert, ArbResult, Position, PositionUpdate, TradingHalted, TradingResumed
from arbitrage.notify import Notifier, configured_urls
from arbitrage.notify.messages import arb_message
from arbitrage.plugin import load_plugin
from arbitrage.settings import NotifySettings
from arbitrage.tally import Tally
from tests.notify.helpers import T0, NotifierHarness, S, Sink, closed_port, notify_settings, run


def alert(key: str, level: str = "warning", message: str = "", recovered: bool = False,
          ts: int = T0) -> Alert:
    return Alert(key=key, level=level, message=message or f"{key} is bad", recovered=recovered,  # type: ignore[arg-type]
                 ts_init=ts)


def arb(id: str, status: str = "complete", realized: float = 1.5, unrealized: float = 0.0) -> ArbResult:
    return ArbResult(opportunity_id=id, strategy="cross_exchange", status=status, legs=(),  # type: ignore[arg-type]
                     quote="USDT", expected_profit=2.0, realized_profit=realized, fees=0.25, slippage=0.5,
                     unrealized_profit=unrealized, ts_init=T0)


def btc(venue: str, amount: float, cost: float, mark: float, realized: float = 0.0) -> PositionUpdate:
    """The ledger's newest state of ``venue``'s BTC position (``realized``: so far in the run)."""
    return PositionUpdate(position=Position(venue=venue, asset="BTC", quote="USDT", amount=amount, cost=cost,
                                            mark=mark), realized=realized, ts_init=T0)


def test_notifier_is_registered_and_loaded_by_default() -> None:
    from arbitrage.settings import Settings

    assert load_plugin("notifier", "notifier") is Notifier
    assert "notifier" in Settings().run.plugins


def test_alerts_at_or_above_the_level_reach_the_endpoint_with_title_body_and_type() -> None:
    with Sink() as sink:
        async def scenario() -> None:
            h = NotifierHarness(notify_settings([sink.url()], alert_level="warning"))
            await h.start()
            h.bus.publish(alert("loop.lag", "info"))
            h.bus.publish(alert("feed.stale:alpha", "warning", "alpha: no book for 3.0 s on BTC/USDT"))
            h.bus.publish(alert("feed.stale:alpha", "warning", "recovered: alpha ok", recovered=True))
            h.bus.publish(alert("subscriber.errors:storage:Fill", "error", "storage failing"))
            await h.settle()
            await h.stop()

        run(scenario())
    assert sink.messages() == [
        ("arb WARNING: feed.stale:alpha", "alpha: no book for 3.0 s on BTC/USDT", "warning"),
        ("arb recovered: feed.stale:alpha", "recovered: alpha ok", "success"),
        ("arb ERROR: subscriber.errors:storage:Fill", "storage failing", "failure"),
    ]
    assert {p.path for p in sink.posts} == {"/hook"}
    assert all(p.authorization.startswith("Basic ") for p in sink.posts)  # the URL's credentials were used


def test_the_same_alert_twice_is_sent_once_but_fire_recover_fire_is_sent_each_time() -> None:
    with Sink() as sink:
        async def scenario() -> Notifier:
            h = NotifierHarness(notify_settings([sink.url()], dedupe_s=600.0))
            await h.start()
            h.bus.publish(alert("loop.lag"))
            h.bus.publish(alert("loop.lag"))
            h.bus.publish(alert("loop.lag", recovered=True))
            h.bus.publish(alert("loop.lag"))
            await h.bus.drain()  # the gate reads the clock when the notifier handles an event
            h.clock.advance_to(T0 + 601 * S)
            h.bus.publish(alert("loop.lag"))  # the same state again, but after dedupe_s
            await h.settle()
            await h.stop()
            return h.notifier

        notifier = run(scenario())
    assert [m[0] for m in sink.messages()] == ["arb WARNING: loop.lag", "arb recovered: loop.lag",
                                               "arb WARNING: loop.lag", "arb WARNING: loop.lag"]
    assert notifier.gate.duplicates == 1


def test_throttle_holds_back_extra_messages_lets_critical_through_and_reports_the_count() -> None:
    with Sink() as sink:
        async def scenario() -> Notifier:
            h = NotifierHarness(notify_settings([sink.url()], max_per_minute=3))
            await h.start()
            for i in range(6):
                h.bus.publish(alert(f"k{i}"))
            h.bus.publish(alert("fatal", "critical"))
            await h.bus.drain()
            h.clock.advance_to(T0 + 61 * S)
            h.bus.publish(alert("later"))
            await h.settle()
            await h.stop()
            return h.notifier

        notifier = run(scenario())
    titles = [m[0] for m in sink.messages()]
    assert titles == ["arb WARNING: k0", "arb WARNING: k1", "arb WARNING: k2", "arb CRITICAL: fatal",
                      "arb WARNING: later"]
    assert sink.messages()[3][1] == "fatal is bad\n(3 more notifications held back by the throttle)"
    assert sink.messages()[4][1] == "later is bad"
    assert notifier.gate.throttled == 3


def test_hanging_endpoint_never_delays_the_publisher_the_send_waits_in_the_notifier_thread() -> None:
    with Sink() as sink:
        sink.hold.clear()  # the endpoint accepts the connection and then says nothing

        async def scenario() -> tuple[int, int, int, list[str], int]:
            h = NotifierHarness(notify_settings([sink.url()], arbs="each", max_per_minute=100))
            await h.start()
            h.bus.publish(arb("o1"))  # the trading path: returns at once
            assert sink.posts == [] and h.notifier.pending == 0  # nothing was done inside publish
            assert await asyncio.to_thread(sink.arrived.acquire, True, 5)  # the post reached the endpoint...
            in_flight = h.notifier.in_flight  # ...and is still waiting for its answer
            threads = [t.name for t in threading.enumerate() if t.name.startswith("arb-notify")]
            for i in range(2, 7):  # more results while the first send hangs
                h.bus.publish(arb(f"o{i}"))
            await asyncio.sleep(0.01)  # the loop is free
            await h.bus.drain()
            posted_while_hanging, pending = len(sink.posts), h.notifier.pending
            sink.hold.set()
            await h.settle()
            await h.stop()
            return in_flight, posted_while_hanging, pending, threads, h.notifier.sent

        in_flight, posted_while_hanging, pending, threads, sent = run(scenario())
    assert in_flight == 1
    assert threads  # the blocking HTTP call runs in the notifier's own pool
    assert (posted_while_hanging, pending) == (1, 6)  # one send hanging, five queued behind it
    assert sent == 6 and sink.messages()[0][0] == "arb complete: net +1.5 USDT"


def test_dead_endpoint_is_counted_and_logged_without_secrets_and_other_channels_still_get_it() -> None:
    lines: list[str] = []
    sink_id = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message} {extra}")
    dead = f"json://arb:DeadPw99@127.0.0.1:{closed_port()}/hook?token=tok-777"
    try:
        with Sink() as sink:
            async def scenario() -> Notifier:
                h = NotifierHarness(notify_settings([dead, sink.url()]))
                await h.start()
                h.bus.publish(alert("loop.lag"))
                await h.settle()
                await h.stop()
                return h.notifier

            notifier = run(scenario())
    finally:
        logger.remove(sink_id)
    assert (notifier.sent, notifier.failed) == (1, 1)
    assert len(sink.posts) == 1
    assert notifier.summary()["failed"] == 1
    text = "\n".join(lines)
    assert "notification to #1 json://*** failed (1 failure(s) so far)" in text
    assert "notifier: 2 channel(s): #1 json://***, #2 json://***" in text
    for secret in ("DeadPw99", "tok-777", "S3cretPw"):
        assert secret not in text


def test_arb_results_each_or_batched_every_n_minutes() -> None:
    with Sink() as sink:
        async def scenario() -> None:
            h = NotifierHarness(notify_settings([sink.url()], arbs="batch", batch_minutes=1.0))
            await h.start()
            h.bus.publish(arb("o1"))
            h.bus.publish(arb("o2", realized=-0.5))
            h.bus.publish(arb("o3", status="partial", realized=0.25))
            await h.settle()
            assert sink.posts == []
            h.clock.advance_to(T0 + 61 * S)
            h.notifier.tick()
            h.notifier.tick()  # nothing new: no empty batch
            await h.settle()
            await h.stop()

        run(scenario())
    assert sink.messages() == [
        ("arb: 3 arbitrages in the last 61 s",
         "3 arbitrages (2 complete, 1 partial); realized +1.25 USDT; unrealized +0 USDT; net +1.25 USDT; "
         "fees 0.75 USDT", "info")]


def test_one_arbitrage_says_net_realized_and_unrealized() -> None:
    # realized -0.5, a residual marked +0.3 above its cost: net -0.5 + 0.3 = -0.2
    message = arb_message(arb("o9", status="partial", realized=-0.5, unrealized=0.3))
    assert message.title == "arb partial: net -0.2 USDT"
    assert message.body.startswith("o9 (cross_exchange): net -0.2 USDT (realized -0.5, unrealized +0.3), ")


def test_batches_count_what_positions_realized_and_moved_and_add_up_to_the_run() -> None:
    with Sink() as sink:
        async def scenario() -> None:
            h = NotifierHarness(notify_settings([sink.url()], arbs="batch", batch_minutes=1.0,
                                                lifecycle=True))
            h.ctx.tally = Tally(h.bus)
            h.ctx.stop.request("duration reached")
            await h.start()
            # batch 1: +1.5, and a short of 0.01 BTC that received 1.0 USDT, marked at 101
            h.bus.publish(arb("o1", realized=1.5, unrealized=-0.01))
            h.bus.publish(btc("alpha", -0.01, -1.0, 101.0))
            await h.settle()
            h.clock.advance_to(T0 + 61 * S)
            h.notifier.tick()
            # batch 2: -0.5, and the short bought back at 102: 1.0 - 1.02 = -0.02 realized
            h.bus.publish(arb("o2", realized=-0.5))
            h.bus.publish(btc("alpha", 0.0, 0.0, 102.0, realized=-0.02))
            await h.settle()
            h.clock.advance_to(T0 + 122 * S)
            h.notifier.tick()
            await h.settle()
            await h.stop()

        run(scenario())
    # batch 1: unrealized -0.01 * 101 + 1.0 = -0.01, net 1.49. batch 2: realized -0.5 - 0.02 = -0.52,
    # unrealized 0 - (-0.01) = +0.01 (the short closed), net -0.51. Run: realized 1.5 - 0.52 = 0.98,
    # nothing open, net 0.98 = 1.49 - 0.51.
    assert [m[1] for m in sink.messages()[1:]] == [
        "1 arbitrage (1 complete); realized +1.5 USDT; unrealized -0.01 USDT; net +1.49 USDT; fees 0.25 USDT",
        "1 arbitrage (1 complete); realized -0.52 USDT; unrealized +0.01 USDT; net -0.51 USDT; "
        "fees 0.25 USDT",
        "0 books, 0 opportunities, 2 arbitrages; realized +0.98 USDT; unrealized +0 USDT; net +0.98 USDT",
    ]


def test_halt_and_resume_are_sent_once_each_and_urgently() -> None:
    with Sink() as sink:
        async def scenario() -> None:
            h = NotifierHarness(notify_settings([sink.url()], max_per_minute=1))
            await h.start()
            h.bus.publish(alert("loop.lag"))  # uses the only slot of the minute
            h.bus.publish(TradingHalted(reason="daily realized loss 60 USDT", rule="daily_loss", ts_init=T0))
            h.bus.publish(alert("kill_switch", "critical", "trading halted"))  # said by TradingHalted already
            h.bus.publish(TradingResumed(reason="halt file removed (arb resume)", ts_init=T0))
            h.bus.publish(alert("kill_switch", "critical", "recovered", recovered=True))
            await h.settle()
            await h.stop()

        run(scenario())
    titles = [m[0] for m in sink.messages()]
    assert titles == ["arb WARNING: loop.lag", "arb HALTED: new trading stopped",
                      "arb resumed: trading again"]
    assert "daily realized loss 60 USDT (rule daily_loss)" in sink.messages()[1][1]
    assert "arb resume" in sink.messages()[1][1]


def test_start_stop_and_daily_summary_messages() -> None:
    with Sink() as sink:
        async def scenario() -> None:
            h = NotifierHarness(notify_settings([sink.url()], lifecycle=True, arbs="off"))
            h.ctx.tally = Tally(h.bus)
            h.ctx.stop.request("duration reached")
            await h.start()
            h.bus.publish(arb("o1"))
            h.bus.publish(btc("beta", 0.0, 0.0, 100.0, realized=0.4))  # the ledger closed a position: +0.4
            h.bus.publish(alert("loop.lag", "info"))
            await h.settle()
            day = 86_400 * S
            h.clock.advance_to((T0 // day + 1) * day + S)  # past midnight UTC
            h.notifier.tick()
            await h.settle()
            await h.stop()

        run(scenario())
    assert sink.messages() == [
        ("arb run test-run started", "source sim, strategy cross_exchange, paper trading", "info"),
        ("arb daily summary 2023-11-14", "1 arbitrage (1 complete); realized +1.9 USDT; unrealized +0 USDT; "
         "net +1.9 USDT; fees 0.25 USDT; 1 alert", "info"),
        ("arb run test-run stopped: duration reached",
         "0 books, 0 opportunities, 1 arbitrages; realized +1.9 USDT; unrealized +0 USDT; net +1.9 USDT",
         "info"),
    ]


def test_notification_counts_are_exported_on_the_run_registry() -> None:
    with Sink() as sink:
        async def scenario() -> bytes:
            h = NotifierHarness(notify_settings([sink.url()]))
            registry = h.ctx.metrics
            await h.start()
            h.bus.publish(alert("loop.lag"))
            h.bus.publish(alert("loop.lag"))
            await h.settle()
            await h.stop()
            return generate_latest(registry)

        text = run(scenario()).decode()
    assert 'arb_notifications_total{channel="#1 json://***",result="sent"} 1.0' in text
    assert 'arb_notifications_suppressed_total{reason="duplicate"} 1.0' in text


def test_urls_come_from_settings_environment_and_flags_without_repeats() -> None:
    settings = NotifySettings(urls=["json://a/x"])
    environ = {"ARB_NOTIFY_URLS": "json://b/y, json://c/z  json://a/x"}
    assert configured_urls(settings, environ, ["json://d/w", "json://b/y"]) == [
        "json://a/x", "json://b/y", "json://c/z", "json://d/w"]


def test_environment_urls_alone_enable_the_notifier() -> None:
    h = NotifierHarness(notify_settings([]), environ={"ARB_NOTIFY_URLS": "json://127.0.0.1:9/x"})
    assert h.notifier.enabled and h.notifier.urls == ["json://127.0.0.1:9/x"]


def test_without_urls_the_notifier_subscribes_to_nothing_and_sends_nothing() -> None:
    async def scenario() -> NotifierHarness:
        h = NotifierHarness(notify_settings([], lifecycle=True))
        await h.start()
        h.bus.publish(alert("loop.lag"))
        await h.stop()
        return h

    h = run(scenario())
    assert not h.notifier.enabled and h.bus.subscriptions() == [] and h.notifier.summary() == {}


def test_an_apprise_config_file_adds_its_urls(tmp_path: Path) -> None:
    with Sink() as sink:
        config = tmp_path / "apprise.txt"
        config.write_text(f"json://127.0.0.1:{sink.port}/from-config\n")

        async def scenario() -> None:
            h = NotifierHarness(notify_settings([], config=str(config)))
            await h.start()
            h.bus.publish(alert("loop.lag"))
            await h.settle()
            await h.stop()

        run(scenario())
    assert [p.path for p in sink.posts] == ["/from-config"]


def test_an_unusable_url_fails_start_naming_it_without_its_secret() -> None:
    async def scenario() -> None:
        h = NotifierHarness(notify_settings(["nosuchscheme://token-abc-123/chat"]))
        try:
            await h.start()
        finally:
            await h.stop()

    with pytest.raises(SettingsError) as info:
        run(scenario())
    assert "#1 nosuchscheme://***" in str(info.value) and "token-abc-123" not in str(info.value)
