"""The ``redis_feed`` plugin: the engine role's market source, fed by collectors through Redis.

It finds the venues in the set ``<prefix>feeds`` (every ``redis.discover_s``) and reads each
venue's stream ``<prefix>feed:<venue>`` with one blocking ``XREAD`` over all of them, **starting
from now**: from the first entry written after the engine started (stream ids are Redis's clock in
milliseconds; the engine asks Redis for its ``TIME`` at start), however long discovery took, after
the venue's latest market list from before (the hash ``<prefix>markets:<venue>``; a list also in
the stream is simply published twice).

Every entry passes the gate of ``bridge.entries.Inbound`` (allowed types only, never an order;
never this run's own entries; the feed's own venue), refusals counted by reason and type, and a
collector's resent entries (a ``seq`` not above the last one of its run) are skipped. Every book
then passes ``sources.gate.BookGate`` (``check_book``; an exchange timestamp far ahead of our clock
or older than the venue's previous book of the symbol): a rejected book is counted in ``refused``
under its reason (type ``BookUpdate``) and in the summary's ``rejected``, logged at most once per
10 s, and never published. What is taken is published with ``ts_init`` set to now (when this
process got it: what its strategies, monitor and recordings time it by) and ``origin`` = the
collector's node, run, sequence number and ``ts_init``, so the monitor shows collector-to-engine
lag and the mirror never writes it back.

Latest value wins: a read that returns ``redis.read_count`` entries of a venue means the engine is
behind, and of that read only the newest book of each symbol is published (market lists and feed
status always are, in order); the others are counted as conflated.

Staleness follows the collector's exchange timestamps: a venue whose newest book carries a
``ts_event`` older than its staleness limit (its ``MarketsLoaded``) is marked ``FeedStatus``
``stale`` -- its collector went quiet, or Redis is down -- and ``connected`` again with its next
fresh book. The strategies already skip such books on their own; the status makes it visible.
"""

from __future__ import annotations

import asyncio
import collections
import typing as t

import msgspec

from arbitrage.bridge.entries import Inbound, Refused
from arbitrage.bridge.names import Names
from arbitrage.events import BookUpdate, Event, FeedStatus, MarketsLoaded, Origin
from arbitrage.plugin import Context, Plugin
from arbitrage.redact import redact_text
from arbitrage.sources.gate import BookGate

if t.TYPE_CHECKING:
    from arbitrage.bridge.link import Link

__all__ = ["RedisFeed"]

STALE_CHECK_S = 0.25
"""How often (run clock) venues are checked for staleness."""


class VenueFeed:
    """What the feed knows of one venue."""

    __slots__ = ("conflated", "events", "key", "lag_s", "name", "newest_ns", "node", "stale", "staleness_ns",
                 "status")

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key
        self.events = 0
        self.conflated = 0
        self.newest_ns = 0
        """Newest ``ts_event`` of its books (the collector's exchange time)."""
        self.staleness_ns = 0
        self.stale = False
        self.status = ""
        """The collector's last ``FeedStatus`` of it."""
        self.node = ""
        self.lag_s = 0.0


