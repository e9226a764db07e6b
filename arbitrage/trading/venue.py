"""The venue interface: what the executor needs from a place that fills orders, paper or live.

A venue takes IOC limit orders (``OrderRequest``) and answers with what happened
(``OrderResult``). Expected refusals (no balance, stale book, below the market minimum) are
results with ``status="rejected"`` and a ``reason``, never exceptions; an exception from
``submit`` means the venue itself failed and the order's fate is unknown.

Two helpers live here because every venue and the executor must agree on them:

* ``balance_deltas`` / ``ledger`` -- what filled orders do to balances (one rule, used by the
  paper venue to move money and by the executor to account for it, so the two cannot drift apart);
* ``BookView`` -- the latest books minus the liquidity we already took from them, so a second
  order does not count on a level the first one emptied.
"""

from __future__ import annotations

import abc
import collections.abc as c
import typing as t
from collections import defaultdict

import msgspec

from arbitrage.events import BookUpdate, Level, Market, Side

OrderStatus = t.Literal["filled", "partially_filled", "canceled", "rejected"]
"""``canceled``: accepted but nothing matched before the IOC expired."""
Purpose = t.Literal["leg", "hedge", "unwind"]
BookSide = t.Literal["bids", "asks"]

FILL_TOLERANCE = 1e-9
"""Relative shortfall below which an order counts as fully filled (float noise, not liquidity)."""


class OrderRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One immediate-or-cancel limit order, as the executor wants it sent."""

    client_order_id: str
    """Unique and deterministic: derived from the opportunity id, never reused for a retry."""
    opportunity_id: str
    venue: str
    symbol: str
    side: Side
    amount: float
    """Base amount; the venue rounds it down to the market's amount step."""
    price: float
    """Limit: worst acceptable price."""
    purpose: Purpose = "leg"


