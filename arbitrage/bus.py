"""The in-process event bus: blinker signals for subscriptions, a cached tuple per publish.

One blinker ``Signal`` per event type holds the subscriptions (sender = ``ANY`` or a venue name).
``publish`` does not call ``Signal.send``: it looks up a tuple of delivery functions resolved once
per (event type, sender) and loops over it. The cache is cleared whenever blinker announces a
receiver connecting or disconnecting.

Two kinds of subscriber:

* *inline* -- called synchronously, in subscription order, inside ``publish`` (lowest latency);
* *queued* -- an async handler behind its own queue and worker task, so a slow consumer never
  stalls the publisher. Overflow policies: ``block`` (never drops: ``await bus.wait_ready()``
  lets producers wait for room), ``drop_oldest`` (bounded, counts drops) and ``conflate``
  (keeps only the newest event per key, e.g. per venue+symbol).

A handler that raises is logged and counted; it never breaks the publisher or other handlers.
The bus belongs to one event loop: ``publish`` from another thread is handed to that loop with
``call_soon_threadsafe`` and delivered in arrival order.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import itertools
import threading
import typing as t
from collections import deque

from blinker import ANY, Signal
from loguru import logger

from arbitrage.events import Event

Policy = t.Literal["block", "drop_oldest", "conflate"]
InlineHandler = c.Callable[[t.Any], object]
AsyncHandler = c.Callable[[t.Any], c.Awaitable[object]]


class SubscriberStats:
    """Counters of one subscriber, read by the monitor and the summary."""

    __slots__ = ("delivered", "dropped", "errors", "overflow")

    def __init__(self) -> None:
        self.delivered = 0
        self.errors = 0
        self.dropped = 0
        self.overflow = 0


class Subscription:
    """One connection of a handler to an event type (and optionally one sender)."""

    def __init__(self, bus: Bus, name: str, event_type: type[Event], sender: t.Any, seq: int) -> None:
        self.bus = bus
        self.name = name
        self.event_type = event_type
        """The (first) event type; the subscription's name in stats is ``name:EventType``."""
        self.event_types: tuple[type[Event], ...] = (event_type,)
        """Every type it receives (several only for a queued subscription given a tuple)."""
        self.sender = sender
        self.seq = seq
        self.stats = SubscriberStats()
        self.deliver: InlineHandler = self._noop

    def _noop(self, event: t.Any) -> None:  # replaced by subclasses
        return None

    @property
    def depth(self) -> int:
        """Events waiting to be handled (always 0 for inline subscribers)."""
        return 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.event_type.__name__}>"


class InlineSubscription(Subscription):
    """Calls its handler synchronously inside ``publish``."""

    def __init__(self, bus: Bus, name: str, event_type: type[Event], sender: t.Any, seq: int,
                 handler: InlineHandler, critical: bool = False) -> None:
        super().__init__(bus, name, event_type, sender, seq)
        self.handler = handler
        self.deliver = handler
        self.critical = critical


