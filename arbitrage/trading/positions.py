"""The positions ledger: what arbitrages left open, per (venue, asset, quote), marked to market.

It exists so that exposure nobody could close is a number with a value, never a silent zero:
each position keeps its amount, what it cost and its mark, and is re-marked on the books of its
market while the engine runs (all of them at most once per ``remark_every_ns`` of the run's clock,
on the first book after that, and at stop: holding dust does not tax every book of a busy market). The
trader owns it; the executor opens positions from each arbitrage's residual (``apply``) and values
residuals with ``mark``; readers get copies through ``TradingState.positions`` and the
``PositionUpdate`` events it publishes.

Marks: a long is worth the venue's best bid, a short costs its best ask (before the closing
fee), read from the run's book store net of what our own fills took. A book that is missing,
older than the venue's staleness limit, crossed or empty on that side is not usable: the mark is
then the last known price of that venue's market (the last usable mark, or our last fill there)
and the position says ``stale``. A market may be quoted either way round (``asset/quote`` or
``quote/asset``). A venue with no market of that pair at all (ETH held on a venue that trades
ETH/BTC and BTC/USDT only) never gives a mark of 0: the position is marked through the run's
``Valuer``, via one intermediate asset, at the tops of the sides closing it would trade (a long
at the best path's bids, a short at its asks; that venue's books first), else at the mids of
the newest books, flagged ``stale``.

Accounting: a residual that adds to a position adds its amount and cost; one of the other sign
reduces it at its average cost and realizes ``-(closed share of the old cost + the new cost)``,
counted in the update's cumulative ``realized``. An update is published when an arbitrage
changes a position, and when a re-mark changes its mark (``flush`` re-marks and publishes what
is left at stop), so a held position does not cost an event per book.
"""

from __future__ import annotations

import collections.abc as c
import math
from dataclasses import dataclass

from msgspec.structs import replace

from arbitrage.book import EPS, check_book, is_crossed
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import BookUpdate, Fill, Position, PositionUpdate
from arbitrage.plugin import Books
from arbitrage.trading.risk import Markets
from arbitrage.valuation import Valuer

__all__ = ["Positions"]

Key = tuple[str, str, str]
"""(venue, asset, quote)."""


@dataclass(slots=True)
class _Entry:
    position: Position
    realized: float = 0.0
    published_ns: int = -1
    dirty: bool = False


