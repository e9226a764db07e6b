"""Prometheus metrics of a run, built from the monitor's figures when scraped.

``MonitorCollector`` is registered on the run's own ``CollectorRegistry`` (never the global one,
so several engines -- or tests -- can live in one process). It reads plain counters at scrape
time, so the hot path pays nothing for metrics. Other plugins may register their own collectors
on the same registry (``ctx.metrics``), as the notifier does.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from arbitrage.bus import QueuedSubscription
from arbitrage.monitor.alerts import LEVELS

if t.TYPE_CHECKING:
    from arbitrage.monitor.plugin import Monitor


def _gauge(name: str, doc: str, labels: c.Sequence[str], rows: c.Iterable[tuple[c.Sequence[str], float]]
           ) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


def _counter(name: str, doc: str, labels: c.Sequence[str],
             rows: c.Iterable[tuple[c.Sequence[str], float]]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


class MonitorCollector(Collector):
    """Every ``arb_*`` metric of one monitor (see docs/monitoring.md for the list)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> c.Iterator[Metric]:
        m = self.monitor
        ctx = m.ctx
        now = ctx.clock.time_ns()
        run = ctx.settings.run
        yield _gauge("arb_info", "The run: id, source and strategy.", ("run_id", "source", "strategy"),
                     [((ctx.run_id, run.source, run.strategy), 1.0)])
        yield _gauge("arb_halted", "1 while the kill switch halts new trading.", (),
                     [((), float(bool(m.halted)))])
        yield _gauge("arb_alerts_active", "Alerts firing now, by level.", ("level",),
                     [((level,), float(sum(a.level == level for a in m.alerts.active.values())))
                      for level in LEVELS])
        yield _counter("arb_alerts", "Alerts raised (recoveries not counted), by level.", ("level",),
                       [((level,), float(m.alerts.fired[level])) for level in LEVELS])
        feeds = sorted(m.feeds.values(), key=lambda f: (f.venue, f.symbol))
        yield _counter("arb_feed_books", "Book updates received.", ("venue", "symbol"),
                       [((f.venue, f.symbol), float(f.count)) for f in feeds])
        yield _gauge("arb_feed_age_seconds", "Time since the newest book arrived.", ("venue", "symbol"),
                     [((f.venue, f.symbol), f.age_s(now)) for f in feeds])
        yield _gauge("arb_feed_updates_per_second", "Book updates per second (last second or so).",
                     ("venue", "symbol"), [((f.venue, f.symbol), f.rate) for f in feeds])
        yield _gauge("arb_feed_latency_seconds", "Venue timestamp to receipt of the newest book.",
                     ("venue", "symbol"), [((f.venue, f.symbol), f.latency_s) for f in feeds])
        yield _gauge("arb_feed_connected", "1 unless the venue's feed reported error, stale, "
                     "reconnecting or stopped.", ("venue",),
                     [((v.name,), float(v.status in ("", "connected"))) for v in m.venues.values()])
        yield self._histogram("arb_loop_lag_seconds", "How late the event loop woke a timer.",
                              {"": m.loop_lag})
        yield _gauge("arb_loop_lag_last_seconds", "The latest loop lag sample.", (), [((), m.loop_lag_s)])
        subs = ctx.bus.subscriptions()
        keys = [f"{s.name}:{s.event_type.__name__}" for s in subs]
        for field, doc in (("delivered", "Events handled"), ("errors", "Handler errors"),
                           ("dropped", "Events dropped or conflated away"),
                           ("overflow", "Events queued beyond maxsize (block policy)")):
            yield _counter(f"arb_bus_{field}", f"{doc}, per subscriber (name:EventType).", ("subscriber",),
                           [((k,), float(getattr(s.stats, field))) for k, s in zip(keys, subs, strict=True)])
        yield _gauge("arb_bus_queue_depth", "Events waiting in a queued subscriber.", ("subscriber",),
                     [((k,), float(s.depth)) for k, s in zip(keys, subs, strict=True)
                      if isinstance(s, QueuedSubscription)])
        yield self._histogram("arb_latency_seconds", "Latency of the trading path by stage: "
                              "book_to_opportunity, opportunity_to_ack (every leg acknowledged), "
                              "opportunity_to_result, collector_to_engine (books through Redis).", m.latency)
        yield _counter("arb_opportunities", "Opportunities detected.", (), [((), float(m.opportunities))])
        yield _counter("arb_opportunities_rejected", "Opportunities refused, by reason.", ("reason",),
                       [((r,), float(n)) for r, n in sorted(m.rejected.items())])
        yield _counter("arb_orders", "Orders submitted, by purpose.", ("purpose",),
                       [((p,), float(n)) for p, n in sorted(m.orders.items())])
        yield _counter("arb_arbs", "Arbitrages finished, by status.", ("status",),
                       [((s,), float(n)) for s, n in sorted(m.arbs.items())])
        yield _gauge("arb_realized_pnl", "Realized profit net of fees over the run (results plus what "
                     "reducing positions realized), per quote currency.",
                     ("quote",), [((q,), v) for q, v in sorted(m.pnl.items())])
        yield _gauge("arb_unrealized_pnl", "Open positions' value at their newest mark less their cost, "
                     "per quote currency.", ("quote",), [((q,), v) for q, v in sorted(m.unrealized.items())])
        yield _gauge("arb_net_pnl", "Realized plus unrealized profit over the run, per quote currency.",
                     ("quote",), [((q,), v) for q, v in sorted(m.net.items())])
        daily, _ = m.kill.daily_net_value()
        yield _gauge("arb_daily_net_pnl", "Net profit of the current UTC day in the risk currency: the "
                     "figure of the kill switch's daily_loss rule.", ("currency",),
                     [((m.kill.currency,), daily)])
        yield _gauge("arb_fees", "Fees paid over the run, per quote currency.", ("quote",),
                     [((q,), v) for q, v in sorted(m.fees_paid.items())])
        yield _gauge("arb_residual_exposure", "Unhedged position per asset over the run.", ("asset",),
                     [((a,), v) for a, v in sorted(m.kill.residual.items())])
        yield _gauge("arb_failed_arbs_streak", "Arbitrages in a row that failed.", (),
                     [((), float(m.kill.failed_streak))])

    @staticmethod
    def _histogram(name: str, doc: str, histograms: c.Mapping[str, t.Any]) -> HistogramMetricFamily:
        labels = ["stage"] if any(histograms) else []
        family = HistogramMetricFamily(name, doc, labels=labels)
        for stage, h in histograms.items():
            family.add_metric([stage] if labels else [], h.cumulative(), h.sum)
        return family