class QueuedSubscription(Subscription):
    """Feeds an async handler from its own queue and worker task, in FIFO order."""

    def __init__(self, bus: Bus, name: str, event_type: type[Event], sender: t.Any, seq: int,
                 handler: c.Callable[[t.Any], c.Awaitable[object]], *, maxsize: int, policy: Policy,
                 key: c.Callable[[t.Any], c.Hashable] | None, batch: bool) -> None:
        super().__init__(bus, name, event_type, sender, seq)
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if policy == "conflate" and key is None:
            raise ValueError("the conflate policy needs a key function")
        if policy not in ("block", "drop_oldest", "conflate"):
            raise ValueError(f"unknown overflow policy {policy!r}")
        self.handler = handler
        self.maxsize = maxsize
        self.policy = policy
        self.key = key
        self.batch = batch
        self._queue: deque[t.Any] = deque(maxlen=maxsize if policy == "drop_oldest" else None)
        self._latest: dict[c.Hashable, t.Any] = {}
        self._wakeup: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.deliver = self._offer_conflate if policy == "conflate" else self._offer

    @property
    def depth(self) -> int:
        return len(self._latest) if self.policy == "conflate" else len(self._queue)

    def _offer(self, event: t.Any) -> None:
        queue = self._queue
        waiting = len(queue)
        if waiting >= self.maxsize:
            if self.policy == "drop_oldest":
                self.stats.dropped += 1
            else:
                self.stats.overflow += 1
                if self._room is not None:
                    self._room.clear()
        queue.append(event)
        if not waiting and self._wakeup is not None:  # a queue that holds events has its worker woken
            self._wakeup.set()

    def _offer_conflate(self, event: t.Any) -> None:
        key = self.key(event)  # type: ignore[misc]
        latest = self._latest
        if key in latest:
            self.stats.dropped += 1
            del latest[key]  # re-insert at the end: FIFO by last update
        latest[key] = event
        if self._wakeup is not None:
            self._wakeup.set()

    def _take(self) -> list[t.Any]:
        """Everything waiting when batching, else the oldest event (per key when conflating)."""
        if self.policy == "conflate":
            if self.batch:
                events = list(self._latest.values())
                self._latest.clear()
                return events
            return [self._latest.pop(next(iter(self._latest)))]
        if self.batch:
            events = list(self._queue)
            self._queue.clear()
            return events
        return [self._queue.popleft()]

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        if self.depth:
            self._wakeup.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"bus:{self.name}")

    async def _run(self) -> None:
        assert self._wakeup is not None and self._idle is not None and self._room is not None
        while True:
            if not self.depth:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._idle.clear()
            events = self._take()
            if len(self._queue) < self.maxsize:
                self._room.set()
            try:
                if self.batch:
                    await self.handler(events)
                else:
                    await self.handler(events[0])
                self.stats.delivered += len(events)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.errors += 1
                logger.opt(exception=True).error("subscriber {} failed on {}", self.name,
                                                 type(events[0]).__name__)

    async def wait_room(self) -> None:
        """Wait until the queue is below ``maxsize`` (``block`` policy back-pressure)."""
        if self._room is not None:
            await self._room.wait()

    async def join(self) -> None:
        """Wait until every queued event has been handled."""
        if self._idle is None or self._task is None:
            return
        while self.depth or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Bus:
    """Routes typed events to inline and queued subscribers.

    Not thread-safe except ``publish``, which may be called from any thread (it is handed to the
    bus's loop). Subscribing must happen on the loop's thread, normally during plugin setup.
    """

    def __init__(self) -> None:
        self._signals: dict[type[Event], Signal] = {}
        self._cache: dict[type[Event], tuple[InlineHandler, ...]] = {}
        self._sender_cache: dict[t.Any, dict[type[Event], tuple[InlineHandler, ...]]] = {}
        """sender -> event type -> delivery functions (no key tuple to build per publish)."""
        self._subs: dict[int, Subscription] = {}
        self._by_deliver: dict[int, Subscription] = {}
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = threading.get_ident()
        self._started = False
        self._blocking: list[QueuedSubscription] | None = None
        self.handler_errors = 0
        """Errors raised by inline handlers, all subscribers together."""
        self._make_publish()

    # -- subscribing -----------------------------------------------------------------------------

    def _signal(self, event_type: type[Event]) -> Signal:
        signal = self._signals.get(event_type)
        if signal is None:
            signal = self._signals[event_type] = Signal(event_type.__name__)
            signal.receiver_connected.connect(self._invalidate, weak=False)
            signal.receiver_disconnected.connect(self._invalidate, weak=False)
        return signal

    def _invalidate(self, *_: t.Any, **__: t.Any) -> None:
        self._cache.clear()
        self._sender_cache.clear()

    def _connect(self, sub: Subscription) -> Subscription:
        self._subs[id(sub)] = sub
        self._by_deliver[id(sub.deliver)] = sub
        self._blocking = None
        for event_type in sub.event_types:
            self._signal(event_type).connect(sub, sender=sub.sender, weak=False)
        return sub

    def subscribe(self, event_type: type[Event], handler: InlineHandler, *, sender: t.Any = ANY,
                  name: str | None = None, critical: bool = False) -> Subscription:
        """Call ``handler(event)`` synchronously for every ``event_type`` published.

        :param sender: only events published with this sender (e.g. a venue name); ``ANY`` = all.
        :param name: shown in stats and logs; defaults to the handler's qualified name.
        :param critical: let the handler's exception propagate out of ``publish`` (after it is
            counted) instead of being contained. For a veto the publisher must see, e.g. storage
            failing to record an order before it is sent.
        """
        label = name or getattr(handler, "__qualname__", repr(handler))
        return self._connect(InlineSubscription(self, label, event_type, sender, next(self._seq), handler,
                                                critical))

    def subscribe_queued(self, event_type: type[Event] | tuple[type[Event], ...],
                         handler: c.Callable[[t.Any], c.Awaitable[object]],
                         *, name: str, maxsize: int = 10_000, policy: Policy = "block",
                         key: c.Callable[[t.Any], c.Hashable] | None = None, batch: bool = False,
                         sender: t.Any = ANY) -> QueuedSubscription:
        """Hand events to the coroutine ``handler`` through a queue and a worker task.

        :param policy: what happens when ``maxsize`` events wait: ``block`` keeps every event
            and makes ``wait_ready`` wait; ``drop_oldest`` discards the oldest; ``conflate``
            keeps only the newest event per ``key(event)``.
        :param event_type: one type, or a tuple of types sharing one queue, so the handler sees
            them in publish order (the Redis bridge); stats list it under the first type.
        :param batch: call ``handler(list_of_events)`` with everything waiting, for batched writes.
        """
        types = event_type if isinstance(event_type, tuple) else (event_type,)
        if not types:
            raise ValueError("subscribe_queued needs at least one event type")
        sub = QueuedSubscription(self, name, types[0], sender, next(self._seq), handler, maxsize=maxsize,
                                 policy=policy, key=key, batch=batch)
        sub.event_types = types
        self._connect(sub)
        if self._started:
            sub.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Disconnect a subscription; a queued one stops after its current event."""
        for event_type in sub.event_types:
            self._signal(event_type).disconnect(sub, sender=sub.sender)
        self._subs.pop(id(sub), None)
        self._by_deliver.pop(id(sub.deliver), None)
        self._blocking = None
        if isinstance(sub, QueuedSubscription) and sub._task is not None:
            sub._task.cancel()

    @contextlib.contextmanager
    def connected_to(self, event_type: type[Event], handler: InlineHandler,
                     sender: t.Any = ANY) -> c.Iterator[Subscription]:
        """Subscribe ``handler`` inline for the duration of a ``with`` block. Useful for tests."""
        sub = self.subscribe(event_type, handler, sender=sender)
        try:
            yield sub
        finally:
            self.unsubscribe(sub)

    @contextlib.contextmanager
    def collect(self, *event_types: type[Event]) -> c.Iterator[list[t.Any]]:
        """Collect every event of the given types published inside the block. Useful for tests."""
        seen: list[t.Any] = []
        subs = [self.subscribe(et, seen.append, name="collect") for et in event_types]
        try:
            yield seen
        finally:
            for sub in subs:
                self.unsubscribe(sub)

    # -- publishing ------------------------------------------------------------------------------

    def _resolve(self, event_type: type[Event], sender: t.Any) -> tuple[InlineHandler, ...]:
        signal = self._signals.get(event_type)
        subs: list[Subscription] = list(signal.receivers_for(sender)) if signal is not None else []
        subs.sort(key=lambda s: s.seq)
        delivers = tuple(s.deliver for s in subs)
        if sender is ANY:
            self._cache[event_type] = delivers
        else:
            self._sender_cache.setdefault(sender, {})[event_type] = delivers
        return delivers

    def publish(self, event: Event, sender: t.Any = ANY) -> None:
        """Deliver ``event`` to every subscriber of its type (and of ``sender``, if given).

        Inline handlers run before this returns, in subscription order; queued ones get the event
        appended to their queue. Call it from the loop's thread only (every plugin does); another
        thread uses ``publish_threadsafe``. Checking the thread here would cost the hot path ~45 ns
        per event, a quarter of a publish. (Each bus replaces this method by a closure over its
        caches, built by ``_make_publish``: same behaviour, fewer lookups.)
        """
        self._make_publish()(event, sender)

    def _make_publish(self) -> c.Callable[[Event, t.Any], None]:
        cache = self._cache
        sender_cache = self._sender_cache
        resolve = self._resolve
        failed = self._inline_failed
        any_sender = ANY

        def publish(event: Event, sender: t.Any = ANY) -> None:
            if sender is any_sender:
                try:
                    delivers = cache[type(event)]
                except KeyError:
                    delivers = resolve(type(event), ANY)
            else:
                try:
                    delivers = sender_cache[sender][type(event)]
                except KeyError:
                    delivers = resolve(type(event), sender)
            for deliver in delivers:
                try:
                    deliver(event)
                except Exception:
                    failed(deliver, event)

        self.publish = publish  # type: ignore[method-assign]
        return publish

    def _inline_failed(self, deliver: InlineHandler, event: Event) -> None:
        self.handler_errors += 1
        sub = self._by_deliver.get(id(deliver))
        name = sub.name if sub is not None else repr(deliver)
        if sub is not None:
            sub.stats.errors += 1
            if isinstance(sub, InlineSubscription) and sub.critical:
                raise
        logger.opt(exception=True).error("subscriber {} failed on {}", name, type(event).__name__)

    def publish_threadsafe(self, event: Event, sender: t.Any = ANY) -> None:
        """``publish`` from any thread: handed to the bus's loop, so that each producer thread's
        events arrive in order; on the loop's own thread it publishes at once.

        :raises RuntimeError: if the bus has not been started (no loop to hand the event to).
        """
        if threading.get_ident() == self._thread_id:
            self.publish(event, sender)
            return
        if self._loop is None or self._loop.is_closed():
            raise RuntimeError("publish from another thread needs a running bus (await bus.start())")
        self._loop.call_soon_threadsafe(self.publish, event, sender)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind to the running loop and start the queued subscribers' workers."""
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._make_publish()
        self._started = True
        for sub in self.queued():
            if sub._task is None:
                sub.start()

    async def wait_ready(self) -> None:
        """Wait until no ``block`` queue is over its limit. Producers that can wait call this."""
        if self._blocking is None:
            self._blocking = [s for s in self.queued() if s.policy == "block"]
        for sub in self._blocking:
            if len(sub._queue) >= sub.maxsize:
                await sub.wait_room()

    async def drain(self) -> None:
        """Wait until every queued subscriber has handled everything published so far."""
        for _ in range(100):  # handlers may publish more events while we wait
            subs = self.queued()
            if not any(s.depth or (s._idle is not None and not s._idle.is_set()) for s in subs):
                return
            for sub in subs:
                await sub.join()

    async def stop(self) -> None:
        """Drain, then stop every worker task."""
        await self.drain()
        for sub in self.queued():
            await sub.stop()
        self._started = False

    # -- introspection ---------------------------------------------------------------------------

    def subscriptions(self) -> list[Subscription]:
        """Every live subscription, in subscription order."""
        return sorted(self._subs.values(), key=lambda s: s.seq)

    def queued(self) -> list[QueuedSubscription]:
        return [s for s in self.subscriptions() if isinstance(s, QueuedSubscription)]

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-subscriber counters and queue depth, keyed by ``name:EventType``."""
        return {
            f"{s.name}:{s.event_type.__name__}": {
                "delivered": s.stats.delivered, "errors": s.stats.errors, "dropped": s.stats.dropped,
                "overflow": s.stats.overflow, "depth": s.depth,
            }
            for s in self.subscriptions()
        }
