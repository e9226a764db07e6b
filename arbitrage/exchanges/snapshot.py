"""One snapshot of live books from an exchange, for ``arb scan --exchange`` (one shot, no streams).

``fetch_venue`` makes the ccxt instance, loads the markets (``load_markets``, through the on-disk
cache), keeps the requested symbols the exchange has, fetches their books and closes it.

``fetch_books`` asks for every symbol's order book: with one ``fetch_order_books`` call where the
exchange has it, else ``fetch_order_book`` per symbol, at most ``concurrency`` requests at a time.
A book that fails ``arbitrage.book.check_book`` (the one check of every source), has one side
only, or is crossed (best bid at or above best ask) is not a market anyone can trade on: it is left
out and counted in ``skipped`` with the reason, as is a symbol whose request failed (classified by
``arbitrage.exchanges.check.classify``).
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import time
import typing as t

from arbitrage.book import check_book, is_crossed
from arbitrage.events import BookUpdate, Market
from arbitrage.exchanges.markets import load_markets, to_markets

if t.TYPE_CHECKING:
    from arbitrage.settings import CcxtSettings

__all__ = ["Snapshot", "VenueSnapshot", "fetch_books", "fetch_venue", "to_book"]


class Snapshot(t.NamedTuple):
    books: list[BookUpdate]
    skipped: dict[str, str]
    """Symbol -> why its book is not used (``empty``, ``crossed``, or the request's error)."""


def _levels(side: t.Any) -> tuple[tuple[float, float], ...]:
    """ccxt's levels (``[price, amount]``, Kraken's with a timestamp too) as float pairs."""
    return tuple((float(level[0]), float(level[1])) for level in side or ())


def to_book(venue: str, symbol: str, order_book: c.Mapping[str, t.Any], now_ns: int) -> BookUpdate | str:
    """ccxt's unified order book as a ``BookUpdate``, or why it cannot be scanned: a reason of
    ``arbitrage.book.check_book`` (``empty``, ``level``, ``unsorted``), ``one-sided`` or
    ``crossed``. Its time is the exchange's timestamp when it gives one, else our receive time."""
    try:
        bids, asks = _levels(order_book.get("bids")), _levels(order_book.get("asks"))
    except (TypeError, ValueError, IndexError):
        return "level"
    problem = check_book(bids, asks)
    if problem is not None:
        return problem
    if not bids or not asks:
        return "one-sided"
    if is_crossed(bids, asks):
        return "crossed"
    stamp = order_book.get("timestamp")
    ts = int(stamp) * 1_000_000 if stamp else now_ns
    return BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks, ts_event=ts, ts_init=now_ns)


async def fetch_books(exchange: t.Any, symbols: c.Sequence[str], *, depth: int, concurrency: int = 4,
                      venue: str | None = None) -> Snapshot:
    """The books of ``symbols`` on ``exchange`` (module doc); ``venue`` names them (default the
    exchange id). Exceptions other than a per-symbol request failure propagate (a
    ``fetch_order_books`` failure is the whole exchange's)."""
    from arbitrage.exchanges.check import classify, one_line

    venue = venue or exchange.id
    books: list[BookUpdate] = []
    skipped: dict[str, str] = {}

    def keep(symbol: str, order_book: c.Mapping[str, t.Any]) -> None:
        book = to_book(venue, symbol, order_book, time.time_ns())
        if isinstance(book, str):
            skipped[symbol] = book
        else:
            books.append(book)

    if exchange.has.get("fetchOrderBooks") and symbols:
        replies = await exchange.fetch_order_books(list(symbols), depth)
        for symbol in symbols:
            keep(symbol, replies.get(symbol) or {})
        return Snapshot(books, skipped)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(symbol: str) -> None:
        async with gate:
            try:
                order_book = await exchange.fetch_order_book(symbol, depth)
            except Exception as exc:  # one symbol's failure is reported, the others go on
                skipped[symbol] = f"{classify(exc)}: {one_line(exc)}"
                return
        keep(symbol, order_book)

    await asyncio.gather(*(one(symbol) for symbol in symbols))
    order = {symbol: i for i, symbol in enumerate(symbols)}
    books.sort(key=lambda book: order[book.symbol])
    return Snapshot(books, skipped)


class VenueSnapshot(t.NamedTuple):
    """One exchange's part of a live scan."""

    markets: tuple[Market, ...]
    """The requested symbols the exchange lists and arb can trade (``to_markets``)."""
    missing: dict[str, str]
    """Symbol -> why it is not scanned there (``not listed``, ...)."""
    snapshot: Snapshot


async def fetch_venue(name: str, section: CcxtSettings, symbols: c.Sequence[str], *, depth: int,
                      concurrency: int) -> VenueSnapshot:
    """Load ``name``'s markets (through the on-disk cache) and fetch the books of the ``symbols``
    it has. :raises ccxt.BaseError: when the markets cannot be loaded (the exchange is unusable)."""
    from arbitrage.exchanges.client import create_exchange

    exchange = create_exchange(name, section, pro=False)
    try:
        listed = await load_markets(exchange, section.markets_cache, section.markets_max_age_s)
        markets, missing = to_markets(listed, exchange.precisionMode, symbols)
        snapshot = await fetch_books(exchange, [m.symbol for m in markets], depth=depth,
                                     concurrency=concurrency, venue=name)
    finally:
        await exchange.close()
    return VenueSnapshot(markets, missing, snapshot)