class Positions:
    """The trader's ledger of open positions (one per venue, asset and quote currency).

    :param books: the run's book store; :param markets: venue -> symbol -> market;
    :param staleness_ms: venue -> staleness limit (a book older than it is not used for a mark).
    """

    remark_every_ns: int = 1_000_000_000
    """Least run-clock time between two re-mark updates of one position."""

    def __init__(self, *, bus: Bus, clock: Clock, books: Books, markets: Markets,
                 staleness_ms: c.Mapping[str, float]) -> None:
        self.bus = bus
        self.clock = clock
        self.books = books
        self.markets = markets
        self.staleness_ms = staleness_ms
        self._entries: dict[Key, _Entry] = {}
        self._valuer = Valuer(books.by_symbol, "")  # the currency is each position's quote
        self._due_ns = -1
        """When the positions are next re-marked (run clock)."""
        self._last: dict[tuple[str, str, bool], float] = {}
        """(venue, symbol, bid side) -> last known price: the last usable top of that side we marked
        at, or our last fill there (either side)."""

    # -- reading ---------------------------------------------------------------------------------

    def open(self) -> tuple[Position, ...]:
        """Every open (non-zero) position, by venue, asset, quote."""
        return tuple(e.position for _, e in sorted(self._entries.items()) if e.position.amount)

    def unrealized(self) -> dict[str, float]:
        """Unrealized profit per quote currency over the open positions."""
        out: dict[str, float] = {}
        for e in self._entries.values():
            if e.position.amount:
                out[e.position.quote] = out.get(e.position.quote, 0.0) + e.position.unrealized
        return out

    def realized(self) -> dict[str, float]:
        """Profit realized by reducing positions, per quote currency (not in any ``ArbResult``)."""
        out: dict[str, float] = {}
        for e in self._entries.values():
            if e.realized:
                out[e.position.quote] = out.get(e.position.quote, 0.0) + e.realized
        return out

    def mark(self, venue: str, asset: str, quote: str, amount: float) -> tuple[float, bool]:
        """The mark of ``amount`` of ``asset`` on ``venue`` in ``quote``: (price, stale).

        Best bid for a long, best ask for a short, of a usable book (module doc); otherwise the
        last known price, ``stale`` True; with no price of an ``asset``/``quote`` market on the
        venue, through the ``Valuer`` (module doc); (0.0, True) only when nothing links them.
        """
        for symbol, inverted in self._symbols(venue, asset, quote):
            sell = (amount > 0) != inverted
            price = self._top(venue, symbol, sell=sell)
            if price is not None:
                self._last[(venue, symbol, sell)] = price
                return (1.0 / price if inverted else price), False
        for symbol, inverted in self._symbols(venue, asset, quote):
            sell = (amount > 0) != inverted
            # the newest price known: that side of a book too old to trade on, else our last mark
            price = self._top(venue, symbol, sell=sell, fresh=False) or self._last.get((venue, symbol, sell))
            if price:
                return (1.0 / price if inverted else price), True
        price = self._valuer.price(asset, quote, sell=amount > 0, prefer=venue,
                                   top=lambda v, symbol, bid: self._top(v, symbol, sell=bid))
        if price is not None:
            return price, False
        price = self._valuer.price(asset, quote)
        return (price, True) if price is not None else (0.0, True)

    def _symbols(self, venue: str, asset: str, quote: str) -> list[tuple[str, bool]]:
        """The markets of ``venue`` that price ``asset`` in ``quote``: (symbol, quoted inverted)."""
        return [(m.symbol, m.base == quote) for m in self.markets.get(venue, {}).values()
                if (m.base, m.quote) in ((asset, quote), (quote, asset))]

    def _top(self, venue: str, symbol: str, *, sell: bool, fresh: bool = True) -> float | None:
        """Best bid (``sell``) or ask of a usable book, net of our fills; None if not usable: crossed,
        or malformed (a source that did not check it: a NaN ask never becomes a mark, and the bids
        of such a record are not trusted either, as in ``SoundBooks``) (``fresh=False``: a book
        older than the venue's staleness limit is used too)."""
        book = self.books.get(venue, symbol)
        if book is None or is_crossed(book.bids, book.asks):
            return None
        if check_book(book.bids, book.asks) is not None:
            return None
        if fresh and self.clock.time_ns() - book.ts_event > self.staleness_ms.get(venue, math.inf) * 1e6:
            return None
        levels = self.books.levels(venue, symbol, "bids" if sell else "asks")
        return levels[0][0] if levels else None

    # -- changing --------------------------------------------------------------------------------

    def apply(self, positions: c.Iterable[Position]) -> None:
        """Add an arbitrage's residual positions to the ledger and publish each changed position."""
        for p in positions:
            key = (p.venue, p.asset, p.quote)
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(p)
            else:
                entry.position, realized = _combine(entry.position, p)
                entry.realized += realized
                if entry.position.amount:
                    mark, stale = self.mark(p.venue, p.asset, p.quote, entry.position.amount)
                    entry.position = replace(entry.position, mark=mark, stale=stale)
            self._publish(entry)

    def on_book(self, book: BookUpdate) -> None:
        """Re-mark every open position once ``remark_every_ns`` has passed since the last re-mark
        (inline ``BookUpdate`` handler: a clock read and a comparison for any other book)."""
        if not self._entries:
            return
        now = self.clock.time_ns()
        if now < self._due_ns:
            return
        self._due_ns = now + self.remark_every_ns
        for entry in self._entries.values():
            self._remark(entry, now)

    def _remark(self, entry: _Entry, now: int) -> None:
        """Mark one position on the current books; publish it if the mark changed."""
        p = entry.position
        if not p.amount:
            return
        mark, stale = self.mark(p.venue, p.asset, p.quote, p.amount)
        if (mark, stale) == (p.mark, p.stale):
            return
        entry.position = replace(p, mark=mark, stale=stale)
        entry.dirty = True
        if now - entry.published_ns >= self.remark_every_ns:
            self._publish(entry)

    def on_fill(self, fill: Fill) -> None:
        """Remember the fill's price as its market's last known price (inline ``Fill`` handler)."""
        for bid_side in (True, False):
            self._last[(fill.venue, fill.symbol, bid_side)] = fill.price

    def flush(self) -> None:
        """Re-mark every position on the last books and publish each changed since its last update
        (at stop)."""
        now = self.clock.time_ns()
        for entry in self._entries.values():
            self._remark(entry, now)
            if entry.dirty:
                self._publish(entry)

    def _publish(self, entry: _Entry) -> None:
        now = self.clock.time_ns()
        entry.published_ns, entry.dirty = now, False
        self.bus.publish(PositionUpdate(position=entry.position, realized=entry.realized, ts_init=now))


def _combine(old: Position, new: Position) -> tuple[Position, float]:
    """``old`` with ``new`` added at average cost: (the position after, profit realized)."""
    if old.amount * new.amount >= 0:  # same side (or old flat): amounts and costs add up
        return replace(old, amount=old.amount + new.amount, cost=old.cost + new.cost,
                        mark=new.mark, stale=new.stale), 0.0
    closed = min(abs(old.amount), abs(new.amount))
    old_share = old.cost * closed / abs(old.amount)
    new_share = new.cost * closed / abs(new.amount)
    amount = old.amount + new.amount
    if abs(amount) < EPS:
        amount = 0.0
    # what is left keeps the cost of the side it is on
    cost = (old.cost - old_share) if abs(old.amount) > abs(new.amount) else (new.cost - new_share)
    return replace(old, amount=amount, cost=cost if amount else 0.0), -(old_share + new_share)