class VenueFill(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One execution of an order against one book level."""

    price: float
    amount: float
    fee: float
    fee_currency: str
    ts_event: int


class OrderResult(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The final state of an IOC order, as the venue reports it."""

    client_order_id: str
    status: OrderStatus
    amount: float = 0.0
    """Amount the venue accepted after precision rounding (0 when rejected before that)."""
    filled: float = 0.0
    notional: float = 0.0
    """Sum of price * amount over the fills, before fees, in the market's quote currency."""
    average_price: float = 0.0
    fee: float = 0.0
    fee_currency: str = ""
    fills: tuple[VenueFill, ...] = ()
    reason: str = ""
    """Why it was rejected or canceled; empty when it filled."""
    ts_event: int = 0


def balance_deltas(side: Side, market: Market, filled: float, notional: float, fee: float,
                   fee_currency: str) -> dict[str, float]:
    """Change of each asset's balance caused by a fill: the one accounting rule of the trading module.

    A buy adds ``filled`` base and spends ``notional`` quote; a sell the reverse; the fee is then
    taken from ``fee_currency`` (the quote on paper venues, so a buy costs ``notional + fee``
    and a sell yields ``notional - fee``).
    """
    sign = 1.0 if side == "buy" else -1.0
    deltas = {market.base: sign * filled, market.quote: -sign * notional}
    if fee:
        deltas[fee_currency or market.quote] = deltas.get(fee_currency or market.quote, 0.0) - fee
    return deltas


Order = tuple[OrderRequest, OrderResult]
"""An order as sent and as it ended."""


def ledger(orders: c.Iterable[Order],
           markets: c.Mapping[str, c.Mapping[str, Market]]) -> dict[tuple[str, str], float]:
    """Balance change per (venue, asset) caused by ``orders`` (``markets``: venue -> symbol -> market).

    Realized profit is read from this, not from before/after balance snapshots, so arbitrages
    running at the same time on the same venues cannot bleed into each other's figures.
    """
    out: dict[tuple[str, str], float] = defaultdict(float)
    for request, result in orders:
        market = markets.get(request.venue, {}).get(request.symbol)
        if result.filled <= 0 or market is None:
            continue
        deltas = balance_deltas(request.side, market, result.filled, result.notional, result.fee,
                                result.fee_currency)
        for asset, delta in deltas.items():
            out[(request.venue, asset)] += delta
    return dict(out)


def net_by_asset(changes: c.Mapping[tuple[str, str], float]) -> dict[str, float]:
    """Sum a per-(venue, asset) ledger over venues."""
    out: dict[str, float] = defaultdict(float)
    for (_, asset), delta in changes.items():
        out[asset] += delta
    return dict(out)


class Venue(abc.ABC):
    """A place that fills orders. Paper venues simulate one; a live ccxt venue will wrap a real one.

    Calls come from the event loop's thread only.
    """

    name: str

    @abc.abstractmethod
    async def submit(self, order: OrderRequest) -> OrderResult:
        """Send one IOC limit order and return its final state.

        Must not raise for expected refusals (return ``status="rejected"`` with a reason). The
        caller publishes ``OrderSubmitted`` before calling this and never resubmits the same
        ``client_order_id``.
        """

    @abc.abstractmethod
    def balances(self) -> dict[str, float]:
        """Free balance per asset (a copy the caller may keep)."""

    @abc.abstractmethod
    async def cancel_all(self) -> None:
        """Cancel every open order of ours on this venue (IOC orders normally leave none)."""


class BookView:
    """Latest book per (venue, symbol), minus the liquidity our own fills took from it.

    A venue's snapshot keeps showing a level we emptied until the venue sends a new one. Taken
    amounts are kept per level (price) together with the level's size when we took from it; when a
    new snapshot arrives, a level's taken amount survives only if that level is still there with
    exactly the same size, because any change means the venue has published a fresh state of it.
    ``update`` runs for every book: two lookups and a store (books are kept per venue, then per
    symbol, so no key is built) unless we traded on that book since its last snapshot.
    """

    def __init__(self) -> None:
        self._books: dict[str, dict[str, BookUpdate]] = {}
        self._taken: dict[tuple[str, str], dict[tuple[BookSide, float], tuple[float, float]]] = {}

    def update(self, book: BookUpdate) -> None:
        """Store a new snapshot and forget what was taken from levels it changed."""
        venue = self._books.get(book.venue)
        if venue is None:
            venue = self._books[book.venue] = {}
        venue[book.symbol] = book
        if not self._taken:
            return
        key = (book.venue, book.symbol)
        taken = self._taken.get(key)
        if taken:
            sizes = {"bids": dict(book.bids), "asks": dict(book.asks)}
            kept = {k: v for k, v in taken.items() if sizes[k[0]].get(k[1]) == v[0]}
            if kept:
                self._taken[key] = kept
            else:
                del self._taken[key]

    def get(self, venue: str, symbol: str) -> BookUpdate | None:
        """The latest snapshot as the venue published it, or None."""
        return self._books.get(venue, {}).get(symbol)

    def levels(self, venue: str, symbol: str, side: BookSide) -> list[Level]:
        """One side of the latest book, best first, with our taken amounts removed (empty levels dropped)."""
        book = self._books.get(venue, {}).get(symbol)
        if book is None:
            return []
        raw = book.bids if side == "bids" else book.asks
        taken = self._taken.get((venue, symbol))
        if not taken:
            return list(raw)
        out: list[Level] = []
        for price, size in raw:
            used = taken.get((side, price))
            left = size - used[1] if used is not None and used[0] == size else size
            if left > 1e-12:
                out.append((price, left))
        return out

    def take(self, venue: str, symbol: str, side: BookSide, price: float, amount: float) -> None:
        """Record that one of our fills took ``amount`` at ``price`` from the current snapshot."""
        book = self._books.get(venue, {}).get(symbol)
        if book is None:
            return
        size = dict(book.bids if side == "bids" else book.asks).get(price)
        if size is None:
            return  # filled at a price the snapshot does not show: nothing visible to reduce
        taken = self._taken.setdefault((venue, symbol), {})
        level_size, used = taken.get((side, price), (size, 0.0))
        if level_size != size:
            used = 0.0
        taken[(side, price)] = (size, min(size, used + amount))

    def taken(self) -> dict[tuple[str, str], dict[str, float]]:
        """Amounts currently taken, per (venue, symbol) and ``side@price``: for tests and debugging."""
        out: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for key, levels in self._taken.items():
            for (side, price), (_, used) in levels.items():
                out[key][f"{side}@{price}"] = used
        return dict(out)
