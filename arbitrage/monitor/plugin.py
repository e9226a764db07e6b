"""The ``monitor`` plugin: the system watching itself.

It exists as the one place that owns the monitor's figures and their lifecycle: setup, the
inline handlers that count, the kill switch's halt and resume, and the summary. The periodic
checks that turn the figures into alerts are in ``monitor.checks``.

Measures (plain counters, updated by cheap inline handlers; see ``figures``):

* per (venue, symbol): books received, update rate, age of the newest book, venue-to-us latency;
  per venue: the last ``FeedStatus``;
* event-loop lag (a wall-clock probe task), bus queue depths, drops and handler errors per
  subscriber (``bus.subscriptions()``, the figures of ``bus.stats()``);
* latency histograms: newest book received -> opportunity detected, opportunity -> every leg
  acknowledged by its venue (first ``OrderUpdate``), opportunity -> ``ArbResult``, and for books
  that came from a collector through Redis (``origin`` set) the collector's receipt -> ours;
* counts, realized, unrealized and net PnL and fees per quote currency (the run's figures, as
  ``arbitrage.tally.Tally`` counts them: results plus the positions ledger), residual exposure per
  asset.

Every ``monitor.check_interval_s`` (run clock) ``check`` (``monitor.checks``) turns them into
alerts (``AlertBook``: published once when a condition starts, a recovery when it ends), looks at
the halt file and publishes a ``Heartbeat``. The kill switch (``KillSwitch``) is evaluated inline on every
``ArbResult``, so a halt is in force before the next opportunity. A halt publishes
``TradingHalted`` (the trader refuses opportunities and cancels open orders), a critical alert
keyed ``kill_switch``, and writes the halt file; ``TradingResumed`` and the alert's recovery
follow when the file is removed (``arb resume``).

The monitor provides ``ctx.views.monitor``, a ``MonitorView`` (the ``MonitorReadings`` service of
``arbitrage.plugin``), and registers its collector on the run's registry (``ctx.metrics``, which
other plugins add theirs to). With ``monitor.metrics_port`` (``--metrics-port``) set, that
registry is served on ``/metrics`` and the health on ``/health``, on ``monitor.metrics_host``.

Alert keys: ``feed.stale:<venue>``, ``feed.status:<venue>``, ``loop.lag``,
``subscriber.errors:<name:Event>``, ``subscriber.drops:<name:Event>``, ``subscriber.stuck:<name:Event>``,
``queue.full:<name:Event>``, ``heartbeat:<source>``, ``kill_switch``.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc as c
import contextlib
import os
import typing as t

from msgspec import UNSET

from arbitrage.events import (
    HALT_ALERT_KEY,
    ArbResult,
    BookUpdate,
    FeedStatus,
    Heartbeat,
    MarketsLoaded,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
    PositionUpdate,
    TradingHalted,
    TradingResumed,
)
from arbitrage.monitor.alerts import AlertBook
from arbitrage.monitor.checks import PeriodicChecks
from arbitrage.monitor.figures import Feed, Histogram, SubscriberMark, VenueState
from arbitrage.monitor.killswitch import KillSwitch, read_halt, write_halt
from arbitrage.monitor.metrics import MonitorCollector
from arbitrage.monitor.server import MetricsServer
from arbitrage.monitor.view import MonitorView
from arbitrage.plugin import Context, Plugin
from arbitrage.pnl import PnlFigures
from arbitrage.valuation import Valuer

STAGES = ("book_to_opportunity", "opportunity_to_ack", "opportunity_to_result", "collector_to_engine")
"""Latency stages; ``collector_to_engine`` is measured only on books that came through the Redis
bridge (``BookUpdate.origin``: the collector's ``ts_init`` to ours)."""
_PENDING_MAX = 10_000
_S = 1_000_000_000


class Monitor(PeriodicChecks, Plugin):
    """Heartbeats, feeds, loop lag, queues, latency, PnL and exposure -> alerts, kill switch, metrics."""

    name = "monitor"
    kind = "monitor"
    description = "Feeds, loop lag, queues, latency, PnL, exposure: alerts, kill switch, /metrics, /health."

    lag_probe_s: t.ClassVar[float] = 0.05
    """Wall-clock period of the event-loop lag probe."""

    def __init__(self, metrics_port: int | None = None) -> None:
        """
        :param metrics_port: serve ``/metrics`` and ``/health`` on this port (0 = any free port)
            instead of ``monitor.metrics_port`` (where 0 means off). For tests and embedding.
        """
        self._port_override = metrics_port
        self.server: MetricsServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def setup(self, ctx: Context) -> None:
        """Create the figures and the view, register the collector; subscribe inline to what is measured."""
        super().setup(ctx)
        self.settings = ctx.settings.monitor
        self.alerts = AlertBook(ctx.bus.publish, ctx.clock, ctx.log)
        self.kill = KillSwitch(self.settings, Valuer(ctx.books.by_symbol, ctx.settings.risk.currency).value,
                               ctx.settings.risk.currency)
        self.feeds: dict[tuple[str, str], Feed] = {}
        self.venues: dict[str, VenueState] = {}
        self.fees: dict[tuple[str, str], float] = {}
        """(venue, symbol) -> taker fee, from ``MarketsLoaded``."""
        self.stale: set[tuple[str, str]] = set()
        """(venue, symbol) feeds found stale by the last check."""
        self.latency = {stage: Histogram() for stage in STAGES}
        self.loop_lag = Histogram()
        self.loop_lag_s = 0.0
        self.heartbeats: dict[str, int] = {}
        self.opportunities = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.orders: collections.Counter[str] = collections.Counter()
        self.arbs: collections.Counter[str] = collections.Counter()
        self.figures = PnlFigures()
        """Realized, unrealized and net PnL from the bus (the same rule as the engine's tally)."""
        """(venue, asset, quote) -> its newest update."""
        self.fees_paid: dict[str, float] = collections.defaultdict(float)
        self.halted = ""
        """Why trading is halted ('' while it is not)."""
        self.halt_rule = ""
        self._halt_file_seen = False
        self._lag_max = 0.0
        self._lag_peak = 0.0
        self._lag_ns = 0
        self._heartbeat_ns = 0
        self._pending: dict[str, list[int]] = {}
        """Opportunity id -> [ts_init, legs not yet acknowledged]."""
        self._legs: dict[str, str] = {}
        """Client order id of a leg not yet acknowledged -> opportunity id."""
        self._marks: dict[str, SubscriberMark] = {}
        ctx.metrics.register(MonitorCollector(self))
        self.view = MonitorView(self)
        ctx.views.monitor = self.view
        bus = ctx.bus
        for event_type, handler in (
            (BookUpdate, self._book_handler()), (MarketsLoaded, self._on_markets),
            (FeedStatus, self._on_feed_status),
            (Heartbeat, self._on_heartbeat), (Opportunity, self._on_opportunity),
            (OpportunityRejected, self._on_rejected), (OrderSubmitted, self._on_order_submitted),
            (OrderUpdate, self._on_order_update), (ArbResult, self._on_result),
            (PositionUpdate, self._on_position),
        ):
            bus.subscribe(event_type, handler, name=self.name)

    async def start(self) -> None:
        """Honour an existing halt file, start the check loop and lag probe, serve metrics if asked.

        :raises OSError: if the metrics port cannot be bound.
        """
        self._check_halt_file()
        port = self._port_override if self._port_override is not None else self.settings.metrics_port or None
        if port is not None:
            self.server = MetricsServer(self.ctx.metrics, self.view.health, host=self.settings.metrics_host,
                                        port=port)
            await self.server.start()
            self.ctx.log.info("metrics on {}/metrics, health on {}/health", self.server.url, self.server.url)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._check_loop(), name="monitor:check"),
                       loop.create_task(self._lag_probe(), name="monitor:lag")]

    async def stop(self) -> None:
        """Stop the tasks and the HTTP server."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.server is not None:
            await self.server.stop()

    def summary(self) -> dict[str, t.Any]:
        """Alerts raised by level, halt state, latency medians and the worst loop lag seen."""
        out: dict[str, t.Any] = {"alerts": dict(self.alerts.fired), "halted": self.halted}
        for stage, h in self.latency.items():
            if h.count:
                out[f"{stage}_p50_ms"] = round((h.quantile(0.5) or 0.0) * 1e3, 3)
        if self.loop_lag.count:
            out["loop_lag_max_ms"] = round(max(self.loop_lag.recent) * 1e3, 1)
        return out

    # -- PnL -------------------------------------------------------------------------------------

    @property
    def pnl(self) -> dict[str, float]:
        """Realized profit per quote currency (``PnlFigures``)."""
        return self.figures.pnl

    @property
    def unrealized(self) -> dict[str, float]:
        """Unrealized profit of the open positions per quote currency."""
        return self.figures.unrealized

    @property
    def net(self) -> dict[str, float]:
        """Realized plus unrealized profit per quote currency."""
        return self.figures.net

    # -- kill switch -----------------------------------------------------------------------------

    def halt(self, rule: str, reason: str, *, write_file: bool = True) -> bool:
        """Halt new trading: publish ``TradingHalted``, a critical alert, and write the halt file.

        :param write_file: also create ``monitor.halt_file`` so the halt outlives this run.
        :returns: False if trading was already halted (nothing is published again).
        """
        if self.halted:
            return False
        self.halted, self.halt_rule = reason, rule
        self.ctx.bus.publish(TradingHalted(reason=reason, rule=rule, ts_init=self.ctx.clock.time_ns()))
        self.alerts.fire(HALT_ALERT_KEY, "critical", f"trading halted ({rule}): {reason}")
        path = self.settings.halt_file
        if write_file and path:
            try:
                write_halt(path, f"{rule}: {reason}")
            except OSError as exc:
                self.ctx.log.error("could not write the halt file {}: {}", path, exc)
        return True

    def resume(self, reason: str = "resumed") -> bool:
        """Lift a halt: remove the halt file, publish ``TradingResumed`` and the alert's recovery.

        :returns: False if trading was not halted.
        """
        path = self.settings.halt_file
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if not self.halted:
            return False
        self.halted = self.halt_rule = ""
        self._halt_file_seen = False
        self.kill.reset_streak()
        self.ctx.bus.publish(TradingResumed(reason=reason, ts_init=self.ctx.clock.time_ns()))
        self.alerts.clear(HALT_ALERT_KEY, f"trading resumed: {reason}")
        return True

    def _check_halt_file(self) -> None:
        path = self.settings.halt_file
        if not path:
            return
        if os.path.exists(path):  # one stat per check: cheap enough for the loop
            if not self.halted:
                self.halt("halt_file", read_halt(path) or "halt file present", write_file=False)
            self._halt_file_seen = True
        elif self.halted and self._halt_file_seen:
            self.resume("halt file removed (arb resume)")

    # -- inline handlers -------------------------------------------------------------------------

    def _book_handler(self) -> c.Callable[[BookUpdate], None]:
        """The per-book handler: a closure over the feed table (two dict/attribute stores per book)."""
        feeds = self.feeds
        get = feeds.get
        remote = self.latency["collector_to_engine"].observe
        unset = UNSET

        def on_book(book: BookUpdate) -> None:
            feed = get((book.venue, book.symbol))
            if feed is None:
                feed = feeds[(book.venue, book.symbol)] = Feed(book)
            feed.last = book
            feed.count += 1
            origin = book.origin
            if origin is not unset:  # came from a collector through Redis
                remote((book.ts_init - origin.ts_init) / _S)

        return on_book

    def _on_markets(self, event: MarketsLoaded) -> None:
        venue = self._venue(event.venue)
        venue.staleness_ms = event.staleness_ms
        for market in event.markets:
            self.fees[(event.venue, market.symbol)] = market.taker_fee

    def _on_feed_status(self, event: FeedStatus) -> None:
        venue = self._venue(event.venue)
        venue.status, venue.detail, venue.status_ns = event.status, event.detail, event.ts_init

    def _venue(self, name: str) -> VenueState:
        venue = self.venues.get(name)
        if venue is None:
            venue = self.venues[name] = VenueState(name)
        return venue

    def _on_heartbeat(self, event: Heartbeat) -> None:
        self.heartbeats[event.source] = event.ts_init

    def _on_opportunity(self, opp: Opportunity) -> None:
        self.opportunities += 1
        if opp.book_ts:  # from receipt of the newest book used (still the feed's latest) to detection
            newest = max(opp.book_ts)
            for leg, ts in zip(opp.legs, opp.book_ts, strict=False):
                feed = self.feeds.get((leg.venue, leg.symbol)) if ts == newest else None
                if feed is not None and feed.last.ts_event == ts:
                    self.latency["book_to_opportunity"].observe((opp.ts_init - feed.last.ts_init) / _S)
                    break
        if len(self._pending) >= _PENDING_MAX:
            self._pending.pop(next(iter(self._pending)))
        self._pending[opp.id] = [opp.ts_init, 0]

    def _on_rejected(self, event: OpportunityRejected) -> None:
        self.rejected[event.reason] += 1
        self._pending.pop(event.opportunity_id, None)

    def _on_order_submitted(self, event: OrderSubmitted) -> None:
        self.orders[event.purpose] += 1
        pending = self._pending.get(event.opportunity_id)
        if event.purpose == "leg" and pending is not None:
            pending[1] += 1
            if len(self._legs) >= _PENDING_MAX:
                self._legs.pop(next(iter(self._legs)))
            self._legs[event.client_order_id] = event.opportunity_id

    def _on_order_update(self, event: OrderUpdate) -> None:
        opportunity_id = self._legs.pop(event.client_order_id, None)
        pending = self._pending.get(opportunity_id) if opportunity_id is not None else None
        if pending is not None:
            pending[1] -= 1
            if pending[1] == 0:
                self.latency["opportunity_to_ack"].observe((event.ts_init - pending[0]) / _S)

    def _on_result(self, result: ArbResult) -> None:
        self.arbs[result.status] += 1
        self.figures.add_result(result)
        self.fees_paid[result.quote] += result.fees
        pending = self._pending.pop(result.opportunity_id, None)
        if pending is not None:
            self.latency["opportunity_to_result"].observe((result.ts_init - pending[0]) / _S)
        trip = self.kill.on_result(result, self.ctx.clock.time_ns())
        if trip is not None:
            self.halt(trip.rule, trip.reason)

    def _on_position(self, update: PositionUpdate) -> None:
        self.figures.add_position(update)
        trip = self.kill.on_position(update, self.ctx.clock.time_ns())
        if trip is not None:
            self.halt(trip.rule, trip.reason)
