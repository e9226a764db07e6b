"""The ``notifier`` plugin: tells the trader, through Apprise, what they asked to hear about.

URLs come from ``[notify] urls``, ``ARB_NOTIFY_URLS`` (comma or space separated), ``--notify
URL`` and an Apprise config file (``notify.config``); with none the plugin subscribes to nothing.
What is sent (``[notify]``): alerts at or above ``alert_level`` and their recoveries; kill-switch
halts and resumes (``halt``; the ``kill_switch`` alert is then not sent twice); arbitrage results
one by one or as a summary every ``batch_minutes`` (``arbs``); run started and stopped
(``lifecycle``); the day's counts and PnL when the UTC day changes (``daily_summary``). Every PnL
figure says realized, unrealized and net: a batch's or a day's count what reducing positions
realized in it and how far the open positions' marks moved (``PositionUpdate``), so consecutive
batches add up to the run's figures and a day's net is the kill switch's daily net.

Nothing here can slow trading down:

1. events reach the notifier through queued bus subscribers (``drop_oldest``, 1000 each), so a
   publisher only appends to a deque;
2. a handler formats the message and passes the ``Gate`` (deduplication, throttle) -- no I/O;
3. every channel has its own outbox (``outbox_size``, oldest dropped) and sender task, which
   runs the blocking Apprise call in the notifier's own thread pool (one thread per channel, not
   the loop's default executor that storage uses). A dead or hanging channel delays only itself.

A failed send is logged with the channel's redacted label and counted (``summary``, and
``arb_notifications_total{result="failed"}`` on the run's registry, ``ctx.metrics``, which the
monitor serves). The stop message reads the run's counts from ``ctx.tally``. At stop the
outboxes get ``stop_timeout_s`` (wall time) to empty; what is left is counted as not sent.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc as c
import contextlib
import datetime as dt
import os
import typing as t
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from arbitrage.events import (
    HALT_ALERT_KEY,
    Alert,
    ArbResult,
    Heartbeat,
    PositionUpdate,
    TradingHalted,
    TradingResumed,
)
from arbitrage.notify.channels import Channel, configured_urls, load_channels, preload_apprise
from arbitrage.notify.messages import (
    Gate,
    Message,
    ResultTally,
    alert_message,
    arb_message,
    batch_message,
    daily_message,
    halt_message,
    level_passes,
    pnl_text,
)
from arbitrage.plugin import Context, Plugin
from arbitrage.redact import redact_text

_LEVELS = {"info": 0, "warning": 1, "error": 2, "critical": 3}
_S = 1_000_000_000


def _utc_day(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC).date().isoformat()


class _Lane:
    """One channel's outbox and sender task."""

    def __init__(self, channel: Channel, size: int) -> None:
        self.channel = channel
        self.queue: collections.deque[tuple[str, str, str]] = collections.deque()
        self.size = size
        self.wake = asyncio.Event()
        self.busy = False
        self.dropped = 0
        self.task: asyncio.Task[None] | None = None

    def put(self, item: tuple[str, str, str]) -> None:
        if len(self.queue) >= self.size:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(item)
        self.wake.set()


