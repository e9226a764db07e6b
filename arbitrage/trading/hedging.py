"""Closing exposure: the hedge and unwind orders that flatten what unequal fills left open.

It exists apart from the executor because choosing where and how to close a position (which
venue's book, what limit, how much the balance allows beside other running arbitrages) is its own
rule set, shared by the executor's hedging step and by its end-of-arbitrage report of what could
not be closed. ``ExposureCloser`` is a mixin of ``Executor``, whose state it reads.

A position is closed against the opportunity's quote currency on the leg venue with the best
price for it, with a limit ``hedge_slippage_bps`` past that price, in at most ``1 + hedge_retries``
rounds. Every attempt is a new order with a new id (``-H{n}`` for a two-venue hedge, ``-U{n}`` for
unwinding a cycle of three or more legs or a sequential chain); a failed order is never resent.
Amounts too small to trade (below a market's minimum amount or cost) are dust: not hedged.
"""

from __future__ import annotations

import collections.abc as c
import math
import typing as t

from arbitrage.book import is_crossed, round_down
from arbitrage.clock import Clock
from arbitrage.events import Market, Opportunity, Side
from arbitrage.settings import TradingSettings
from arbitrage.trading.risk import Markets, RiskGate
from arbitrage.trading.venue import BookView, Order, OrderRequest, Venue

__all__ = ["ExposureCloser", "venues_of"]

_EPS = 1e-12


class _Plan(t.NamedTuple):
    venue: str
    market: Market
    side: Side
    amount: float
    price: float


class ExposureCloser:
    """Plans and sends hedge and unwind orders; mixed into ``Executor``, whose attributes it uses."""

    settings: TradingSettings
    venues: c.Mapping[str, Venue]
    markets: Markets
    books: BookView
    clock: Clock
    staleness_ms: c.Mapping[str, float]
    risk: RiskGate

    if t.TYPE_CHECKING:
        def exposure(self, quote: str, orders: c.Iterable[Order]) -> dict[str, float]: ...

        async def _send(self, requests: c.Sequence[OrderRequest], orders: list[Order]) -> None: ...

    async def _close_exposure(self, opportunity: Opportunity, orders: list[Order], *, unwind: bool) -> None:
        """Hedge or unwind whatever the orders so far left in assets other than the quote currency."""
        purpose: t.Literal["hedge", "unwind"] = "unwind" if unwind else "hedge"
        tag = "U" if purpose == "unwind" else "H"
        venues = venues_of(opportunity)
        n = 0
        for _ in range(1 + self.settings.hedge_retries):
            plans = [plan for asset, amount in self.exposure(opportunity.quote, orders).items()
                     if (plan := self._plan(asset, amount, opportunity.quote, venues, opportunity.id)[0])
                     is not None]
            if not plans:
                return
            requests = []
            for plan in plans:
                requests.append(OrderRequest(client_order_id=f"{opportunity.id}-{tag}{n}",
                                             opportunity_id=opportunity.id, venue=plan.venue,
                                             symbol=plan.market.symbol, side=plan.side, amount=plan.amount,
                                             price=plan.price, purpose=purpose))
                n += 1
            await self._send(requests, orders)

    def _plan(self, asset: str, exposure: float, quote: str, venues: c.Sequence[str],
              opportunity_id: str) -> tuple[_Plan | None, str]:
        """The order that best closes ``exposure`` of ``asset`` against ``quote``, or None and why not.

        Candidates are the ``asset/quote`` markets on ``venues`` with a fresh, uncrossed book; the
        best fee-adjusted top price (after our own fills) wins. The amount is capped by the
        venue's balance less what other running arbitrages hold reserved there. The reason
        ``dust`` means every candidate market finds the amount below its minimum: nothing can be
        done and nothing needs to be.
        """
        side: Side = "sell" if exposure > 0 else "buy"
        want = abs(exposure)
        slip = self.settings.hedge_slippage_bps / 10_000.0
        best: _Plan | None = None
        best_score = -math.inf
        reasons: set[str] = set()
        for name in venues:
            market = self._market_for(name, asset, quote)
            venue = self.venues.get(name)
            if market is None or venue is None:
                continue
            book = self.books.get(name, market.symbol)
            now = self.clock.time_ns()
            stale_ns = self.staleness_ms.get(name, math.inf) * 1e6
            if book is None or now - book.ts_event > stale_ns or is_crossed(book.bids, book.asks):
                reasons.add("no usable book")
                continue
            levels = self.books.levels(name, market.symbol, "bids" if side == "sell" else "asks")
            if not levels:
                reasons.add("no liquidity")
                continue
            top = levels[0][0]
            wanted = round_down(want, market.amount_step)
            if wanted <= _EPS or wanted < market.min_amount or wanted * top < market.min_cost:
                reasons.add("dust")
                continue
            if side == "sell":
                price = _round_price(top * (1.0 - slip), market.price_step, up=True)
                free = venue.balances().get(asset, 0.0) - self._held_by_others(opportunity_id, name, asset)
            else:
                price = _round_price(top * (1.0 + slip), market.price_step, up=False)
                cash = venue.balances().get(quote, 0.0) - self._held_by_others(opportunity_id, name, quote)
                free = cash / (price * (1.0 + market.taker_fee))
            amount = min(wanted, round_down(free, market.amount_step))
            if amount <= _EPS or amount < market.min_amount or amount * price < market.min_cost:
                reasons.add("balance")
                continue
            score = top * (1.0 - market.taker_fee) if side == "sell" else -top * (1.0 + market.taker_fee)
            if score > best_score:
                best, best_score = _Plan(name, market, side, amount, price), score
        if best is not None:
            return best, ""
        if reasons == {"dust"}:
            return None, "dust"
        return None, ", ".join(sorted(reasons - {"dust"})) or f"no {asset}/{quote} market"

    def _held_by_others(self, opportunity_id: str, venue: str, asset: str) -> float:
        """What running arbitrages other than this one hold reserved of ``asset`` on ``venue``."""
        mine = self.risk.open.get(opportunity_id, {}).get((venue, asset), 0.0)
        return max(self.risk.reserved.get((venue, asset), 0.0) - mine, 0.0)

    def _why_open(self, asset: str, exposure: float, quote: str, venues: c.Sequence[str],
                  opportunity_id: str) -> str:
        plan, why = self._plan(asset, exposure, quote, venues, opportunity_id)
        return "hedge retries exhausted" if plan is not None else why

    def _market_for(self, venue: str, base: str, quote: str) -> Market | None:
        for market in self.markets.get(venue, {}).values():
            if market.base == base and market.quote == quote:
                return market
        return None


def venues_of(opportunity: Opportunity) -> list[str]:
    """The opportunity's leg venues, each once, in leg order (where its exposure may be closed)."""
    return list(dict.fromkeys(leg.venue for leg in opportunity.legs))


def _round_price(price: float, step: float, *, up: bool) -> float:
    """Round a limit to the price grid towards the book (``up`` for sells), so it never reaches further."""
    if step <= 0:
        return price
    units = price / step
    n = math.ceil(units - 1e-9) if up else math.floor(units + 1e-9)
    return round(n * step, 12)
