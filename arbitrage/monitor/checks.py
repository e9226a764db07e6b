"""The monitor's periodic checks: measured figures -> alert conditions, plus the loop-lag probe.

It exists apart from the plugin because turning figures into alerts is its own rule set, run
every ``monitor.check_interval_s`` (run clock), while the plugin's inline handlers only count.
``PeriodicChecks`` is a mixin of ``Monitor``, whose figures it reads and whose marks it updates.

Alert keys raised here: ``feed.stale:<venue>``, ``feed.status:<venue>``, ``loop.lag``,
``subscriber.errors:<name:Event>``, ``subscriber.drops:<name:Event>``,
``subscriber.stuck:<name:Event>``, ``queue.full:<name:Event>``, ``heartbeat:<source>``.
"""

from __future__ import annotations

import asyncio
import collections
import time
import typing as t

from arbitrage.bus import QueuedSubscription
from arbitrage.events import Heartbeat
from arbitrage.monitor.alerts import AlertBook, Condition
from arbitrage.monitor.figures import Feed, Histogram, SubscriberMark, VenueState
from arbitrage.monitor.killswitch import KillSwitch
from arbitrage.plugin import Context
from arbitrage.settings import MonitorSettings

__all__ = ["PeriodicChecks"]

_S = 1_000_000_000


