"""The storage plugin: every event worth keeping goes to SQLite, off the event loop, in batches.

* ``OrderSubmitted`` is written *inline*: the row is committed before ``bus.publish`` returns, so
  an order is in the database before the executor hands it to a venue (the money rule: the
  write-ahead order journal). In a realtime run that commit is made with ``synchronous=FULL``: the
  WAL is on disk when ``publish`` returns, so a power cut after the send cannot lose the row
  (``Writer.sync_journal``; its cost is in ``docs/reliability.md``). Batched writes stay at
  ``synchronous=NORMAL``. In a backtest the row is inserted then too but committed with the next
  batch, unsynced: a simulated order has nothing to recover after a crash, and a commit per order
  was most of storage's cost there. A realtime run journals an arbitrage's ``Opportunity`` with
  its first order, in the same commit (the newest ``RECENT_OPPORTUNITIES`` are kept for it): an
  arbitrage start-up reconciliation finishes then has the profit it expected, its legs' expected
  prices and fee rates, even if the process died before the batch that stores it. The insert
  waits for a batch transaction that holds the writer's lock (~2 ms for 500 opportunities);
  batches are therefore cut to ``storage.batch_size`` events each.
* ``Opportunity``, ``OpportunityRejected``, ``OrderUpdate``, ``Fill``, ``ArbResult``,
  ``ArbStateChanged``, ``PositionUpdate``, ``Alert``
  (and ``BookUpdate`` when ``storage.store_books``) share *one* queued subscriber (``block``
  policy: nothing is dropped): it is subscribed to the first of these types and the others are
  forwarded into its queue inline. Its handler writes everything waiting in a worker thread (on
  the loop itself in a backtest, whose clock is simulated), one transaction per ``batch_size``
  events, in publish order: an arbitrage's rows usually land in
  one or two transactions, not one per event type (each a thread hop, a retry set-up, a commit).
  In a backtest the handler holds its events until ``batch_size`` are waiting (or ``flush``/
  ``stop``): nobody reads the database before the end in simulated time, and one commit per turn
  of the loop was the largest cost storage added to a replay. Its bus statistics
  (``storage:Opportunity``) count the events of every type.

A write that fails (after retries while the database is locked: a full disk, a file made read-only
or removed, a lock held too long) halts trading rather than trading without a journal: storage
publishes ``TradingHalted`` (rule ``storage``; the trader refuses every opportunity and cancels open
orders) and a critical ``Alert`` keyed ``storage`` naming the file and SQLite's error. The
order-journal subscriber is ``critical``: its error propagates out of ``publish(OrderSubmitted)``,
so the executor never sends an order whose row could not be written. In a realtime run the
connection waits at most ``BUSY_TIMEOUT_MS`` for another connection's lock (SQLite's busy handler
retries within it): the journal insert runs on the event loop, and the 10 s default would freeze the
loop that long per order while another process holds ``BEGIN EXCLUSIVE``. Batches (and the run row
at start and stop) retry a locked database a few times more off the loop. Batched events that could
not be written are kept (up to ``MAX_UNWRITTEN``, the oldest dropped and counted beyond) and written
with the next batch, or by a retry every ``RETRY_S`` while nothing else comes. When a write succeeds
again the alert recovers and, if nothing kept was dropped and no other halt is in force (the
monitor's kill switch, or a halt published after storage's), storage publishes ``TradingResumed``:
the journal is whole again, so trading may go on. In a backtest a failed write stops the run instead
(``failure`` says why): the rest of the data would only be replayed without trading.

Lifecycle: ``start`` opens the database and inserts the run row with the redacted settings;
``stop`` flushes the queue, sets ``ended_at`` and stores the run's totals counted from the
database as its summary, then closes. ``finish(summary)`` merges the engine's final summary into
the run row; it may be called before or after ``stop``.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import sqlite3
import typing as t
from pathlib import Path

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from arbitrage.bus import QueuedSubscription
from arbitrage.clock import SimClock
from arbitrage.errors import DataError, SettingsError
from arbitrage.events import (
    STORAGE_ALERT_KEY,
    Alert,
    ArbResult,
    ArbStateChanged,
    BookUpdate,
    Event,
    Fill,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
    PositionUpdate,
    TradingHalted,
    TradingResumed,
)
from arbitrage.plugin import Context, Plugin
from arbitrage.storage.writer import Writer, store_summary

__all__ = ["Storage"]

_QUEUED: tuple[type[Event], ...] = (Opportunity, OpportunityRejected, OrderUpdate, Fill, ArbResult,
                                    ArbStateChanged, PositionUpdate, Alert)
RECENT_OPPORTUNITIES = 1024
"""Newest opportunities a realtime run keeps to journal with their first order (``_on_order_submitted``)."""
MAX_UNWRITTEN = 100_000
"""Events kept for a later write while the database cannot be written; beyond, the oldest go."""
BUSY_TIMEOUT_MS = 100
"""How long (ms) a realtime run's writes wait for another connection's lock before failing: the
bound on how long the journal insert can hold the event loop (plus a batch holding the writer)."""
RETRY_S = 1.0
"""While a write has failed: how often (run clock) storage tries the kept events again."""


def _transient(error: BaseException) -> bool:
    """SQLite busy/locked errors (another process holds the write lock) pass; others do not."""
    return isinstance(error, sqlite3.OperationalError) and any(
        word in str(error).lower() for word in ("locked", "busy"))


def _open(path: Path, run_id: str, *, realtime: bool) -> Writer:
    """The run's writer; in a realtime run its waits for a lock are cut to ``BUSY_TIMEOUT_MS``."""
    writer = Writer(path, run_id, sync_journal=realtime)
    if realtime:
        writer.db.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return writer


