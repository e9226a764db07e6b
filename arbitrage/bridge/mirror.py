"""The ``redis`` plugin: chosen events out to Redis, off the hot path, in publish order.

One queued bus subscription (``batch=True``) takes every mirrored type, so the worker sees them in
publish order; it encodes each event once (tagged JSON, ``arbitrage.events.encode_json``), builds
its commands and puts them in the ``Outbox``. A writer task sends the outbox in pipelined batches
of ``redis.batch_size`` events. Publishing on the bus therefore never waits for Redis: when
Redis is slow or down, market data is dropped oldest first and counted, everything else waits
(``redis.trading_buffer``, counted and alerted past it) and trading goes on.

Per event (``bridge.names``): ``PUBLISH <prefix><Type>`` if ``redis.pubsub``; ``XADD
<prefix>stream:<Type> MAXLEN ~ redis.maxlen`` for trading events and the types in
``redis.streams``; in the collector role every ``MarketsLoaded``, ``BookUpdate`` and
``FeedStatus`` also goes to ``<prefix>feed:<venue>`` (``MAXLEN ~ redis.feed_maxlen``), with the
venue's latest market list kept in the hash ``<prefix>markets:<venue>`` and the venue added to the
set ``<prefix>feeds`` (both written again after every reconnection: a restarted Redis may have
lost them).

Events that came from another process (``origin`` set) are never written back: nothing loops.
Free-text fields that may quote an exchange's message (an order's ``reason``, an alert's
``message``...) are redacted (``arbitrage.redact``) before they are encoded, as storage does.

When a write fails, the writer alerts (``bridge.link``), reconnects with backoff, and sends again
what may not have arrived: for each stream entry of the failed batch it first looks for its own
``run``/``seq`` among the stream's newest entries, so an entry that did arrive is not added twice
(Pub/Sub messages of a failed batch are not sent again: Pub/Sub is at most once).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import socket
import time
import typing as t

import msgspec
from msgspec import UNSET

from arbitrage.bridge.entries import EVENTS_BY_NAME, entry_fields
from arbitrage.bridge.names import FEED_TYPES, LOSSY, TRADING, Names
from arbitrage.bridge.outbox import Entry, Outbox
from arbitrage.errors import PluginError
from arbitrage.events import (
    EVENT_TYPES,
    Alert,
    BookUpdate,
    Event,
    FeedStatus,
    MarketsLoaded,
    OpportunityRejected,
    OrderUpdate,
    TradingHalted,
    TradingResumed,
    encode_json,
)
from arbitrage.plugin import Context, Plugin
from arbitrage.redact import redact_text

if t.TYPE_CHECKING:
    from arbitrage.bridge.link import Link

__all__ = ["RedisBridge"]

_LOOKBACK = 100
"""Entries of a stream looked at, beyond the unsure ones, to find what a failed write did store."""


_FREE_TEXT: dict[type[Event], str] = {OrderUpdate: "reason", OpportunityRejected: "reason", Alert: "message",
                                      FeedStatus: "detail", TradingHalted: "reason", TradingResumed: "reason"}
"""The field of each type that may quote an exchange's or a library's message (which may echo a
key): redacted before it is mirrored, as storage and the notifier redact it."""


class _Plan(t.NamedTuple):
    """Where one event type goes."""

    channel: str | None
    stream: str | None
    feed: bool
    lossy: bool
    text: str | None
    """The free-text field to redact, if the type has one."""


class RedisBridge(Plugin):
    """Mirrors events to Redis; in the collector role, also each venue's feed."""

    name = "redis"
    kind = "bridge"
    description = "Mirrors events to Redis Pub/Sub and streams; as a collector, books to a stream per venue."

    def setup(self, ctx: Context) -> None:
        """Work out where each type goes and subscribe one queue to all of them.

        :raises PluginError: without ``redis.url``.
        """
        super().setup(ctx)
        cfg = self.cfg = ctx.settings.redis
        if not cfg.url:
            raise PluginError("the redis plugin needs redis.url (--redis URL)")
        self.names = Names(cfg.prefix)
        self.node = cfg.node or socket.gethostname()
        self.run_id = ctx.run_id
        self.shown = redact_text(cfg.url)
        mirrored = {EVENTS_BY_NAME[n] for n in cfg.events} | ({BookUpdate} if cfg.books else set())
        streamed = (mirrored & TRADING) | (mirrored & {EVENTS_BY_NAME[n] for n in cfg.streams})
        feeds = set(FEED_TYPES) if cfg.role == "collector" else set()
        self.plans: dict[type[Event], _Plan] = {
            tp: _Plan(self.names.channel(tp.__name__) if cfg.pubsub and tp in mirrored else None,
                      self.names.stream(tp.__name__) if tp in streamed else None, tp in feeds, tp in LOSSY,
                      _FREE_TEXT.get(tp))
            for tp in EVENT_TYPES if tp in mirrored or tp in feeds
        }
        self.outbox = Outbox(cfg.market_buffer, cfg.trading_buffer)
        self.sending: list[Entry] = []
        """The batch being written: it still waits until Redis answers (depth, lag, unwritten)."""
        self._seq = itertools.count(1)
        self.written = 0
        self.errors = 0
        self.skipped_remote = 0
        """Events that came from another process, not written back."""
        self.resent_found = 0
        """Entries of failed writes found already stored (not written twice)."""
        self.unwritten = 0
        self._overflow_told = 0
        """``outbox.overflow`` as last told (an alert, or the outage's recovery note)."""
        self.venues: dict[str, list[t.Any]] = {}
        """Collector: venue -> the HSET fields of its latest market list (written again on reconnect)."""
        self.link: Link | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        types = tuple(self.plans)
        if types:
            self.subscription = ctx.bus.subscribe_queued(  # a hand-over: the outbox decides what to drop
                types, self._accept, name="redis", batch=True, policy="block",
                maxsize=cfg.market_buffer + cfg.trading_buffer)
        from arbitrage.bridge.metrics import MirrorCollector

        ctx.metrics.register(MirrorCollector(self))

    async def start(self) -> None:
        """Connect and start the writer.

        :raises PluginError: if Redis cannot be reached.
        """
        from arbitrage.bridge.link import Link

        self.link = Link(self.ctx, self.cfg, "mirror")
        await self.link.open()
        self._task = asyncio.get_running_loop().create_task(self._write_loop(), name="redis:mirror")

    async def stop(self) -> None:
        """Write what waits (up to ``redis.flush_timeout_s``), then close; what is left is counted."""
        from arbitrage.bridge.link import end_task

        self._stopped = True
        self._wake.set()
        if self._task is not None:
            await end_task(self._task, self.cfg.flush_timeout_s)
        self.unwritten = len(self.outbox) + len(self.sending)
        if self.unwritten:
            self.ctx.log.warning("redis mirror: {} events not written to {}", self.unwritten, self.shown)
        if self.link is not None:
            await self.link.close()

    def summary(self) -> dict[str, t.Any]:
        box = self.outbox
        out: dict[str, t.Any] = {"url": self.shown, "written": self.written,
                                 "market_dropped": box.dropped_full + box.dropped_down,
                                 "trading_overflow": box.overflow, "unwritten": self.unwritten}
        link = self.link
        if link is not None and link.outages:
            out.update(outages=link.outages, down_s=round(link.down_s, 3))
        if self.errors:
            out["command_errors"] = self.errors
        return out

    # -- taking events off the bus ---------------------------------------------------------------

    async def _accept(self, events: list[Event]) -> None:
        """The queue's worker: encode each event and queue its commands (never waits for Redis)."""
        if self._stopped:
            return
        plans, put, names, cfg = self.plans, self.outbox.put, self.names, self.cfg
        now = time.monotonic_ns()
        for event in events:
            if event.origin is not UNSET:
                self.skipped_remote += 1
                continue
            tp = type(event)
            plan = plans[tp]
            if plan.text is not None:
                event = _redacted(event, plan.text)
            payload = encode_json(event)
            seq = next(self._seq)
            fields = entry_fields(tp.__name__, self.node, self.run_id, seq, payload)
            commands: list[tuple[t.Any, ...]] = []
            if plan.feed:
                venue: str = event.venue  # type: ignore[attr-defined]
                if venue not in self.venues:
                    self.venues[venue] = []
                    commands.append(("SADD", names.feeds, venue))
                if tp is MarketsLoaded:  # before the entry: an engine reading both at once misses neither
                    self.venues[venue] = list(fields)
                    commands.append(("HSET", names.markets(venue), *fields))
                commands.append(("XADD", names.feed(venue), "MAXLEN", "~", cfg.feed_maxlen, "*", *fields))
            if plan.stream is not None:
                commands.append(("XADD", plan.stream, "MAXLEN", "~", cfg.maxlen, "*", *fields))
            if plan.channel is not None:
                commands.append(("PUBLISH", plan.channel, payload))
            put(Entry(seq, commands, plan.lossy, now))
        self._wake.set()

    # -- writing ---------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        from arbitrage.bridge.link import REDIS_ERRORS

        link, box = self.link, self.outbox
        assert link is not None
        while True:
            if not box:
                if self._stopped:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self.sending = box.take(self.cfg.batch_size)
            try:
                await self._write(batch)
                self.sending = []
                if box.overflow > self._overflow_told:
                    self._tell_overflow()
            except REDIS_ERRORS as exc:
                note = functools.partial(self._outage_note, box.dropped_full + box.dropped_down,
                                         self._overflow_told)
                self.sending = []
                box.put_back(batch)
                link.lost(exc)
                await link.restore(note)
                self._overflow_told = box.overflow
                self._register_feeds()
            except Exception as exc:  # not a lost connection: say so, keep the batch, try again later
                self.errors += 1
                self.ctx.log.opt(exception=True).error("redis mirror: write failed: {}",
                                                       redact_text(repr(exc)))
                self.sending = []
                box.put_back(batch)
                link.lost(exc)
                await asyncio.sleep(self.cfg.retry_max_s)
                await link.restore()

    def _tell_overflow(self) -> None:
        """Redis answers but slower than trading events come: the buffer overflowed, and the streams
        miss what it dropped. An error ``Alert`` (the trading events themselves are in the database)."""
        lost, self._overflow_told = self.outbox.overflow - self._overflow_told, self.outbox.overflow
        message = (f"redis mirror: {lost} trading events not written to {self.shown}: "
                   f"redis.trading_buffer ({self.cfg.trading_buffer}) was full, Redis slower than the events")
        self.ctx.log.error(message)
        self.ctx.bus.publish(Alert(key=f"redis.overflow:{self.name}", level="error", message=message,
                                   ts_init=self.ctx.clock.time_ns()))

    def _outage_note(self, dropped: int, overflow: int) -> str:
        box = self.outbox
        note = (f"{len(box.kept)} kept events waiting, "
                f"{box.dropped_full + box.dropped_down - dropped} market events dropped meanwhile")
        if box.overflow > overflow:
            note += f", {box.overflow - overflow} trading events LOST (redis.trading_buffer full)"
        return note

    def _register_feeds(self) -> None:
        """Collector, after a reconnection: the feed set and every market list first."""
        if not self.venues:
            return
        commands: list[tuple[t.Any, ...]] = [("SADD", self.names.feeds, *self.venues)]
        commands += [("HSET", self.names.markets(v), *f) for v, f in self.venues.items() if f]
        self.outbox.kept.appendleft(Entry(0, commands, False, time.monotonic_ns()))

    async def _write(self, batch: list[Entry]) -> None:
        """One pipeline for the batch; stream entries of unsure entries only if not stored yet."""
        assert self.link is not None
        client = self.link.client
        stored = await self._stored(batch) if any(e.unsure for e in batch) else None
        pipe = client.pipeline(transaction=False)
        for entry in batch:
            if entry.unsure and stored is not None:
                for command in entry.commands:
                    if command[0] == "PUBLISH":
                        continue
                    if command[0] == "XADD" and (command[1], entry.seq) in stored:
                        self.resent_found += 1
                        continue
                    pipe.execute_command(*command)
            else:
                for command in entry.commands:
                    pipe.execute_command(*command)
        results = await pipe.execute(raise_on_error=False)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            self.errors += len(failed)
            self.ctx.log.error("redis mirror: {} commands refused, e.g. {}", len(failed),
                               redact_text(str(failed[0])))
        self.written += len(batch)

    async def _stored(self, batch: list[Entry]) -> set[tuple[str, int]]:
        """(stream, seq) of this run's entries already in the streams the unsure entries go to."""
        assert self.link is not None
        wanted: collections.Counter[str] = collections.Counter()
        for entry in batch:
            if entry.unsure:
                wanted.update(c[1] for c in entry.commands if c[0] == "XADD")
        if not wanted:
            return set()
        pipe = self.link.client.pipeline(transaction=False)
        keys = list(wanted)
        for key in keys:
            pipe.xrevrange(key, count=wanted[key] + _LOOKBACK)
        found: set[tuple[str, int]] = set()
        run = self.run_id.encode()
        for key, entries in zip(keys, await pipe.execute(), strict=True):
            for _, fields in entries:
                if fields.get(b"run") == run:
                    found.add((key, int(fields[b"seq"])))
        return found


def _redacted(event: Event, field: str) -> Event:
    """``event`` with its free-text ``field`` redacted (the same event when there is nothing to mask)."""
    text = getattr(event, field)
    clean = redact_text(text) if text else text
    return event if clean == text else msgspec.structs.replace(event, **{field: clean})