class Notifier(Plugin):
    """Apprise notifications: alerts, halts, arbitrage results, start/stop, daily summary."""

    name = "notifier"
    kind = "notifier"
    description = "Apprise notifications: alerts, halts, arbitrage results, start/stop, daily summary."

    stop_timeout_s: t.ClassVar[float] = 5.0
    """Wall time ``stop`` gives the outboxes to empty."""
    outbox_size: t.ClassVar[int] = 100
    """Messages waiting per channel before the oldest is dropped."""
    tick_s: t.ClassVar[float] = 1.0
    """Run-clock period of the batch / daily-summary / heartbeat timer."""

    def __init__(self, environ: c.Mapping[str, str] | None = None) -> None:
        """
        :param environ: where ``ARB_NOTIFY_URLS`` is read (default ``os.environ``).
        """
        self._environ = environ
        self.enabled = False
        self.channels: list[Channel] = []
        self.lanes: list[_Lane] = []
        self._pool: ThreadPoolExecutor | None = None
        self._timer: asyncio.Task[None] | None = None
        self._early: list[tuple[str, str, str]] = []
        """Messages posted before the channels exist (e.g. a halt found by the monitor at start)."""

    def setup(self, ctx: Context) -> None:
        """Collect the URLs; subscribe (queued) to what ``[notify]`` asks for, or to nothing without URLs."""
        super().setup(ctx)
        s = self.settings = ctx.settings.notify
        self.urls = configured_urls(s, os.environ if self._environ is None else self._environ)
        self.enabled = bool(self.urls or s.config)
        self.gate = Gate(s.dedupe_s, s.max_per_minute)
        self.batch = ResultTally()
        self.today = ResultTally()
        if not self.enabled:
            ctx.log.debug("notifier: no URL configured; nothing will be sent")
            return
        preload_apprise()

        def queued(event_type: type, handler: c.Callable[[t.Any], c.Awaitable[None]]) -> None:
            ctx.bus.subscribe_queued(event_type, handler, name=self.name, policy="drop_oldest", maxsize=1000)

        if s.alert_level != "off" or s.daily_summary:
            queued(Alert, self._on_alert)
        if s.arbs != "off" or s.daily_summary:
            queued(ArbResult, self._on_result)
            queued(PositionUpdate, self._on_position)
        if s.halt:
            queued(TradingHalted, self._on_halt)
            queued(TradingResumed, self._on_halt)

    async def start(self) -> None:
        """Build the channels (off the loop), start one sender per channel and the timer; announce the run.

        :raises SettingsError: if Apprise cannot use a URL or the config file.
        """
        if not self.enabled:
            return
        s = self.settings
        self.channels = await asyncio.to_thread(load_channels, self.urls, s.config, s.timeout_s)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(self.channels))),
                                        thread_name_prefix="arb-notify")
        loop = asyncio.get_running_loop()
        self.lanes = [_Lane(channel, self.outbox_size) for channel in self.channels]
        self.ctx.log.info("notifier: {} channel(s): {}", len(self.channels),
                          ", ".join(ch.label for ch in self.channels))
        self.ctx.metrics.register(_NotifierCollector(self))
        now = self.ctx.clock.time_ns()
        self._day, self._batch_ns, self._heartbeat_ns = _utc_day(now), now, now
        if s.lifecycle:
            run = self.ctx.settings.run
            self.post(Message("lifecycle", f"started:{self.ctx.run_id}", f"arb run {self.ctx.run_id} started",
                              f"source {run.source}, strategy {run.strategy}, "
                              f"{'LIVE' if run.live else 'paper'} trading"))
        for lane in self.lanes:  # what was posted before the channels existed goes after "started"
            for item in self._early:
                lane.put(item)
            lane.task = loop.create_task(self._send_loop(lane), name=f"notifier:{lane.channel.label}")
        self._early.clear()
        self._timer = loop.create_task(self._tick_loop(), name="notifier:timer")

    async def stop(self) -> None:
        """Send the last batch and the stop message, give the outboxes ``stop_timeout_s``, then stop."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        if self.lanes:
            if self.settings.arbs == "batch" and self.batch.count:
                now = self.ctx.clock.time_ns()
                self.post(batch_message(self.batch, (now - self._batch_ns) / _S, now))
                self.batch = self.batch.next()
            if self.settings.lifecycle:
                self.post(self._stopped_message())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stop_timeout_s
            while self.pending and loop.time() < deadline:
                await asyncio.sleep(0.01)
            if self.pending:
                self.ctx.log.warning("notifier: {} notification(s) not sent at stop (waited {} s)",
                                     self.pending, self.stop_timeout_s)
            for lane in self.lanes:
                if lane.task is not None:
                    lane.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await lane.task
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def summary(self) -> dict[str, t.Any]:
        """Channels, messages sent and failed (per channel send), and what the gate held back."""
        if not self.enabled:
            return {}
        return {"channels": len(self.channels), "sent": self.sent, "failed": self.failed,
                "duplicates": self.gate.duplicates, "throttled": self.gate.throttled,
                "dropped": sum(lane.dropped for lane in self.lanes)}

    # -- figures ---------------------------------------------------------------------------------

    @property
    def sent(self) -> int:
        """Successful sends, over all channels."""
        return sum(ch.sent for ch in self.channels)

    @property
    def failed(self) -> int:
        """Failed sends, over all channels."""
        return sum(ch.failed for ch in self.channels)

    @property
    def in_flight(self) -> int:
        """Sends running in the notifier's threads now."""
        return sum(lane.busy for lane in self.lanes)

    @property
    def pending(self) -> int:
        """Messages waiting or being sent, over all channels."""
        return sum(len(lane.queue) + lane.busy for lane in self.lanes)

    # -- sending ---------------------------------------------------------------------------------

    def post(self, message: Message) -> str:
        """Pass ``message`` through the gate and queue it, redacted, on every channel. Never blocks.

        :returns: ``send``, ``duplicate`` or ``throttled``.
        """
        verdict = self.gate.admit(message, self.ctx.clock.time_ns())
        if verdict != "send":
            self.ctx.log.debug("notification {} not sent: {}", message.topic, verdict)
            return verdict
        # redacted here, once for every channel: an alert may quote an exchange's error text
        item = (redact_text(message.title), redact_text(message.body + self.gate.footer()), message.kind)
        if not self.lanes and len(self._early) < self.outbox_size:
            self._early.append(item)
        for lane in self.lanes:
            lane.put(item)
        return verdict

    async def _send_loop(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        channel = lane.channel
        while True:
            if not lane.queue:
                lane.wake.clear()
                await lane.wake.wait()
                continue
            title, body, kind = lane.queue.popleft()
            lane.busy = True
            error = ""
            try:
                ok = await loop.run_in_executor(self._pool, channel.send, title, body, kind)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ok, error = False, f": {redact_text(repr(exc))}"
            finally:
                lane.busy = False
            if ok:
                channel.sent += 1
            else:
                channel.failed += 1
                self.ctx.log.warning("notification to {} failed{} ({} failure(s) so far)", channel.label,
                                     error, channel.failed)

    # -- events (queued: off the publisher's stack) ----------------------------------------------

    async def _on_alert(self, alert: Alert) -> None:
        if not alert.recovered:
            self.today.alerts += 1
        if self.settings.halt and alert.key == HALT_ALERT_KEY:
            return  # the TradingHalted / TradingResumed message says it
        if level_passes(alert.level, self.settings.alert_level, _LEVELS):
            self.post(alert_message(alert))

    async def _on_result(self, result: ArbResult) -> None:
        self.today.add(result)
        if self.settings.arbs == "each":
            self.post(arb_message(result))
        elif self.settings.arbs == "batch":
            self.batch.add(result)

    async def _on_position(self, update: PositionUpdate) -> None:
        self.today.add_position(update)
        self.batch.add_position(update)

    async def _on_halt(self, event: TradingHalted | TradingResumed) -> None:
        self.post(halt_message(event))

    # -- timer -----------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await self.ctx.clock.sleep(self.tick_s)
            try:
                self.tick()
            except Exception:
                self.ctx.log.opt(exception=True).error("notifier timer failed")

    def tick(self) -> None:
        """Post what is due by the run clock: the arbitrage batch, the daily summary; publish a heartbeat."""
        s, now = self.settings, self.ctx.clock.time_ns()
        if s.arbs == "batch" and now - self._batch_ns >= s.batch_minutes * 60 * _S:
            if self.batch.count:
                self.post(batch_message(self.batch, (now - self._batch_ns) / _S, now))
                self.batch = self.batch.next()
            self._batch_ns = now
        day = _utc_day(now)
        if day != self._day:
            if s.daily_summary:
                self.post(daily_message(self._day, self.today))
            self.today, self._day = self.today.next(), day
        if now - self._heartbeat_ns >= self.ctx.settings.monitor.heartbeat_s * _S:
            self._heartbeat_ns = now
            self.ctx.bus.publish(Heartbeat(source=self.name, ts_init=now))

    def _stopped_message(self) -> Message:
        tally = self.ctx.tally
        run_id, reason = self.ctx.run_id, self.ctx.stop.reason or "stopped"
        arbs = sum(tally.arbs.values())
        body = f"{tally.books:,} books, {tally.opportunities:,} opportunities, {arbs:,} arbitrages"
        realized, unrealized = tally.pnl, tally.unrealized
        if realized or unrealized:
            body += "; " + pnl_text(realized, unrealized)
        return Message("lifecycle", f"stopped:{run_id}", f"arb run {run_id} stopped: {reason}", body)


class _NotifierCollector(Collector):
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def collect(self) -> c.Iterator[Metric]:
        n = self.notifier
        sends = CounterMetricFamily("arb_notifications", "Notification sends by channel (redacted), result.",
                                    labels=["channel", "result"])
        for ch in n.channels:
            sends.add_metric([ch.label, "sent"], ch.sent)
            sends.add_metric([ch.label, "failed"], ch.failed)
        yield sends
        held = CounterMetricFamily("arb_notifications_suppressed", "Messages not sent, by reason.",
                                   labels=["reason"])
        held.add_metric(["duplicate"], n.gate.duplicates)
        held.add_metric(["throttled"], n.gate.throttled)
        held.add_metric(["outbox_full"], sum(lane.dropped for lane in n.lanes))
        yield held
        yield GaugeMetricFamily("arb_notifications_pending", "Messages waiting or being sent.",
                                value=n.pending)
