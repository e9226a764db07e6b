"""The ``replay`` market source: recorded books published on a simulated clock, as fast as possible.

Every book is published at its receive time (``ts_init``): before it goes out, the ``SimClock``
is moved to that time, so strategies, staleness checks and the paper venues' latency all run in
event time and the same data gives the same trades on any machine. Timers that fall due before a
book (an order's latency ending) fire first, at their own time: the woken order fills against
the book as it was then, and time only moves on once the trading it released has settled (see
``_settle``). An order arriving at exactly a book's timestamp fills before that book is applied.

What is in flight is learnt from events and from the clock, never from another plugin's objects
or the event loop's internals, so it works the same on any loop (asyncio, uvloop): an arbitrage
is open from its first ``OrderSubmitted`` until its ``ArbResult``; an order is in flight from its
``OrderSubmitted`` until its ``OrderUpdate``; ``SimClock.waking`` counts the sleepers released but
not yet resumed. Trading has settled when nothing is waking, every open arbitrage has an order in
flight (so it is waiting for a venue, not deciding what to do next) and one whole turn of the loop
published no trading event.

Markets: a recording whose first line is a ``MarketsLoaded`` (what ``arb record`` writes) carries
its venues' fees, precision, minimums and staleness; those lines are published as they come. For
every other file (CSV, Tardis, SQLite books, bare JSON lines) a quick first pass collects each
venue's symbols, and one ``MarketsLoaded`` per venue is published before the first book, with
markets derived from the symbols (``BASE/QUOTE``, fee ``backtest.taker_fee``, no precision or
minimums) and staleness ``backtest.staleness_ms``: strategies that index a venue's markets once
(triangular cycles) see them all up front. ``backtest.fee`` replaces every taker fee, recorded
ones included. A book whose market was still not announced (a recording whose markets lines miss
a symbol) gets its venue re-announced with that market added, just before it.

Several files are merged by ``ts_init`` (each file must be in time order). A book older than
the clock (out of order) is published at the current time and counted. At the end of the data,
the clock keeps advancing from timer to timer until the arbitrages in flight have finished, then
the source asks the engine to stop (``replay: end of data``).

The replay source sits with the other market sources; what it replays is read by the backtest
package's readers (``arbitrage.readers``), which ``arb record``'s files and the database
share with the rest of the backtest tooling.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import heapq
import itertools
import operator
import typing as t
from pathlib import Path

import msgspec

from arbitrage.clock import SimClock
from arbitrage.errors import ArbError, PluginError, SettingsError
from arbitrage.events import (
    ArbResult,
    BookUpdate,
    FeedStatus,
    Market,
    MarketsLoaded,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
)
from arbitrage.plugin import Context, Plugin
from arbitrage.readers.contract import BATCH, FileStats, Item, Reader
from arbitrage.readers.formats import open_reader

__all__ = ["ReplaySource"]

MAX_SETTLE_STEPS = 10_000
"""Loop turns ``_settle`` allows before moving on anyway (with a warning): trading that never settles."""
YIELD_EVERY = 1024
"""Books published between two turns given to the rest of the loop (storage queues, progress)."""
MAX_END_STEPS = 100_000
"""Timer wake-ups allowed at the end of the data while arbitrages finish."""
JUMP_NS = 60 * 1_000_000_000
"""A book received this much later than the file's clock (60 s) is a jump: taken as the new clock
only if the books after it agree (see ``_timed``)."""
JUMP_WINDOW = 8
"""Books after a jump that decide it: the majority of them below the jump (by more than
``JUMP_NS``) makes it a far-future record, skipped; else the file's clock moves on to it."""

Progress = c.Callable[[int, int], None]
"""``progress(done, total)`` in bytes (rows for SQLite), called every ``YIELD_EVERY`` books."""


