"""One exchange's order books on the bus, through ccxt.pro (or ccxt REST), reconnecting for ever.

``VenueFeed.run`` is the venue's one task:

1. **Markets.** ``load_markets`` (on-disk cache, ``arbitrage.exchanges.markets``), then one
   ``MarketsLoaded`` with the configured symbols the venue has; each symbol it lacks is logged
   once as a warning and left out.
2. **Books.** ``watch_order_book_for_symbols`` where the exchange has it, else one
   ``watch_order_book`` per symbol (``watch_each``); ``fetch_order_book`` polled every
   ``rest_interval_s`` with ``[ccxt] rest`` or when the exchange streams no books. Each book becomes
   a ``BookUpdate`` of the best ``depth`` levels a side: ``ts_event`` the exchange's timestamp
   (ccxt's ``timestamp``; **our receive time when the venue gives none**, e.g. Binance's REST depth
   and the first book after its snapshot), ``ts_init`` our receive time (the run clock), ``seq``
   ccxt's ``nonce`` where the venue numbers its states (Binance's update id), else 0. Before it is
   published every book passes ``sources.gate.BookGate``: ``check_book``, an exchange timestamp at
   most 5 s ahead of our clock and not older than the symbol's previous one; a book that fails, or
   whose cells, timestamp or nonce cannot be read, is rejected, counted by reason (``summary``'s
   ``rejected``) and logged at most once per 10 s. Nothing in a book raises out of the feed. A
   book with one side only passes the gate and is skipped (``one_sided_skipped``).
3. **Staleness.** A book older than the venue's limit (``now - ts_event``) is announced with
   ``FeedStatus(stale, symbol)`` and ``connected`` again on its next fresh book; the book store and
   the paper venue refuse it by age anyway.
4. **Failures.** Every ccxt error is retried by tenacity after an exponential backoff with jitter,
   or after what the exchange asked (``Retry-After``, a 418 ban: then the shared request budget
   holds every request of that exchange, orders included). ``FeedStatus`` ``reconnecting`` (network
   errors, a sequence gap or bad checksum, a rate limit) or ``error`` (anything else ccxt raised)
   is published before the wait, and the engine's book store drops the venue's books until fresh
   ones arrive: nothing is traded on a book that is being resynced. The first book after it is
   ``connected``. An error that is not ccxt's is a bug: logged with its traceback, ``error``, and
   the venue stops.

Resubscribing fetches REST snapshots (Binance: one per symbol): it takes one of the process's
``max_resyncs`` slots until every symbol has its first book again (or ``timeout_ms`` passed), and
its requests from the budget. Market data asks the budget at ``data`` priority: orders go first.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing as t

from arbitrage.errors import ArbError
from arbitrage.events import BookUpdate, FeedStatus, MarketsLoaded
from arbitrage.exchanges.backoff import Backoff, is_rate_limit, is_resync, retry_after_s, retrying
from arbitrage.exchanges.client import create_exchange, has_websocket_books, rest_depth, ws_depth
from arbitrage.exchanges.markets import load_markets, to_markets
from arbitrage.redact import redact_text
from arbitrage.sources.gate import BookGate

if t.TYPE_CHECKING:
    import collections.abc as c

    from arbitrage.plugin import Context, RequestBudget

__all__ = ["VenueFeed", "watch_each"]

Status = t.Literal["connected", "reconnecting", "stale", "stopped", "error"]
_COUNT_MAX = 2**62
DETAIL_CHARS = 240
"""Longest error text put in a ``FeedStatus`` (a 5xx answer can be a whole HTML page)."""


def _count(value: object) -> bool:
    """Whether ``value`` is a ccxt timestamp or nonce we can use: None, or a whole number in
    [0, 2**62) (an int, or a float holding one)."""
    if value is None:
        return True
    if type(value) is float:
        return value.is_integer() and 0.0 <= value < _COUNT_MAX
    return type(value) is int and 0 <= value < _COUNT_MAX


async def watch_each(exchange: t.Any, symbols: c.Sequence[str], limit: int | None,
                     ) -> c.AsyncIterator[dict[str, t.Any]]:
    """Books of ``symbols`` as each changes, from one ``watch_order_book`` per symbol (for
    exchanges without ``watch_order_book_for_symbols``). The first failure is raised after the
    other watches are cancelled."""
    pending = {asyncio.ensure_future(exchange.watch_order_book(s, limit)): s for s in symbols}
    try:
        while True:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                symbol = pending.pop(future)
                book = future.result()  # raises the watch's error
                pending[asyncio.ensure_future(exchange.watch_order_book(symbol, limit))] = symbol
                yield book
    finally:
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class _Slot:
    """One of the process's resync slots, given back once (or after ``timeout_s``)."""

    def __init__(self, semaphore: asyncio.Semaphore, timeout_s: float) -> None:
        self._semaphore = semaphore
        self._held = True
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self.release)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._timer.cancel()
            self._semaphore.release()


