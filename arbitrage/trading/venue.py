"""The venue interface: what the executor needs from a place that fills orders, paper or live.

A venue takes IOC limit orders (``OrderRequest``) and answers with what happened
(``OrderResult``). Expected refusals (no balance, stale book, below the market minimum) are
results with ``status="rejected"`` and a ``reason``, never exceptions. An order whose fate the
venue could not learn (its answer was lost and the venue's own lookups by client order id did not
find out) is a result with ``status="unknown"``; so is an exception from ``submit``. Such an order
is never sent again: the executor asks ``resolve`` until the venue knows.

``balance_deltas`` / ``order_deltas`` / ``ledger`` live here because every venue and the executor
must agree on them: what filled orders do to balances (one rule, used by the paper venue to move money and by
the executor to account for it, so the two cannot drift apart). The books every venue and the
executor read, net of the liquidity our fills took, are the run's one book store
(``arbitrage.book.BookStore``, ``Context.books``).
"""

from __future__ import annotations

import abc
import collections.abc as c
import typing as t
from collections import defaultdict

import msgspec

from arbitrage.events import Market, Side

OrderStatus = t.Literal["filled", "partially_filled", "canceled", "rejected", "unknown"]
"""``canceled``: accepted but nothing matched before the IOC expired. ``unknown``: sent, but whether
the venue has it (and what filled) could not be learnt yet; never a final state."""
Purpose = t.Literal["leg", "hedge", "unwind"]

FILL_TOLERANCE = 1e-9
"""Relative shortfall below which an order counts as fully filled (float noise, not liquidity)."""


class OrderRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One immediate-or-cancel limit order, as the executor wants it sent."""

    client_order_id: str
    """What the venue sees: derived from ``label`` (``trading.ids``), never reused for a retry."""
    opportunity_id: str
    venue: str
    symbol: str
    side: Side
    amount: float
    """Base amount; the venue rounds it down to the market's amount step."""
    price: float
    """Limit: worst acceptable price."""
    purpose: Purpose = "leg"
    label: str = ""
    """The readable name the id derives from: ``{opportunity id}-L{i}`` / ``-H{n}`` / ``-U{n}``."""


class VenueFill(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One execution of an order against one book level."""

    price: float
    amount: float
    fee: float
    fee_currency: str
    ts_event: int
    trade_id: str = ""
    """The venue's id of this execution ('' where it gives none, as a paper venue): with the order's
    client id it identifies the fill, so storage keeps each one once however often it is read."""


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
    """What the order paid in ``fee_currency`` (the market's base or quote as the venue charges it).
    A fill charged in another currency (Binance's BNB) is not in it: its fee is in ``fills`` with
    its own currency (``other_fees``), so no number here mixes two currencies."""
    fee_currency: str = ""
    fills: tuple[VenueFill, ...] = ()
    reason: str = ""
    """Why it was rejected or canceled; empty when it filled."""
    ts_event: int = 0
    venue_order_id: str = ""
    """The venue's own id of the order (live venues), for the database and lookups."""


def balance_deltas(side: Side, market: Market, filled: float, notional: float, fee: float,
                   fee_currency: str) -> dict[str, float]:
    """Change of each asset's balance caused by a fill: the one accounting rule of the trading module.

    A buy adds ``filled`` base and spends ``notional`` quote; a sell the reverse; the fee is then
    taken from ``fee_currency`` (empty: the quote), where the venue charged it
    (``Market.fee_side``): in quote a buy costs ``notional + fee`` and a sell yields
    ``notional - fee``; in base a buy receives ``filled - fee`` and a sell gives ``filled + fee``.
    """
    sign = 1.0 if side == "buy" else -1.0
    deltas = {market.base: sign * filled, market.quote: -sign * notional}
    if fee:
        deltas[fee_currency or market.quote] = deltas.get(fee_currency or market.quote, 0.0) - fee
    return deltas


Order = tuple[OrderRequest, OrderResult]
"""An order as sent and as it ended."""


def other_fees(result: OrderResult, market: Market) -> dict[str, float]:
    """Fees of ``result``'s fills charged in a currency other than its ``fee_currency`` (empty:
    the quote), per currency: Binance's BNB, charged while the account holds enough of it."""
    main = result.fee_currency or market.quote
    out: dict[str, float] = defaultdict(float)
    for f in result.fills:
        if f.fee and (f.fee_currency or market.quote) != main:
            out[f.fee_currency] += f.fee
    return dict(out)


def order_deltas(side: Side, market: Market, result: OrderResult) -> dict[str, float]:
    """Change of each asset's balance caused by one order: ``balance_deltas`` of its fills with its
    ``fee`` in ``fee_currency``, less each fee its fills paid in another currency, in that currency."""
    deltas = balance_deltas(side, market, result.filled, result.notional, result.fee, result.fee_currency)
    for currency, fee in other_fees(result, market).items():
        deltas[currency] = deltas.get(currency, 0.0) - fee
    return deltas


def fee_assets(orders: c.Iterable[Order], markets: c.Mapping[str, c.Mapping[str, Market]]) -> set[str]:
    """Currencies ``orders`` moved only by fees: charged in, and neither base nor quote of any
    of their markets (Binance's BNB). Their change is a cost, not a position to hedge."""
    charged: set[str] = set()
    traded: set[str] = set()
    for request, result in orders:
        market = markets.get(request.venue, {}).get(request.symbol)
        if market is None:
            continue
        traded.update((market.base, market.quote))
        charged.update(other_fees(result, market))
        if result.fee and result.fee_currency:
            charged.add(result.fee_currency)
    return charged - traded


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
        for asset, delta in order_deltas(request.side, market, result).items():
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
    knows_abandoned: t.ClassVar[bool] = True
    """True when an order whose ``submit`` was cancelled certainly never reached the book (paper);
    False for a real exchange, where it may have been placed and filled: its fate is unknown."""

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

    async def resolve(self, order: OrderRequest) -> OrderResult:
        """Ask the venue once more what became of ``order``, whose ``submit`` answered ``unknown``.

        Returns its final state, or ``status="unknown"`` while the venue still cannot say; never
        sends the order again. Venues that always know (paper) keep this default.
        """
        return OrderResult(client_order_id=order.client_order_id, status="unknown",
                           reason="this venue cannot look orders up")

    async def refresh(self) -> bool:
        """Read the balances from the venue itself; False if there is nothing to read (paper)."""
        return False