class PeriodicChecks:
    """The check loop, the lag probe and every alert rule; mixed into ``Monitor``."""

    name: t.ClassVar[str]
    lag_probe_s: t.ClassVar[float]
    ctx: Context
    settings: MonitorSettings
    alerts: AlertBook
    kill: KillSwitch
    feeds: dict[tuple[str, str], Feed]
    venues: dict[str, VenueState]
    stale: set[tuple[str, str]]
    loop_lag: Histogram
    loop_lag_s: float
    heartbeats: dict[str, int]
    _lag_max: float
    _lag_peak: float
    _lag_ns: int
    _heartbeat_ns: int
    _marks: dict[str, SubscriberMark]

    if t.TYPE_CHECKING:
        def _check_halt_file(self) -> None: ...

    async def _check_loop(self) -> None:
        clock, interval = self.ctx.clock, self.settings.check_interval_s
        while True:
            await clock.sleep(interval)
            try:
                self.check()
            except Exception:
                self.ctx.log.opt(exception=True).error("monitor check failed")

    async def _lag_probe(self) -> None:
        period = self.lag_probe_s
        while True:
            start = time.monotonic()
            await asyncio.sleep(period)
            self.record_loop_lag(time.monotonic() - start - period)

    def record_loop_lag(self, seconds: float) -> None:
        """Count one loop-lag sample (how late a timer woke, in seconds)."""
        seconds = max(0.0, seconds)
        self.loop_lag_s = seconds
        self.loop_lag.observe(seconds)
        self._lag_max = max(self._lag_max, seconds)

    def check(self) -> None:
        """Evaluate every alert rule now, look at the halt file, publish a heartbeat when due."""
        now = self.ctx.clock.time_ns()
        self._check_halt_file()
        self.kill.roll(now)
        conditions: dict[str, Condition] = {}
        self._check_feeds(now, conditions)
        self._check_loop_lag(now, conditions)
        self._check_subscribers(now, conditions)
        self._check_heartbeats(now, conditions)
        self.alerts.sync(conditions)
        if now - self._heartbeat_ns >= self.settings.heartbeat_s * _S:
            self._heartbeat_ns = now
            self.ctx.bus.publish(Heartbeat(source=self.name, ts_init=now))

    def _check_feeds(self, now: int, out: dict[str, Condition]) -> None:
        by_venue: dict[str, list[Feed]] = collections.defaultdict(list)
        self.stale = set()
        for feed in self.feeds.values():
            feed.measure_rate(now)
            by_venue[feed.venue].append(feed)
        for name, feeds in sorted(by_venue.items()):
            venue = self.venues.get(name)
            if venue is not None and venue.status == "stopped":
                continue
            limit = self.settings.feed_stale_s or (venue.staleness_ms / 1e3 if venue is not None else 0.0)
            stale = sorted((f for f in feeds if limit and f.age_s(now) > limit), key=lambda f: f.symbol)
            if stale:
                self.stale.update((name, f.symbol) for f in stale)
                oldest = max(f.age_s(now) for f in stale)
                out[f"feed.stale:{name}"] = Condition(
                    "warning", f"{name}: no book for {oldest:.1f} s on {', '.join(f.symbol for f in stale)} "
                               f"(limit {limit:g} s)")
        for venue in self.venues.values():
            if venue.status in ("error", "reconnecting", "stale"):
                detail = f": {venue.detail}" if venue.detail else ""
                out[f"feed.status:{venue.name}"] = Condition(
                    "error" if venue.status == "error" else "warning",
                    f"{venue.name} feed {venue.status}{detail}")

    def _check_loop_lag(self, now: int, out: dict[str, Condition]) -> None:
        lag, self._lag_max = self._lag_max, 0.0
        limit_s = self.settings.loop_lag_ms / 1e3
        if lag > limit_s:
            self._lag_ns = now
            self._lag_peak = lag
        if self._lag_ns and now - self._lag_ns < self.settings.error_quiet_s * _S:
            out["loop.lag"] = Condition("warning", f"event loop lag {self._lag_peak * 1e3:.0f} ms "
                                                   f"(limit {self.settings.loop_lag_ms:g} ms)")

    def _check_subscribers(self, now: int, out: dict[str, Condition]) -> None:
        quiet = self.settings.error_quiet_s * _S
        stuck_after = 3 * self.settings.heartbeat_s * _S
        for sub in self.ctx.bus.subscriptions():
            key = f"{sub.name}:{sub.event_type.__name__}"
            mark = self._marks.get(key)
            if mark is None:
                mark = self._marks[key] = SubscriberMark(now)
            stats = sub.stats
            if stats.errors > mark.errors:
                mark.last_error_ns = now
            if mark.last_error_ns and now - mark.last_error_ns < quiet:
                out[f"subscriber.errors:{key}"] = Condition(
                    "error", f"subscriber {key} is failing: {stats.errors} errors so far")
            queued = isinstance(sub, QueuedSubscription)
            if queued and sub.policy == "drop_oldest" and stats.dropped > mark.dropped:
                mark.last_drop_ns = now
            if mark.last_drop_ns and now - mark.last_drop_ns < quiet:
                out[f"subscriber.drops:{key}"] = Condition(
                    "warning", f"subscriber {key} is dropping events (queue full): {stats.dropped} so far")
            if queued:
                self._check_queue(t.cast(QueuedSubscription, sub), key, mark, now, stuck_after, out)
            mark.delivered, mark.errors, mark.dropped = stats.delivered, stats.errors, stats.dropped

    def _check_queue(self, sub: QueuedSubscription, key: str, mark: SubscriberMark, now: int,
                     stuck_after: float, out: dict[str, Condition]) -> None:
        depth = sub.depth
        if sub.policy != "conflate" and depth >= self.settings.queue_full * sub.maxsize:
            out[f"queue.full:{key}"] = Condition("warning",
                                                 f"queue of {key} holds {depth} of {sub.maxsize} events")
        if depth == 0 or sub.stats.delivered + sub.stats.errors != mark.delivered + mark.errors:
            mark.progress_ns = now
        elif now - mark.progress_ns > stuck_after:
            out[f"subscriber.stuck:{key}"] = Condition(
                "error", f"subscriber {key} handled nothing for {(now - mark.progress_ns) / _S:.0f} s "
                         f"with {depth} events waiting")

    def _check_heartbeats(self, now: int, out: dict[str, Condition]) -> None:
        silent_after = 3 * self.settings.heartbeat_s * _S
        for source, ts in sorted(self.heartbeats.items()):
            if source != self.name and now - ts > silent_after:
                out[f"heartbeat:{source}"] = Condition(
                    "warning", f"{source} silent for {(now - ts) / _S:.0f} s (no heartbeat)")