class VenueFeed:
    """The books of one exchange (module doc). ``run`` until cancelled; figures in ``summary``."""

    def __init__(self, name: str, ctx: Context, resyncs: asyncio.Semaphore) -> None:
        self.name = name
        self.ctx = ctx
        self.section = section = ctx.settings.ccxt
        self.resyncs = resyncs
        self.staleness_ms = section.staleness_of(name)
        self._staleness_ns = int(self.staleness_ms * 1e6)
        self.depth = section.depth
        self.backoff = Backoff(section.backoff_initial_s, section.backoff_max_s)
        self.symbols: tuple[str, ...] = ()
        self.missing: dict[str, str] = {}
        self.status: Status | None = None
        """The venue-wide state last announced."""
        self.books = self.failures = self.resubscribes = self.skipped = 0
        self.gate = BookGate(ctx.log, f"{name} feed")
        """Books rejected, by reason (``sources.gate``)."""
        self._last: dict[str, int] = {}
        """Symbol -> ``ts_event`` of its latest book since the last (re)connection."""
        self._stale: set[str] = set()
        self._pending: set[str] = set()
        """Symbols still without a book since the last subscription (their resync slot is held)."""
        self._slot: _Slot | None = None
        self.exchange: t.Any = None
        self.budget: RequestBudget | None = None

    # -- the task ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Load markets and publish books until cancelled; the exchange is closed on the way out."""
        try:
            self.exchange = create_exchange(self.name, self.ctx.settings, pro=True)
        except ArbError as exc:
            self.ctx.log.error("{}: {}", self.name, exc)
            self._announce("error", detail=str(exc))
            return
        exchange = self.exchange
        try:
            per_s = 1000.0 / max(float(exchange.rateLimit), 1.0)  # ccxt's rateLimit: ms between requests
            self.budget = self.ctx.budgets.for_exchange(self.name, per_s)
            await self._retry(self._load)
            if not self.symbols:
                self.ctx.log.error("{}: none of the configured symbols is listed there", self.name)
                self._announce("error", detail="none of the configured symbols is listed here")
                return
            rest = self.section.rest or not has_websocket_books(exchange)
            watcher = asyncio.get_running_loop().create_task(self._watch_staleness())
            try:
                await self._retry(self._poll if rest else self._stream)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        except Exception as exc:  # a bug, not the exchange: say so and stop this venue
            self.ctx.log.opt(exception=True).error("{}: the feed failed", self.name)
            self._announce("error", detail=self._text(exc))
        finally:
            self._release_slot()
            await exchange.close()

    async def _retry(self, step: c.Callable[[], c.Awaitable[None]]) -> None:
        async for attempt in retrying(self._wait, self._before_sleep):
            with attempt:
                await step()

    def _wait(self, error: BaseException) -> float:
        self.failures += 1
        asked = retry_after_s(self.exchange, error)
        if asked and self.budget is not None:
            self.budget.hold(asked)  # a rate limit or ban holds every request to this exchange
        return self.backoff.next_wait(asked)

    def _before_sleep(self, error: BaseException, seconds: float) -> None:
        import ccxt

        self._release_slot()
        status: Status = "reconnecting" if isinstance(error, ccxt.NetworkError) else "error"
        why = "resync" if is_resync(error) else "rate limit" if is_rate_limit(error) else type(error).__name__
        detail = f"{why}: {self._text(error)}; retrying in {seconds:.2f} s"
        self.ctx.log.warning("{}: {}", self.name, detail)
        self._last.clear()
        self._stale.clear()
        self.gate.forget(self.name)
        self._announce(status, detail=detail)

    # -- markets ----------------------------------------------------------------------------------

    async def _load(self) -> None:
        assert self.budget is not None
        await self.budget.acquire("data")
        section = self.section
        markets = await load_markets(self.exchange, section.markets_cache, section.markets_max_age_s)
        found, self.missing = to_markets(markets, self.exchange.precisionMode, section.symbols)
        for symbol, why in self.missing.items():  # once: a successful load is not repeated
            self.ctx.log.warning("{}: {} is not watched there ({})", self.name, symbol, why)
        self.symbols = tuple(m.symbol for m in found)
        self.ctx.bus.publish(MarketsLoaded(venue=self.name, markets=found, staleness_ms=self.staleness_ms,
                                           ts_init=self.ctx.clock.time_ns()), self.name)

    # -- books --------------------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        """Take a resync slot and the budget for one snapshot per symbol before (re)subscribing."""
        assert self.budget is not None
        await self.resyncs.acquire()
        self._slot = _Slot(self.resyncs, self.section.timeout_ms / 1000.0)
        self._pending = set(self.symbols)
        await self.budget.acquire("data", float(len(self.symbols)))
        self.resubscribes += 1

    def _release_slot(self) -> None:
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    async def _stream(self) -> None:
        exchange, symbols = self.exchange, list(self.symbols)
        limit = ws_depth(self.name, self.depth)
        await self._subscribe()
        if exchange.has.get("watchOrderBookForSymbols"):
            while True:
                self._publish(await exchange.watch_order_book_for_symbols(symbols, limit))
                await self.ctx.bus.wait_ready()
        async for book in watch_each(exchange, symbols, limit):
            self._publish(book)
            await self.ctx.bus.wait_ready()

    async def _poll(self) -> None:
        assert self.budget is not None
        limit = rest_depth(self.name, self.depth)
        clock = self.ctx.clock
        while True:
            started = clock.time_ns()
            for symbol in self.symbols:
                await self.budget.acquire("data")
                async with self.resyncs:  # a REST snapshot: counted with the resyncs
                    book = await self.exchange.fetch_order_book(symbol, limit)
                self._publish(book)
                await self.ctx.bus.wait_ready()
            left = self.section.rest_interval_s - (clock.time_ns() - started) / 1e9
            await clock.sleep(max(left, 0.0))

    def _publish(self, book: c.Mapping[str, t.Any]) -> None:
        """Publish one ccxt order book, or reject it (``sources.gate``): never raises on its cells."""
        now = self.ctx.clock.time_ns()
        parsed = self._parse(book, now)
        if isinstance(parsed, tuple):  # the symbol and why: rejected before the gate
            self.gate.reject(self.name, *parsed)
            return
        if self.gate.check(self.name, parsed.symbol, parsed.bids, parsed.asks, parsed.ts_event, now,
                           stamped=bool(book.get("timestamp"))):
            return
        if not parsed.bids or not parsed.asks:
            self.skipped += 1  # a one-sided book cannot be priced: wait for the next
            return
        symbol, ts_event = parsed.symbol, parsed.ts_event
        if self.status != "connected":  # announced before the book it comes with
            self.backoff.reset()
            self._announce("connected")
        self.ctx.bus.publish(parsed, self.name)
        self.books += 1
        self._last[symbol] = ts_event
        if self._pending:
            self._pending.discard(symbol)
            if not self._pending:
                self._release_slot()
        if symbol in self._stale and now - ts_event <= self._staleness_ns:
            self._stale.discard(symbol)
            self._announce("connected", symbol)

    def _parse(self, book: c.Mapping[str, t.Any], now: int) -> BookUpdate | tuple[str, str, str]:
        """ccxt's order book as a ``BookUpdate`` of the best ``depth`` levels (not yet checked), or
        ``(symbol, reason, detail)`` when its fields cannot be read. ``ts_event`` is ``now`` when
        the venue gave no timestamp."""
        symbol = book.get("symbol") if isinstance(book, dict) else None
        if not isinstance(symbol, str) or symbol not in self.symbols:
            return str(symbol)[:40], "schema", f"symbol {str(symbol)[:40]!r} is not watched here"
        depth = self.depth
        try:
            bids = tuple((float(level[0]), float(level[1])) for level in book["bids"][:depth])
            asks = tuple((float(level[0]), float(level[1])) for level in book["asks"][:depth])
        except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
            return symbol, "level", f"{type(exc).__name__}: {str(exc)[:80]}"
        stamp, nonce = book.get("timestamp"), book.get("nonce")
        if not (_count(stamp) and _count(nonce)):
            return symbol, "timestamp", f"timestamp {str(stamp)[:30]!r}, nonce {str(nonce)[:30]!r}"
        return BookUpdate(venue=self.name, symbol=symbol, bids=bids, asks=asks,
                          ts_event=int(stamp) * 1_000_000 if stamp else now, ts_init=now, seq=int(nonce or 0))

    async def _watch_staleness(self) -> None:
        clock, limit = self.ctx.clock, self._staleness_ns
        period = min(max(self.staleness_ms / 4000.0, 0.05), 1.0)
        while True:
            await clock.sleep(period)
            now = clock.time_ns()
            for symbol, ts_event in self._last.items():
                if symbol not in self._stale and now - ts_event > limit:
                    self._stale.add(symbol)
                    self._announce("stale", symbol, f"newest book {(now - ts_event) / 1e6:.0f} ms old")

    # -- announcements ------------------------------------------------------------------------------

    def _announce(self, status: Status, symbol: str = "", detail: str = "") -> None:
        if not symbol:
            self.status = status
        self.ctx.bus.publish(FeedStatus(venue=self.name, status=status, symbol=symbol, detail=detail,
                                        ts_init=self.ctx.clock.time_ns()), self.name)

    @staticmethod
    def _text(error: BaseException) -> str:
        text = redact_text(" ".join(str(error).split()) or type(error).__name__)
        return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS - 1] + "…"

    def summary(self) -> dict[str, t.Any]:
        return {"symbols": list(self.symbols), "missing": dict(self.missing), "books": self.books,
                "failures": self.failures, "subscriptions": self.resubscribes, "status": self.status or "",
                "one_sided_skipped": self.skipped, "rejected": dict(sorted(self.gate.rejected.items()))}
