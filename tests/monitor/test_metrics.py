"""/metrics and /health over real HTTP on 127.0.0.1 (ephemeral port), one registry per run."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from arbitrage.events import FeedStatus, Position, PositionUpdate
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


def get(url: str) -> tuple[int, str, str]:
    """Blocking GET: (status, content type, body); HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_and_health_answer_over_http(tmp_path: Path) -> None:
    async def scenario() -> dict[str, tuple[int, str, str]]:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)), metrics_port=0)
        await h.start()
        url = h.monitor.view.metrics_url
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        h.markets("alpha", "BTC/USDT")
        h.book("alpha", "BTC/USDT", 100.0, 101.0, ts_event=T0 - 3 * MS)
        h.book("alpha", "BTC/USDT", 100.0, 101.0, ts_event=T0 - 3 * MS)
        h.bus.publish(opportunity("o1", book_ts=T0 - 3 * MS, ts_init=T0 + MS))
        h.bus.publish(result("o1", realized=1.5, residual={"BTC": 0.001}, ts=T0 + 30 * MS))
        answers = {"metrics": await asyncio.to_thread(get, url + "/metrics"),
                   "ok": await asyncio.to_thread(get, url + "/health")}
        h.bus.publish(FeedStatus(venue="alpha", status="reconnecting", ts_init=T0))
        h.check_at(T0 + S)
        answers["degraded"] = await asyncio.to_thread(get, url + "/health")
        h.monitor.halt("halt_file", "test halt", write_file=False)
        answers["halted"] = await asyncio.to_thread(get, url + "/health")
        answers["missing"] = await asyncio.to_thread(get, url + "/nope")
        await h.stop()
        return answers

    answers = run(scenario())
    status, ctype, text = answers["metrics"]
    assert status == 200 and ctype.startswith("text/plain")
    values = samples(text)
    assert values[("arb_feed_books_total", (("symbol", "BTC/USDT"), ("venue", "alpha")))] == 2
    assert values[("arb_feed_latency_seconds", (("symbol", "BTC/USDT"), ("venue", "alpha")))] == 0.003
    assert values[("arb_latency_seconds_count", (("stage", "opportunity_to_result"),))] == 1
    assert values[("arb_latency_seconds_bucket", (("le", "0.05"), ("stage", "opportunity_to_result")))] == 1
    assert values[("arb_latency_seconds_bucket", (("le", "0.025"), ("stage", "opportunity_to_result")))] == 0
    assert values[("arb_realized_pnl", (("quote", "USDT"),))] == 1.5
    assert values[("arb_residual_exposure", (("asset", "BTC"),))] == 0.001
    assert values[("arb_arbs_total", (("status", "complete"),))] == 1
    assert values[("arb_halted", ())] == 0
    assert ("arb_bus_delivered_total", (("subscriber", "monitor:BookUpdate"),)) in values
    assert ("arb_loop_lag_seconds_count", ()) in values
    assert answers["ok"][0] == 200 and json.loads(answers["ok"][2]) == {"status": "ok", "reasons": []}
    assert answers["degraded"][0] == 200
    assert json.loads(answers["degraded"][2]) == {"status": "degraded",
                                                  "reasons": ["alpha feed reconnecting"]}
    code, ctype, body = answers["halted"]
    assert (code, ctype) == (503, "application/json")
    assert json.loads(body) == {"status": "halted",
                                "reasons": ["halted: test halt", "alpha feed reconnecting"]}
    assert answers["missing"][0] == 404


def test_each_monitor_has_its_own_registry_and_port(tmp_path: Path) -> None:
    async def scenario() -> list[dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
        a = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)), metrics_port=0)
        b = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)), metrics_port=0)
        await a.start()
        await b.start()
        a.book("alpha", "BTC/USDT", 100.0, 101.0)
        out = [samples((await asyncio.to_thread(get, h.monitor.view.metrics_url + "/metrics"))[2])
               for h in (a, b)]
        await a.stop()
        await b.stop()
        return out

    first, second = run(scenario())
    key = ("arb_feed_books_total", (("symbol", "BTC/USDT"), ("venue", "alpha")))
    assert first[key] == 1 and key not in second


def test_metrics_server_is_off_unless_a_port_is_set(tmp_path: Path) -> None:
    async def scenario() -> MonitorHarness:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)))
        await h.start()
        await h.stop()
        return h

    h = run(scenario())
    assert h.monitor.server is None and h.monitor.view.metrics_url == ""


def test_pnl_gauges_are_the_runs_realized_unrealized_and_net_and_the_kill_switchs_daily_net() -> None:
    day = 86_400 * S
    midnight = (T0 // day + 1) * day

    def short(mark: float, ts: int) -> PositionUpdate:  # sold 0.01 BTC for 1.0 USDT, not bought back
        return PositionUpdate(position=Position(venue="alpha", asset="BTC", quote="USDT", amount=-0.01,
                                                cost=-1.0, mark=mark), ts_init=ts)

    async def scenario() -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], float]:
        h = MonitorHarness(settings_with())
        await h.start()
        h.bus.publish(result("o1", realized=1.5, ts=T0))
        h.bus.publish(short(101.0, T0))
        h.clock.advance_to(midnight + S)  # a new UTC day
        h.bus.publish(short(102.0, midnight + S))
        closed = Position(venue="beta", asset="BTC", quote="USDT", amount=0.0, cost=0.0, mark=100.0)
        h.bus.publish(PositionUpdate(position=closed, realized=0.4, ts_init=midnight + S))
        values = samples(generate_latest(h.ctx.metrics).decode())
        daily = h.monitor.kill.daily_net_value()[0]
        await h.stop()
        return values, daily

    values, daily = run(scenario())
    usdt = (("quote", "USDT"),)
    # realized: the result's 1.5 + 0.4 the ledger realized closing beta's BTC = 1.9
    assert values[("arb_realized_pnl", usdt)] == pytest.approx(1.9)
    # unrealized: the short at its newest mark, -0.01 * 102 - (-1.0) = -0.02; net 1.9 - 0.02 = 1.88
    assert values[("arb_unrealized_pnl", usdt)] == pytest.approx(-0.02)
    assert values[("arb_net_pnl", usdt)] == pytest.approx(1.88)
    # the new day: no result; the short moved -0.02 - (-0.01) = -0.01, beta realized 0.4: 0.39 USDT
    assert daily == pytest.approx(0.39)
    assert values[("arb_daily_net_pnl", (("currency", "USDT"),))] == daily