class RedisFeed(Plugin):
    """Books, market lists and feed status read from the collectors' Redis streams."""

    name = "redis_feed"
    kind = "source"
    description = "Engine role: books, market lists and feed status from the collectors' Redis streams."

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        cfg = self.cfg = ctx.settings.redis
        self.names = Names(cfg.prefix)
        self.inbound = Inbound(cfg.inbound, ctx.run_id)
        self.venues: dict[str, VenueFeed] = {}
        self.by_key: dict[bytes, VenueFeed] = {}
        self.positions: dict[str, bytes | str] = {}
        """Feed key -> id of the last entry read."""
        self.start_id = "0-0"
        """Every feed is read after this id: what was written since this engine started (``start``)."""
        self.last_seq: dict[tuple[str, str], int] = {}
        """(feed key, collector run) -> its last sequence number taken."""
        self.refused: collections.Counter[tuple[str, str]] = collections.Counter()
        """(reason, type) -> entries refused."""
        self.duplicates = 0
        self.gate = BookGate(ctx.log, "redis feed")
        """Books refused by ``sources.gate`` (also counted in ``refused``, type ``BookUpdate``)."""
        self.link: Link | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        from arbitrage.bridge.metrics import FeedCollector

        ctx.metrics.register(FeedCollector(self))

    async def start(self) -> None:
        """Connect, then read and watch.

        :raises PluginError: if Redis cannot be reached.
        """
        from arbitrage.bridge.link import Link

        self.link = Link(self.ctx, self.cfg, "feed", read_timeout_s=self.cfg.connect_timeout_s +
                         self.cfg.block_ms / 1000)
        await self.link.open()
        seconds, micros = await self.link.client.time()  # Redis's clock: stream ids are its milliseconds
        self.start_id = f"{seconds * 1000 + micros // 1000 - 1}-{2**64 - 1}"
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_loop(), name="redis:feed"),
                       loop.create_task(self._watch_loop(), name="redis:stale")]

    async def stop(self) -> None:
        """Stop reading; every venue's feed is ``stopped`` here."""
        from arbitrage.bridge.link import end_task

        self._stopping = True
        for task in self._tasks:
            await end_task(task, self.cfg.block_ms / 1000 + self.cfg.connect_timeout_s)
        self._tasks = []
        now = self.ctx.clock.time_ns()
        for venue in self.venues:
            self.ctx.bus.publish(FeedStatus(venue=venue, status="stopped", ts_init=now), venue)
        if self.link is not None:
            await self.link.close()

    def summary(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {
            "venues": sorted(self.venues), "events": sum(v.events for v in self.venues.values()),
            "conflated": sum(v.conflated for v in self.venues.values()), "duplicates": self.duplicates,
            "refused": sum(self.refused.values())}
        if self.gate.rejected:
            out["rejected"] = dict(sorted(self.gate.rejected.items()))
        if self.link is not None and self.link.outages:
            out.update(outages=self.link.outages, down_s=round(self.link.down_s, 3))
        return out

    # -- reading ---------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        from arbitrage.bridge.link import REDIS_ERRORS

        link, cfg = self.link, self.cfg
        assert link is not None
        loop = asyncio.get_running_loop()
        next_look = 0.0
        while not self._stopping:
            try:
                if loop.time() >= next_look:
                    next_look = loop.time() + cfg.discover_s
                    await self._discover()
                if not self.positions:
                    await asyncio.sleep(min(cfg.discover_s, cfg.block_ms / 1000))
                    continue
                reply = await link.client.xread(self.positions, count=cfg.read_count, block=cfg.block_ms)
            except REDIS_ERRORS as exc:
                link.lost(exc)
                await link.restore()
                next_look = 0.0
                continue
            except Exception as exc:  # e.g. a key that is not a stream: say so, try again later
                self.ctx.log.opt(exception=True).error("redis feed: read failed: {}", redact_text(repr(exc)))
                link.lost(exc)
                await asyncio.sleep(cfg.retry_max_s)
                await link.restore()
                continue
            for key, entries in (reply.items() if isinstance(reply, dict) else reply or ()):
                self._take(self.by_key[key], entries)

    async def _discover(self) -> None:
        """Start reading every venue that appeared in the feed set, from now, after its market list."""
        assert self.link is not None
        client = self.link.client
        members = await client.smembers(self.names.feeds)
        for raw in sorted(members):
            venue = raw.decode()
            if venue in self.venues:
                continue
            key = self.names.feed(venue)
            markets = await client.hgetall(self.names.markets(venue))
            feed = self.venues[venue] = VenueFeed(venue, key)
            self.by_key[key.encode()] = feed
            self.positions[key] = self.start_id
            self.ctx.log.info("redis feed: reading {}", venue)
            if markets:  # the market list from before we started (a newer one is also in the stream)
                self._take(feed, [(None, markets)])

    def _take(self, feed: VenueFeed, entries: list[tuple[bytes | None, dict[bytes, bytes]]]) -> None:
        """Gate, deduplicate and (when behind) conflate one read of a venue, then publish it."""
        behind = len(entries) >= self.cfg.read_count
        taken: list[tuple[Event, str, str, int]] = []
        newest: dict[str, int] = {}
        for entry_id, fields in entries:
            try:
                event, node, run, seq = self.inbound.decode(fields, feed.name)
            except Refused as refused:
                self.refused[(refused.reason, refused.type_name)] += 1
                continue
            finally:
                if entry_id is not None:
                    self.positions[feed.key] = entry_id
            if entry_id is not None:  # not the market list of the hash, which the stream may repeat
                last = self.last_seq.get((feed.key, run))
                if last is not None and seq <= last:
                    self.duplicates += 1
                    continue
                self.last_seq[(feed.key, run)] = seq
            kind = type(event)
            if kind is BookUpdate:
                book = t.cast(BookUpdate, event)
                # a collector dates a book the venue gave no timestamp for with its receive time
                problem = self.gate.check(feed.name, book.symbol, book.bids, book.asks, book.ts_event,
                                          self.ctx.clock.time_ns(), stamped=book.ts_event != book.ts_init)
                if problem is not None:
                    self.refused[(problem, "BookUpdate")] += 1
                    continue
                if behind:
                    newest[book.symbol] = len(taken)
            elif kind is FeedStatus and t.cast(FeedStatus, event).status in ("reconnecting", "error"):
                self.gate.forget(feed.name)  # the collector resubscribes: its books start afresh
            taken.append((event, node, run, seq))
        for i, (event, node, run, seq) in enumerate(taken):
            if behind and type(event) is BookUpdate and newest[event.symbol] != i:  # type: ignore[attr-defined]
                feed.conflated += 1
                continue
            self._publish(feed, event, node, run, seq)

    def _publish(self, feed: VenueFeed, event: Event, node: str, run: str, seq: int) -> None:
        now = self.ctx.clock.time_ns()
        sent = event.ts_init  # type: ignore[attr-defined]
        event = msgspec.structs.replace(event, ts_init=now,  # type: ignore[type-var]
                                        origin=Origin(node=node, run_id=run, seq=seq, ts_init=sent))
        feed.events += 1
        feed.node = node
        kind = type(event)
        if kind is BookUpdate:
            book = t.cast(BookUpdate, event)
            feed.lag_s = (now - sent) / 1e9
            if book.ts_event > feed.newest_ns:
                feed.newest_ns = book.ts_event
            if feed.stale and not self._too_old(feed, now):
                feed.stale = False
                self.ctx.bus.publish(FeedStatus(venue=feed.name, status="connected", ts_init=now,
                                                detail=f"fresh books again from collector {node}"), feed.name)
        elif kind is MarketsLoaded:
            feed.staleness_ns = int(t.cast(MarketsLoaded, event).staleness_ms * 1e6)
        elif kind is FeedStatus:
            feed.status = t.cast(FeedStatus, event).status
        self.ctx.bus.publish(event, feed.name)

    # -- staleness -------------------------------------------------------------------------------

    def _too_old(self, feed: VenueFeed, now: int) -> bool:
        return bool(feed.staleness_ns and feed.newest_ns and now - feed.newest_ns > feed.staleness_ns)

    async def _watch_loop(self) -> None:
        clock = self.ctx.clock
        while not self._stopping:
            await clock.sleep(STALE_CHECK_S)
            self.check_stale(clock.time_ns())

    def check_stale(self, now: int) -> None:
        """Mark ``stale`` every venue whose newest book is older than its limit (once per episode)."""
        for feed in self.venues.values():
            if feed.stale or feed.status == "stopped" or not self._too_old(feed, now):
                continue
            feed.stale = True
            age = (now - feed.newest_ns) / 1e9
            detail = (f"newest book from collector {feed.node or '?'} is {age:.1f} s old "
                      f"(limit {feed.staleness_ns / 1e9:g} s)")
            self.ctx.log.warning("redis feed: {} stale: {}", feed.name, detail)
            self.ctx.bus.publish(FeedStatus(venue=feed.name, status="stale", detail=detail, ts_init=now),
                                 feed.name)