def _retrying() -> AsyncRetrying:
    """Five tries, 50 ms to 1 s apart, of a write that met another connection's lock."""
    return AsyncRetrying(retry=retry_if_exception(_transient), reraise=True, stop=stop_after_attempt(5),
                         wait=wait_exponential(multiplier=0.05, max=1.0))


class Storage(Plugin):
    """Writes the run, opportunities, orders, fills, results and alerts to SQLite (WAL, batched)."""

    name = "storage"
    kind = "storage"
    description = "SQLite storage of runs, opportunities, orders, fills, results and alerts (WAL, batched)"

    def __init__(self) -> None:
        self.writer: Writer | None = None
        """The open writer between ``start`` and ``stop``."""
        self.path: Path | None = None
        self.final_totals: dict[str, t.Any] = {}
        """The totals stored at ``stop``, counted from the database."""
        self._rows: dict[str, int] = {}
        self._queue: QueuedSubscription | None = None
        self._held: list[Event] = []
        """Events a backtest's handler holds until a whole batch is waiting."""
        self._unwritten: list[Event] = []
        """Events of batches that failed, written before the next batch."""
        self.failure = ""
        """Why the last write failed ('' while writes succeed)."""
        self.halted = ""
        """The reason of storage's ``TradingHalted`` while it is in force ('' otherwise)."""
        self.lost = 0
        """Events dropped because ``MAX_UNWRITTEN`` were waiting already."""
        self._recent: dict[str, Opportunity] = {}
        """id -> the newest opportunities not journaled yet (at most ``RECENT_OPPORTUNITIES``)."""
        self._storing = asyncio.Lock()
        """One ``_store`` at a time: the queue's handler and the retry share ``_unwritten``."""
        self._retry: asyncio.Task[None] | None = None

    def setup(self, ctx: Context) -> None:
        """Subscribe: ``OrderSubmitted`` inline, the other stored events through one batched queue."""
        super().setup(ctx)
        settings = ctx.settings.storage
        self.path = Path(settings.path)
        self._batch_size = settings.batch_size
        self._on_loop = isinstance(ctx.clock, SimClock)
        """On a simulated clock (a backtest) batches are written on the loop: blocking it costs no
        market time there, while a worker thread would contend for the GIL with the replay and hold
        the writer's lock across every hand-over, stalling the inline order writes (~1 us a book)."""
        ctx.bus.subscribe(OrderSubmitted, self._on_order_submitted, name="storage", critical=True)
        if not self._on_loop:  # a backtest has nothing to recover: its opportunities go in batches only
            ctx.bus.subscribe(Opportunity, self._on_opportunity, name="storage:journal")
        first, *rest = _QUEUED + ((BookUpdate,) if settings.store_books else ())
        queue = ctx.bus.subscribe_queued(first, self._write, name="storage", batch=True, policy="block",
                                         maxsize=max(10_000, 4 * settings.batch_size))
        offer = queue.deliver
        for event_type in rest:
            # a function of its own: the bus tells subscriptions apart by their delivery function
            ctx.bus.subscribe(event_type, lambda event: offer(event), name="storage")
        self._queue = queue

    async def start(self) -> None:
        """Open the database and insert the run row.

        :raises SettingsError: naming ``storage.path`` if the database cannot be created or used
            there (an unwritable folder, a path under a file, a file that is not an arb database).
        """
        assert self.path is not None, "setup() must run before start()"
        run = self.ctx.settings.run
        try:
            self.writer = await asyncio.to_thread(_open, self.path, self.ctx.run_id,
                                                  realtime=not self._on_loop)
        except (OSError, DataError) as exc:
            raise SettingsError("storage.path", f"cannot keep the database at {self.path}: {exc}") from exc
        try:
            async for attempt in _retrying():
                with attempt:
                    await asyncio.to_thread(self.writer.start_run, source=run.source, strategy=run.strategy,
                                            settings=self.ctx.settings.to_dict(), live=run.live)
        except BaseException:
            self.writer.close()
            self.writer = None
            raise
        self.ctx.log.info("storage: writing run {} to {}", self.ctx.run_id, self.path)

    def _on_opportunity(self, event: Opportunity) -> None:
        recent = self._recent
        recent[event.id] = event
        if len(recent) > RECENT_OPPORTUNITIES:
            del recent[next(iter(recent))]

    def _on_order_submitted(self, event: OrderSubmitted) -> None:
        writer = self.writer
        if writer is None:
            raise RuntimeError("storage is not open: cannot record an order before it is sent")
        opportunity = self._recent.pop(event.opportunity_id, None)  # its first order: journal it too
        try:
            writer.write_order_submitted(event, commit=not self._on_loop, opportunity=opportunity)
        except Exception as exc:
            self._failed(f"order {event.client_order_id}", exc)
            raise

    async def _write(self, events: list[Event]) -> None:
        if self._on_loop:
            self._held += events
            if len(self._held) < self._batch_size:
                return
            events, self._held = self._held, []
        await self._store(events)

    async def _store(self, events: list[Event]) -> None:
        async with self._storing:
            await self._store_now(events)

    async def _store_now(self, events: list[Event]) -> None:
        writer = self.writer
        if writer is None:
            raise RuntimeError(f"storage is not open: {len(events)} events not written")
        if self._unwritten:
            events, self._unwritten = self._unwritten + events, []
        size = self._batch_size
        for start in range(0, len(events), size):
            try:
                # a batch is one transaction, rolled back on failure: retrying it is safe
                async for attempt in _retrying():
                    with attempt:
                        if self._on_loop:
                            writer.write_batch(events[start:start + size])
                        else:
                            await asyncio.to_thread(writer.write_batch, events[start:start + size])
            except Exception as exc:
                rest = events[start:]
                kinds = ", ".join(sorted({type(e).__name__ for e in rest}))
                self._failed(f"{kinds} events", exc)
                if self._on_loop:
                    raise
                self._keep(rest)
                return
            if self.failure:
                self._recovered()

    def _keep(self, events: list[Event]) -> None:
        """Keep events that could not be written for the next write, at most ``MAX_UNWRITTEN``."""
        self._unwritten = events[-MAX_UNWRITTEN:]
        if len(events) > MAX_UNWRITTEN:
            self.lost += len(events) - MAX_UNWRITTEN
            self.ctx.log.error("storage: {} events dropped, the database cannot be written", self.lost)

    def _failed(self, what: str, error: BaseException) -> None:
        """A write failed: halt trading and raise the alert (once a failure), or stop a backtest."""
        first = not self.failure
        self.failure = f"cannot write {what} to {self.path}: {error}"
        if self._on_loop:
            self.ctx.request_stop(f"storage {self.failure}")
            return
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._retry_kept(), name="storage:retry")
        trading = self.ctx.views.trading
        # halted by storage, but lifted since by someone else (``arb resume``): halt again
        halt = not self.halted or (trading is not None and not trading.halted)
        if not (first or halt):
            return
        now = self.ctx.clock.time_ns()
        bus = self.ctx.bus
        if halt:  # before the alert: nothing trades while the alert is handled
            self.halted = f"storage {self.failure}"
            bus.publish(TradingHalted(reason=self.halted, rule="storage", ts_init=now))
        if first:
            self.ctx.log.error("storage: {}; trading halted", self.failure)
            bus.publish(Alert(key=STORAGE_ALERT_KEY, level="critical", ts_init=now,
                              message=f"storage {self.failure}: trading halted until it can write again"))

    async def _retry_kept(self) -> None:
        """While a write has failed, write the kept events again every ``RETRY_S``: the recovery
        (and the resumption) must not wait for the next event, which a halted run may never see."""
        while self.failure and self.writer is not None:
            await self.ctx.clock.sleep(RETRY_S)
            await self._store([])

    def _recovered(self) -> None:
        self.failure = ""
        held = self._other_halt()
        if self.halted and not held:
            outcome = "trading resumed"
            self.halted = ""
            self.ctx.bus.publish(TradingResumed(reason=f"storage writes to {self.path} again",
                                                ts_init=self.ctx.clock.time_ns()))
        elif self.halted:
            outcome = f"trading stays halted: {held}"
        else:
            outcome = "trading was not halted by storage"
        self.ctx.log.warning("storage: writing again to {} ({})", self.path, outcome)
        self.ctx.bus.publish(Alert(key=STORAGE_ALERT_KEY, level="critical", recovered=True,
                                   ts_init=self.ctx.clock.time_ns(),
                                   message=f"storage writes to {self.path} again; {outcome}"))

    def _other_halt(self) -> str:
        """Why trading must stay halted although storage writes again ('' if nothing holds it)."""
        if self.lost:
            return f"{self.lost} events were dropped unwritten, the database misses them"
        views = self.ctx.views
        if views.monitor is not None and views.monitor.halted:
            return f"the kill switch is on ({views.monitor.halted})"
        if views.trading is not None and views.trading.halted not in ("", self.halted):
            return f"halted since: {views.trading.halted}"
        return ""

    async def flush(self) -> None:
        """Wait until every queued event has been written (or kept, if the database fails)."""
        if self._queue is not None:
            await self._queue.join()
        if self._held or self._unwritten:
            events, self._held = self._held, []
            await self._store(events)

    async def stop(self) -> None:
        """Flush, set ``ended_at``, store the totals counted from the database, close.

        A failure to finish the run row is logged, not raised; the connection is closed regardless.
        """
        writer = self.writer
        if writer is None:
            return
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
        try:
            await self.flush()
            if self._unwritten:
                self.ctx.log.error("storage: {} events could not be written to {}", len(self._unwritten),
                                   self.path)
            async for attempt in _retrying():
                with attempt:
                    self.final_totals = await asyncio.to_thread(writer.end_run)
        except Exception:
            self.ctx.log.opt(exception=True).error("storage: could not finish run {} in {}", self.ctx.run_id,
                                                   self.path)
        finally:
            self._rows = dict(writer.rows)
            self.writer = None
            writer.close()

    def finish(self, summary: c.Mapping[str, t.Any]) -> None:
        """Merge the engine's end-of-run ``summary`` into this run's stored summary.

        Call it once ``Engine.run`` has returned (storage is stopped by then: the database is
        opened briefly) or while storage runs. Engine keys replace the stored ones; secrets are
        redacted first. Blocking: a few milliseconds of SQLite.

        :raises DataError: if the database or the run row is missing.
        """
        if self.writer is not None:
            self.writer.store_summary(dict(summary))
        else:
            assert self.path is not None, "setup() must run before finish()"
            store_summary(self.path, self.ctx.run_id, dict(summary))

    def summary(self) -> dict[str, t.Any]:
        """Database path, rows written per table (``order_updates``: OrderUpdate upserts) and, after
        a failed write, why and what is still unwritten."""
        rows = dict(self.writer.rows) if self.writer is not None else self._rows
        out: dict[str, t.Any] = {"path": str(self.path), "rows": rows}
        if self.halted or self.failure:
            out.update(failure=self.failure, unwritten=len(self._unwritten), lost=self.lost)
        return out
