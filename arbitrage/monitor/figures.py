"""What the monitor measures: feeds, latency histograms, and the read-only view other plugins get.

Everything here is plain Python counters updated by the monitor's handlers; nothing touches
prometheus-client on the hot path. The metrics collector and the dashboard read these at their
own pace.
"""

from __future__ import annotations

import bisect
import collections
import typing as t

from arbitrage.events import BookUpdate

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)
"""Upper bounds of the latency histogram buckets, in seconds (one more bucket holds the rest)."""


class Histogram:
    """A latency histogram: cumulative buckets for Prometheus, recent samples for quantiles."""

    __slots__ = ("buckets", "count", "counts", "recent", "sum")

    def __init__(self, buckets: t.Sequence[float] = LATENCY_BUCKETS_S, recent: int = 2048) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.count = 0
        self.sum = 0.0
        self.recent: collections.deque[float] = collections.deque(maxlen=recent)

    def observe(self, seconds: float) -> None:
        """Count one sample (negative values, from clock skew, count as 0)."""
        if seconds < 0.0:
            seconds = 0.0
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.count += 1
        self.sum += seconds
        self.recent.append(seconds)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the recent samples, or None before the first."""
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs in Prometheus order, ``+Inf`` last."""
        out: list[tuple[str, int]] = []
        total = 0
        for bound, n in zip((*map(repr, self.buckets), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class Feed:
    """The latest book of one (venue, symbol) and how often it updates."""

    __slots__ = ("_mark_count", "_mark_ns", "count", "last", "rate", "symbol", "venue")

    def __init__(self, book: BookUpdate) -> None:
        self.venue = book.venue
        self.symbol = book.symbol
        self.last = book
        """The newest book (``ts_init``: when we got it, ``ts_event``: when the venue made it)."""
        self.count = 0
        """Books received."""
        self.rate = 0.0
        """Books per second over the last measured window (about a second)."""
        self._mark_count = 0
        self._mark_ns = book.ts_init

    def measure_rate(self, now_ns: int, window_ns: int = 1_000_000_000) -> None:
        """Recompute ``rate`` once ``window_ns`` has passed since the last measurement."""
        elapsed = now_ns - self._mark_ns
        if elapsed >= window_ns:
            self.rate = (self.count - self._mark_count) / (elapsed / 1e9)
            self._mark_count = self.count
            self._mark_ns = now_ns

    def age_s(self, now_ns: int) -> float:
        """Seconds since the newest book arrived."""
        return max(0.0, (now_ns - self.last.ts_init) / 1e9)

    @property
    def latency_s(self) -> float:
        """Venue time to our time of the newest book (network and venue delay, plus clock skew)."""
        return (self.last.ts_init - self.last.ts_event) / 1e9


class VenueState:
    """What the sources said about one venue: feed status and staleness limit."""

    __slots__ = ("detail", "name", "staleness_ms", "status", "status_ns")

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = ""
        """Last ``FeedStatus.status`` ('' until one arrives)."""
        self.detail = ""
        self.status_ns = 0
        self.staleness_ms = 0.0
        """From ``MarketsLoaded`` (0 = unknown)."""


class SubscriberMark:
    """A subscriber's counters at the previous check, to see what changed since."""

    __slots__ = ("delivered", "dropped", "errors", "last_drop_ns", "last_error_ns", "progress_ns")

    def __init__(self, now_ns: int) -> None:
        self.delivered = 0
        self.errors = 0
        self.dropped = 0
        self.last_error_ns = 0
        self.last_drop_ns = 0
        self.progress_ns = now_ns
        """When the subscriber last handled something (or had nothing to handle)."""
