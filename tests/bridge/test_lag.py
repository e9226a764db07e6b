"""The monitor's collector-to-engine lag: a bridged book's ``ts_init`` less its ``origin.ts_init``.

Books are published with chosen timestamps on a monitor wired as the engine wires it; the figures
it reports (the histogram's samples, its quantiles in the view and the summary, the Prometheus
histogram) are worked out by hand below.
"""

from __future__ import annotations

import typing as t

import pytest
from prometheus_client import generate_latest

from arbitrage.events import BookUpdate, Origin
from arbitrage.plugin import LatencyInfo
from tests.monitor.helpers import MS, T0, MonitorHarness, run, settings_with
from tests.monitor.test_metrics import samples

LAGS_NS = (7 * MS, 200 * MS, 3 * MS, -5 * MS, 40 * MS)
"""Our ``ts_init`` less the collector's: -5 ms is clock skew (the collector's clock ahead of ours)."""


def _bridged(ts_init: int, lag_ns: int, seq: int) -> BookUpdate:
    """A book as the feed hands it on: received at ``ts_init``, made ``lag_ns`` earlier by the collector.

    Its ``ts_event`` (the venue's time) is a second earlier still, so a lag taken from it would show.
    """
    return BookUpdate(venue="alpha", symbol="BTC/USDT", bids=((100.0, 1.0),), asks=((101.0, 1.0),),
                      ts_event=ts_init - lag_ns - 1_000 * MS, ts_init=ts_init,
                      origin=Origin(node="c1", run_id="collector-run", seq=seq, ts_init=ts_init - lag_ns))


def test_collector_to_engine_lag_is_taken_from_bridged_books_only() -> None:
    async def scenario() -> tuple[list[float], LatencyInfo, dict[str, t.Any], dict[t.Any, float]]:
        h = MonitorHarness(settings_with())
        await h.start()
        h.markets("alpha", "BTC/USDT")
        for i, lag in enumerate(LAGS_NS):
            h.clock.advance_to(T0 + (i + 1) * 1_000 * MS)
            h.bus.publish(_bridged(h.clock.time_ns(), lag, seq=i + 1), "alpha")
            h.book("alpha", "BTC/USDT", 100.0, 101.0, ts_event=h.clock.time_ns() - 900 * MS)  # local: no lag
        info = h.monitor.view.latency()["collector_to_engine"]
        recent = list(h.monitor.latency["collector_to_engine"].recent)
        summary = h.monitor.summary()
        values = samples(generate_latest(h.ctx.metrics).decode())
        await h.stop()
        return recent, info, summary, values

    recent, info, summary, values = run(scenario())
    # (ts_init - origin.ts_init) / 1e9 per bridged book, in arrival order; the skewed one counts as 0
    assert recent == [0.007, 0.2, 0.003, 0.0, 0.04]
    # sorted: 0, 0.003, 0.007, 0.04, 0.2; p50 = the int(0.5 * 5) = 2nd, p99 = the 4th (0-based)
    assert (info.count, info.p50_ms, info.p99_ms) == (5, pytest.approx(7.0), pytest.approx(200.0))
    assert summary["collector_to_engine_p50_ms"] == 7.0
    stage = ("stage", "collector_to_engine")
    assert values[("arb_latency_seconds_count", (stage,))] == 5
    assert values[("arb_latency_seconds_sum", (stage,))] == pytest.approx(0.25)
    buckets = {le: values[("arb_latency_seconds_bucket", (("le", le), stage))]
               for le in ("5e-05", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "+Inf")}
    assert buckets == {"5e-05": 1, "0.0025": 1, "0.005": 2, "0.01": 3, "0.025": 3, "0.05": 4, "0.1": 4,
                       "0.25": 5, "+Inf": 5}
    # the local books (no origin) are not in it; the other stages saw nothing
    for other in ("book_to_opportunity", "opportunity_to_ack", "opportunity_to_result"):
        assert values[("arb_latency_seconds_count", (("stage", other),))] == 0
    assert values[("arb_bus_errors_total", (("subscriber", "monitor:BookUpdate"),))] == 0