class ReplaySource(Plugin):
    """Market source replaying recordings (``backtest.data``) on the run's ``SimClock``."""

    name = "replay"
    kind = "source"
    description = "Recorded books (JSON lines, CSV, Tardis, arb SQLite) replayed on a simulated clock."

    def __init__(self, data: c.Sequence[str | Path | Reader] | None = None,
                 progress: Progress | None = None) -> None:
        """
        :param data: files (or open readers) to replay; None = ``settings.backtest.data``.
        :param progress: called with (done, total) work units as the replay advances.
        """
        self.data = list(data) if data is not None else None
        self.progress = progress
        self.readers: list[Reader] = []
        self.gave_books: set[str] = set()
        """Files (paths) that gave at least one book (far-future ones skipped do not count)."""
        self.skipped: dict[str, FileStats] = {}
        """What the replay itself skipped from each file (far-future books), by path."""
        self.published = 0
        self.markets_published = 0
        self.out_of_order = 0
        self.first_ts = 0
        self.last_ts = 0
        self.error: Exception | None = None
        """What stopped the replay before the end of its data, if anything did."""
        self._activity = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[str, int] = {}
        """Open arbitrage (opportunity id) -> its orders submitted and not yet updated."""
        self._trading_events = 0
        """Trading events seen so far: ``_settle`` waits for a loop turn that adds none."""

    def setup(self, ctx: Context) -> None:
        """Open every file's reader and subscribe to the trading events that tell what is in flight.

        :raises SettingsError: without a ``SimClock`` (``arb run --source replay``).
        :raises PluginError: without data.
        :raises DataError: if a file is missing or of an unknown format.
        """
        super().setup(ctx)
        if not isinstance(ctx.clock, SimClock):
            raise SettingsError("run.source", "the replay source needs a simulated clock: use `arb backtest`")
        data = self.data if self.data is not None else list(ctx.settings.backtest.data)
        if not data:
            raise PluginError("the replay source has no data (backtest.data / --data)")
        self.readers = [d if isinstance(d, Reader) else open_reader(d) for d in data]
        cfg = ctx.settings.backtest
        self._fee = cfg.fee
        self._default_fee = cfg.fee if cfg.fee is not None else cfg.taker_fee
        self._staleness_ms = cfg.staleness_ms
        self._markets: dict[str, dict[str, Market]] = {}
        """venue -> symbol -> market announced."""
        self._venue_staleness: dict[str, float] = {}
        self._clock = ctx.clock
        bus = ctx.bus
        bus.subscribe(Opportunity, self._on_opportunity, name="replay")
        bus.subscribe(OpportunityRejected, self._on_trading, name="replay")
        bus.subscribe(OrderSubmitted, self._on_submitted, name="replay")
        bus.subscribe(OrderUpdate, self._on_update, name="replay")
        bus.subscribe(ArbResult, self._on_result, name="replay")

    def _on_opportunity(self, _: Opportunity) -> None:
        self._activity = True
        self._trading_events += 1

    def _on_trading(self, _: OpportunityRejected) -> None:
        self._trading_events += 1

    def _on_submitted(self, order: OrderSubmitted) -> None:
        self._trading_events += 1
        self._in_flight[order.opportunity_id] = self._in_flight.get(order.opportunity_id, 0) + 1

    def _on_update(self, order: OrderUpdate) -> None:
        self._trading_events += 1
        in_flight = self._in_flight.get(order.opportunity_id)
        if in_flight:
            self._in_flight[order.opportunity_id] = in_flight - 1

    def _on_result(self, result: ArbResult) -> None:
        self._trading_events += 1
        self._in_flight.pop(result.opportunity_id, None)

    async def start(self) -> None:
        """Start replaying in a task; the engine is told to stop at the end of the data."""
        self._task = asyncio.get_running_loop().create_task(self._guard(), name="source:replay")

    async def stop(self) -> None:
        """Cancel the replay if it is still running and announce every venue stopped."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        now = self.ctx.clock.time_ns()
        for venue in self._markets:
            self.ctx.bus.publish(FeedStatus(venue=venue, status="stopped", ts_init=now), venue)

    def summary(self) -> dict[str, t.Any]:
        """Books published, records skipped (per file and reason), out-of-order books, first and
        last time."""
        files = [r.stats.to_dict(self.skipped.get(str(r.path))) for r in self.readers]
        reasons: dict[str, int] = {}
        for f in files:
            for reason, count in f["reasons"].items():
                reasons[reason] = reasons.get(reason, 0) + count
        return {
            "books_published": self.published,
            "markets_loaded": self.markets_published,
            "malformed": sum(f["malformed"] for f in files),
            "reasons": dict(sorted(reasons.items())),
            "out_of_order": self.out_of_order,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "files": files,
        }

    # -- markets ---------------------------------------------------------------------------------

    def _publish_markets(self, event: MarketsLoaded) -> None:
        venue = event.venue
        if venue not in self._markets:
            now = self.ctx.clock.time_ns()
            self.ctx.bus.publish(FeedStatus(venue=venue, status="connected", ts_init=now), venue)
        if self._fee is not None:
            event = msgspec.structs.replace(event, markets=tuple(
                msgspec.structs.replace(m, taker_fee=self._fee) for m in event.markets))
        self._markets.setdefault(venue, {}).update({m.symbol: m for m in event.markets})
        self._venue_staleness[venue] = event.staleness_ms
        self.markets_published += 1
        self.ctx.bus.publish(event, venue)

    def _derived(self, symbol: str) -> Market:
        base, _, quote = symbol.partition("/")  # readers only pass BASE/QUOTE symbols
        return Market(symbol=symbol, base=base, quote=quote, taker_fee=self._default_fee)

    def _announce_all(self) -> None:
        """One ``MarketsLoaded`` per venue of the files that do not announce their own markets."""
        found: dict[str, set[str]] = {}
        for reader in self.readers:
            for venue, symbols in (reader.symbols() or {}).items():
                found.setdefault(venue, set()).update(symbols)
        now = self.ctx.clock.time_ns()
        for venue in sorted(found):
            self._publish_markets(MarketsLoaded(
                venue=venue, markets=tuple(self._derived(s) for s in sorted(found[venue])), ts_init=now,
                staleness_ms=self._staleness_ms))

    def _announce(self, book: BookUpdate) -> None:
        """Add a market for a venue and symbol no announcement covered, and announce the venue again."""
        venue = book.venue
        markets = {**self._markets.get(venue, {}), book.symbol: self._derived(book.symbol)}
        self._publish_markets(MarketsLoaded(
            venue=venue, markets=tuple(markets.values()), ts_init=self.ctx.clock.time_ns(),
            staleness_ms=self._venue_staleness.get(venue, self._staleness_ms)))

    # -- the replay ------------------------------------------------------------------------------

    async def _guard(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = exc
            # an expected error (unreadable data) is one line for the user, not a traceback
            self.ctx.log.opt(exception=not isinstance(exc, ArbError)).error("replay failed: {}", exc)
            self.ctx.request_stop(f"replay failed: {exc}")
            return
        self.ctx.request_stop("replay: end of data")

    def _stream(self) -> c.Generator[list[Item], None, None]:
        """Batches of every file's events, merged by ``ts_init`` when there are several files."""
        sources = [self._timed(r) for r in self.readers]
        try:
            if len(sources) == 1:
                yield from sources[0]
                return
            merged = heapq.merge(*(itertools.chain.from_iterable(s) for s in sources),
                                 key=operator.attrgetter("ts_init"))
            while batch := list(itertools.islice(merged, BATCH)):
                yield batch
        finally:
            for source in sources:
                source.close()

    def _timed(self, reader: Reader) -> c.Generator[list[Item], None, None]:
        """``reader``'s batches with far-future books skipped and counted (``future``), before
        files are merged (a book a day ahead would otherwise hold its file back in the merge and
        make every later book of it stale).

        The file's clock is the receive time of its newest book. A book more than ``JUMP_NS``
        ahead of it (or a file's first book) is a jump: if most of the ``JUMP_WINDOW`` books after
        it are more than ``JUMP_NS`` below it, it is a record out of its place, skipped; otherwise
        (the data resumed after a gap, or later books agree) the clock moves on to it. A book
        below the clock is passed on (the replay publishes it late and counts it
        ``out_of_order``). Batches without a jump pass whole: the decoding process sends the newest
        receive time of each batch (``FileStats.newest``); for other readers one ``max`` finds it.
        """
        path = str(reader.path)
        stats = self.skipped[path] = FileStats(path, reader.format, 0)
        source = reader.batches()
        ts_of = operator.attrgetter("ts_init")
        clock: int | None = None
        held: list[Item] = []
        """Events read but not passed on yet: a jump waiting for the books after it."""
        ended = False
        try:
            while not ended:
                batch = next(source, None)
                if batch is None:
                    ended = True
                elif held:
                    held.extend(batch)
                else:
                    newest = reader.stats.newest
                    if newest is None:
                        newest = max(map(ts_of, batch))
                    if clock is not None and newest <= clock + JUMP_NS:
                        clock = max(clock, newest)
                        if path not in self.gave_books and any(e.__class__ is BookUpdate for e in batch):
                            self.gave_books.add(path)
                        yield batch
                        continue
                    held = batch
                out: list[Item] = []
                i, n = 0, len(held)
                while i < n:
                    event = held[i]
                    if event.__class__ is BookUpdate:
                        ts = event.ts_init
                        if clock is None or ts > clock + JUMP_NS:
                            if n - i - 1 < JUMP_WINDOW and not ended:
                                break  # decided once the books after it are read
                            if _far_ahead(held, i + 1, ts):
                                book = t.cast(BookUpdate, event)
                                stats.bad(0, "future", f"{book.venue} {book.symbol} received at {ts} ns, "
                                          f"over {JUMP_NS // 1_000_000_000} s after the books around it")
                                i += 1
                                continue
                            clock = ts
                        elif ts > clock:
                            clock = ts
                        self.gave_books.add(path)
                    out.append(event)
                    i += 1
                held = held[i:]
                if out:
                    yield out
        finally:
            source.close()

    async def _run(self) -> None:
        ctx = self.ctx
        bus, clock = ctx.bus, t.cast(SimClock, ctx.clock)
        publish, advance, next_timer = bus.publish, clock.advance_to, clock.next_timer_ns
        markets = self._markets
        total = sum(r.stats.size for r in self.readers)
        self._announce_all()
        now = first_ts = clock.time_ns()
        published = 0
        next_yield = 1
        stream = self._stream()
        try:
            for batch in stream:
                for event in batch:
                    if event.__class__ is not BookUpdate:
                        self._publish_markets(t.cast(MarketsLoaded, event))
                        continue
                    venue = event.venue
                    symbols = markets.get(venue)
                    if symbols is None or event.symbol not in symbols:
                        self._announce(event)
                    ts = event.ts_init
                    if not published:
                        first_ts = ts
                    if ts > now:
                        due = next_timer()
                        if due is not None and due <= ts:
                            await self._run_timers(ts)
                        advance(ts)
                        now = ts
                    elif ts < now:
                        self.out_of_order += 1
                    publish(event, venue)
                    published += 1
                    if self._activity:
                        self._activity = False
                        await self._settle()
                if published < next_yield:
                    continue
                next_yield = published + YIELD_EVERY
                self.published = published
                if self.progress is not None:
                    self.progress(sum(r.stats.done for r in self.readers), total)
                await bus.wait_ready()
                await asyncio.sleep(0)  # queued subscribers (storage) get their turn
        finally:
            self.published = published
            self.first_ts = first_ts if published else 0
            self.last_ts = now
            stream.close()
        await self._finish_in_flight()

    async def _run_timers(self, until: int) -> None:
        """Fire every timer due at or before ``until``, one wake-up time at a time, settling after each."""
        clock = t.cast(SimClock, self.ctx.clock)
        while (due := clock.next_timer_ns()) is not None and due <= until:
            clock.advance_to(due)
            await self._settle()

    async def _settle(self) -> None:
        """Give the loop turns until the trading released so far has settled, before time moves on.

        Settled (module doc): no sleeper is waking, every open arbitrage has an order in flight,
        and the last whole turn published no trading event. The quiet turn covers the one step
        between an ``OrderSubmitted`` and that order's task reaching its venue (its latency
        sleep): callbacks run in the order they were scheduled, on asyncio and uvloop alike, so a
        task scheduled by a step that published an event has run before the turn after next.
        """
        clock = t.cast(SimClock, self._clock)
        in_flight = self._in_flight
        seen = -1
        for _ in range(MAX_SETTLE_STEPS):
            if seen == self._trading_events and not clock.waking and all(in_flight.values()):
                return
            seen = self._trading_events
            await asyncio.sleep(0)
        self.ctx.log.warning("replay: trading did not settle within {} loop turns (open: {})",
                             MAX_SETTLE_STEPS, list(in_flight))

    async def _finish_in_flight(self) -> None:
        """After the last book: advance time through pending timers until no arbitrage is open."""
        clock = t.cast(SimClock, self.ctx.clock)
        await self._settle()
        for _ in range(MAX_END_STEPS):
            if not self._in_flight:
                return
            due = clock.next_timer_ns()
            if due is None:
                await self._settle()
                if self._in_flight and clock.next_timer_ns() is None:
                    self.ctx.log.warning("replay ended with arbitrages open and nothing to wait for: {}",
                                         list(self._in_flight))
                    return
                continue
            clock.advance_to(due)
            await self._settle()


def _far_ahead(events: list[Item], start: int, ts: int) -> bool:
    """Whether most of the ``JUMP_WINDOW`` books from ``start`` on were received more than
    ``JUMP_NS`` before ``ts`` (so a book at ``ts`` is out of its place); False with none after it."""
    below = above = 0
    for event in itertools.islice(events, start, None):
        if event.__class__ is not BookUpdate:
            continue
        if event.ts_init < ts - JUMP_NS:
            below += 1
        else:
            above += 1
        if below + above == JUMP_WINDOW:
            break
    return below > above
