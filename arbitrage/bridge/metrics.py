"""Prometheus metrics of the Redis bridge, read from the plugins' counters when scraped.

Registered on the run's registry (``ctx.metrics``), so ``/metrics`` of the monitor serves them.
Mirror: ``arb_redis_connected``, ``arb_redis_outages``, ``arb_redis_written``,
``arb_redis_dropped{kind,reason}`` (market data: ``buffer`` full, or ``down``: lost with a failed
batch; trading events: ``overflow``), ``arb_redis_buffer_depth{kind}``,
``arb_redis_mirror_lag_seconds`` (age of the oldest event waiting). Feed (engine):
``arb_redis_feed_connected``, ``arb_redis_feed_outages``, ``arb_redis_inbound{venue}``,
``arb_redis_inbound_refused{reason,type}``, ``arb_redis_inbound_conflated{venue}``,
``arb_redis_inbound_duplicates``, ``arb_redis_inbound_lag_seconds{venue}`` (collector's ``ts_init``
to ours, newest book) and ``arb_redis_feed_stale{venue}``.
"""

from __future__ import annotations

import collections.abc as c
import time
import typing as t

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if t.TYPE_CHECKING:
    from arbitrage.bridge.feed import RedisFeed
    from arbitrage.bridge.mirror import RedisBridge


def _family(kind: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str, doc: str,
            labels: c.Sequence[str], rows: c.Iterable[tuple[c.Sequence[str], float]]) -> Metric:
    family = kind(name, doc, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


class MirrorCollector(Collector):
    """The mirror's figures."""

    def __init__(self, mirror: RedisBridge) -> None:
        self.mirror = mirror

    def collect(self) -> c.Iterator[Metric]:
        m = self.mirror
        box = m.outbox
        link = m.link
        yield _family(GaugeMetricFamily, "arb_redis_connected", "1 while the mirror's Redis connection "
                      "works.", (), [((), float(link is not None and link.up))])
        yield _family(CounterMetricFamily, "arb_redis_outages", "Times the mirror's Redis connection was "
                      "lost.", (), [((), float(link.outages if link is not None else 0))])
        yield _family(CounterMetricFamily, "arb_redis_written", "Events written to Redis.", (),
                      [((), float(m.written))])
        yield _family(CounterMetricFamily, "arb_redis_dropped", "Mirrored events dropped: market data when "
                      "the buffer was full or its batch failed, trading events past redis.trading_buffer.",
                      ("kind", "reason"), [(("market", "buffer"), float(box.dropped_full)),
                                           (("market", "down"), float(box.dropped_down)),
                                           (("trading", "overflow"), float(box.overflow))])
        sending = m.sending  # the batch being written waits too, until Redis answers
        lossy = sum(e.lossy for e in sending)
        yield _family(GaugeMetricFamily, "arb_redis_buffer_depth", "Events waiting to be written.", ("kind",),
                      [(("market",), float(len(box.lossy) + lossy)),
                       (("trading",), float(len(box.kept) + len(sending) - lossy))])
        heads = [e.queued_ns for e in sending]
        if (queued := box.oldest_ns()) is not None:
            heads.append(queued)
        oldest = min(heads) if heads else None
        lag = 0.0 if oldest is None else max(0.0, (time.monotonic_ns() - oldest) / 1e9)
        yield _family(GaugeMetricFamily, "arb_redis_mirror_lag_seconds", "Age of the oldest event waiting "
                      "to be written.", (), [((), lag)])


class FeedCollector(Collector):
    """The engine feed's figures."""

    def __init__(self, feed: RedisFeed) -> None:
        self.feed = feed

    def collect(self) -> c.Iterator[Metric]:
        f = self.feed
        link = f.link
        yield _family(GaugeMetricFamily, "arb_redis_feed_connected", "1 while the feed's Redis connection "
                      "works.", (), [((), float(link is not None and link.up))])
        yield _family(CounterMetricFamily, "arb_redis_feed_outages", "Times the feed's Redis connection was "
                      "lost.", (), [((), float(link.outages if link is not None else 0))])
        venues = sorted(f.venues.items())
        yield _family(CounterMetricFamily, "arb_redis_inbound", "Events taken from the collectors' feeds.",
                      ("venue",), [((v,), float(s.events)) for v, s in venues])
        yield _family(CounterMetricFamily, "arb_redis_inbound_refused", "Feed entries refused: type not "
                      "allowed, invalid, looped back, wrong venue.", ("reason", "type"),
                      [(k, float(n)) for k, n in sorted(f.refused.items())])
        yield _family(CounterMetricFamily, "arb_redis_inbound_conflated", "Books skipped for a newer one of "
                      "the same symbol while behind.", ("venue",),
                      [((v,), float(s.conflated)) for v, s in venues])
        yield _family(CounterMetricFamily, "arb_redis_inbound_duplicates", "Feed entries seen before "
                      "(a collector's resend).", (), [((), float(f.duplicates))])
        yield _family(GaugeMetricFamily, "arb_redis_inbound_lag_seconds", "Collector's ts_init to ours, "
                      "newest book.", ("venue",), [((v,), s.lag_s) for v, s in venues])
        yield _family(GaugeMetricFamily, "arb_redis_feed_stale", "1 while the venue's newest book from its "
                      "collector is older than its staleness limit.", ("venue",),
                      [((v,), float(s.stale)) for v, s in venues])
