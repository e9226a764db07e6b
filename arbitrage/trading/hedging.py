"""Closing exposure: the hedge and unwind orders that flatten what unequal fills left open.

It exists apart from the executor because choosing where and how to close a position (which
venue's book, what limit, how much the balance allows beside other running arbitrages) is its own
rule set, used by the executor's closing step and by its end-of-arbitrage report of what could not
be closed. ``Closer`` is a collaborator the executor calls with explicit inputs (the exposure, the
opportunity); it reads the books, balances and reservations it is built with and sends nothing:
the executor sends what it plans and owns the rounds.

A position is closed against the opportunity's quote currency on the leg venue with the best
price for it (on an ``asset/quote`` market, else on a ``quote/asset`` one traded the other way),
with a limit ``hedge_slippage_bps`` past that price and never losing more than
``hedge_max_loss_bps`` of the position's entry price (``entry_prices``: what the filled legs paid
or got for it, fees included, in the quote currency), the closing order's fee included. A book
beyond that cap is not traded into: the position waits (reason ``loss cap``) for a better book,
which the executor looks for until ``hedge_timeout_s``. Every attempt is a new order with a new
id (``-H{n}`` for a two-venue hedge, ``-U{n}`` for unwinding a cycle of three or more legs or a
sequential chain); a failed order is never resent. Amounts too small to trade (below a market's
minimum amount or cost) are dust: not hedged. Fees are where each market takes them
(``Market.fee_factors``): a short closed on a market that takes a buy's fee from the base buys
``short / (1 - fee)``, a long sold where the sale's fee is in base sells ``long / (1 + fee)``.
"""

from __future__ import annotations

import collections.abc as c
import math
import typing as t

from arbitrage.book import EPS, is_crossed, round_down, round_price
from arbitrage.clock import Clock
from arbitrage.events import Market, Opportunity, Side
from arbitrage.plugin import Books
from arbitrage.trading.ids import client_order_id, order_label
from arbitrage.trading.risk import Markets, RiskGate
from arbitrage.trading.venue import Order, OrderRequest, Purpose, Venue, balance_deltas

__all__ = ["Closer", "ClosingPlan", "Entries", "entry_prices", "market_for", "venues_of"]


class ClosingPlan(t.NamedTuple):
    """One order that closes (part of) a position: where, which market, which way, how much, what limit."""

    venue: str
    market: Market
    side: Side
    amount: float
    price: float


class Closer:
    """Plans the hedge and unwind orders that close an arbitrage's exposure.

    :param venues: venue name -> account (balances); the executor's, so venues added later count.
    :param markets: venue -> symbol -> market.
    :param books: the run's book store (levels net of our fills).
    :param staleness_ms: venue -> staleness limit; an older book is not hedged against.
    :param risk: the reservations of running arbitrages, which a hedge must not spend.
    :param slippage_bps: how far past the best price a closing order's limit may reach.
    :param max_loss_bps: how far past the position's entry price a closing order's limit may reach.
    """

    def __init__(self, *, venues: c.Mapping[str, Venue], markets: Markets, books: Books, clock: Clock,
                 staleness_ms: c.Mapping[str, float], risk: RiskGate, slippage_bps: float,
                 max_loss_bps: float = math.inf) -> None:
        self.venues = venues
        self.markets = markets
        self.books = books
        self.clock = clock
        self.staleness_ms = staleness_ms
        self.risk = risk
        self.slippage_bps = slippage_bps
        self.max_loss_bps = max_loss_bps

    def orders(self, opportunity: Opportunity, exposure: c.Mapping[str, float], purpose: Purpose,
               first: int, entry: Entries | None = None,
               ) -> tuple[list[OrderRequest], dict[str, str]]:
        """The orders that close ``exposure`` (asset -> net amount, quote excluded) now, numbered
        from ``first`` (``-H{n}`` / ``-U{n}``), and why each other non-zero, non-dust position cannot
        be closed now (asset -> reason); both empty when nothing needs closing.

        :param entry: the positions' entry prices (``entry_prices``); a position without one is
            closed against the book alone.
        """
        tag = "U" if purpose == "unwind" else "H"
        venues = venues_of(opportunity)
        requests = []
        waiting: dict[str, str] = {}
        for asset, amount in exposure.items():
            if not amount:
                continue
            plan, why = self.plan(asset, amount, opportunity.quote, venues, opportunity.id,
                                  (entry or {}).get((asset, amount > 0)))
            if plan is None:
                if why != "dust":
                    waiting[asset] = why
                continue
            label = order_label(opportunity.id, tag, first + len(requests))
            requests.append(OrderRequest(client_order_id=client_order_id(label), label=label,
                                         opportunity_id=opportunity.id, venue=plan.venue,
                                         symbol=plan.market.symbol, side=plan.side, amount=plan.amount,
                                         price=plan.price, purpose=purpose))
        return requests, waiting

    def plan(self, asset: str, exposure: float, quote: str, venues: c.Sequence[str],
             opportunity_id: str, entry: float | None = None) -> tuple[ClosingPlan | None, str]:
        """The order that best closes ``exposure`` of ``asset`` against ``quote``, or None and why not.

        Candidates are the ``asset/quote`` markets on ``venues`` -- or, where a venue has none, its
        ``quote/asset`` market, traded the other way (a long is sold by buying the quote with it) --
        with a fresh, uncrossed book; the best fee-adjusted top price (after our own fills) wins.
        The limit is ``slippage_bps`` past that price but, given the ``entry`` price (fees
        included), no worse than ``max_loss_bps`` from it counting this order's taker fee too; a
        book whose best price is already beyond that is not a candidate (``loss cap``). The amount
        is capped by the venue's balance less what other running arbitrages hold reserved there.
        The reason ``dust`` means every candidate market finds the amount below its minimum:
        nothing can be done and nothing needs to be.
        """
        long = exposure > 0
        want = abs(exposure)
        slip = self.slippage_bps / 10_000.0
        loss = self.max_loss_bps / 10_000.0
        # the worst acceptable net price of one unit of asset in quote: a sale getting no less, a
        # buy-back paying no more (fees of this order included)
        net_bound = None if entry is None or math.isinf(loss) else (
            entry * (1.0 - loss) if long else entry * (1.0 + loss))
        if net_bound is not None and net_bound <= 0:  # a sale may lose it all: no bound
            net_bound = None
        best: ClosingPlan | None = None
        best_score = -math.inf
        reasons: set[str] = set()
        for name in venues:
            market = market_for(self.markets, name, asset, quote)
            inverted = market is None
            if inverted:
                market = market_for(self.markets, name, quote, asset)
            venue = self.venues.get(name)
            if market is None or venue is None:
                continue
            if self.risk.halted_venues.get(name):  # an order of unknown fate there: no new order
                reasons.add(f"{name} halted")
                continue
            book = self.books.get(name, market.symbol)
            now = self.clock.time_ns()
            stale_ns = self.staleness_ms.get(name, math.inf) * 1e6
            if book is None or now - book.ts_event > stale_ns or is_crossed(book.bids, book.asks):
                reasons.add("no usable book")
                continue
            # the market's side: closing a long sells it on asset/quote, buys quote with it on quote/asset
            side: Side = "sell" if long != inverted else "buy"
            levels = self.books.levels(name, market.symbol, "bids" if side == "sell" else "asks")
            if not levels:
                reasons.add("no liquidity")
                continue
            top = levels[0][0]
            quote_mult, base_mult = market.fee_factors(side)
            adj = quote_mult / base_mult  # from the market's price to the net price of a unit moved
            # amount in the market's base: what moves the asset by ``want`` (the fee in base included),
            # or what the asset, the market's quote, pays or gets at the top
            wanted = round_down(want / (top * quote_mult) if inverted else want / base_mult,
                                market.amount_step)
            if wanted <= EPS or wanted < market.min_amount or wanted * top < market.min_cost:
                reasons.add("dust")
                continue
            # the bound on the market's price: net_bound = top * adj (direct) or 1 / (top * adj)
            bound = None if net_bound is None else (1.0 / (net_bound * adj) if inverted else net_bound / adj)
            if bound is not None and (top < bound - EPS if side == "sell" else top > bound + EPS):
                reasons.add("loss cap")
                continue
            held = self.risk.held_by_others
            if side == "sell":
                reach = top * (1.0 - slip)
                price = round_price(reach if bound is None else max(reach, bound), market.price_step, up=True)
                free = venue.balances().get(market.base, 0.0) - held(opportunity_id, name, market.base)
                free /= market.reserve(side, 1.0, price)
            else:
                reach = top * (1.0 + slip)
                price = round_price(reach if bound is None else min(reach, bound), market.price_step,
                                    up=False)
                cash = venue.balances().get(market.quote, 0.0) - held(opportunity_id, name, market.quote)
                free = cash / market.reserve(side, 1.0, price)
            amount = min(wanted, round_down(free, market.amount_step))
            if amount <= EPS or amount < market.min_amount or amount * price < market.min_cost:
                reasons.add("balance")
                continue
            net = 1.0 / (top * adj) if inverted else top * adj  # quote per unit of asset, fees in
            score = net if long else -net
            if score > best_score:
                best, best_score = ClosingPlan(name, market, side, amount, price), score
        if best is not None:
            return best, ""
        if reasons == {"dust"}:
            return None, "dust"
        return None, ", ".join(sorted(reasons - {"dust"})) or f"no {asset}/{quote} market"

    def why_open(self, asset: str, exposure: float, quote: str, venues: c.Sequence[str],
                 opportunity_id: str, entry: float | None = None) -> str:
        """Why ``exposure`` of ``asset`` is still open after the rounds: ``dust`` (nothing to do),
        ``hedge retries exhausted`` (it could still be closed), or what stopped every candidate."""
        plan, why = self.plan(asset, exposure, quote, venues, opportunity_id, entry)
        return "hedge retries exhausted" if plan is not None else why


Entries = c.Mapping[tuple[str, bool], float]
"""(asset, long) -> entry price in the opportunity's quote currency (``entry_prices``)."""


def entry_prices(opportunity: Opportunity, orders: c.Iterable[Order],
                 markets: Markets) -> dict[tuple[str, bool], float]:
    """Entry price, fees included, in the opportunity's quote currency, of what each asset the legs
    traded would be left at: for a long, what the filled legs that delivered a unit of it paid; for
    a short, what the filled legs that spent a unit of it got, net of fees. Keys are
    ``(asset, long)``: a buy of BTC at 100 and a sell at 110, fee 0.1 %, give
    ``{("BTC", True): 100.1, ("BTC", False): 109.89}``.

    An asset reached through another market (ETH bought with BTC) costs what the other asset given
    for it cost (BTC bought at 100.1 a BTC with the fee, then 0.0501 BTC with its fee for one ETH:
    5.01501 USDT an ETH), so a chain held wholly open realizes nothing. A filled leg values what it
    delivers from what it gave (balance changes: fees included); where no filled leg links an
    asset, the opportunity's expected prices do.
    """
    results = {r.label: res for r, res in orders if r.purpose == "leg"}
    legs = []
    for i, leg in enumerate(opportunity.legs):
        market = markets.get(leg.venue, {}).get(leg.symbol)
        if market is None:
            continue
        res = results.get(order_label(opportunity.id, "L", i))
        if res is not None and res.filled > 0 and res.average_price > 0:
            deltas = balance_deltas(leg.side, market, res.filled, res.notional, res.fee, res.fee_currency)
            legs.append((market, res.average_price, deltas))
        else:
            legs.append((market, leg.expected_price, None))
    values = {opportunity.quote: 1.0}
    for _ in range(len(legs)):  # filled legs first, from their balance changes
        for market, _price, deltas in legs:
            if deltas is None:
                continue
            for asset, other in ((market.base, market.quote), (market.quote, market.base)):
                if other in values and asset not in values and deltas.get(asset):
                    values[asset] = abs(deltas.get(other, 0.0)) * values[other] / abs(deltas[asset])
    for _ in range(len(legs)):  # expected prices fill the gaps
        for market, price, _deltas in legs:
            if price <= 0:
                continue
            base, quote = market.base, market.quote
            if quote in values and base not in values:
                values[base] = price * values[quote]
            elif base in values and quote not in values:
                values[quote] = values[base] / price
    sums: dict[tuple[str, bool], list[float]] = {}
    for market, _price, deltas in legs:
        if deltas is None:
            continue
        for asset, other in ((market.base, market.quote), (market.quote, market.base)):
            moved = deltas.get(asset, 0.0)
            if asset == opportunity.quote or not moved or other not in values:
                continue
            acc = sums.setdefault((asset, moved > 0), [0.0, 0.0])
            acc[0] += abs(deltas.get(other, 0.0)) * values[other]  # what was given / got for it
            acc[1] += abs(moved)
    return {key: total / amount for key, (total, amount) in sums.items() if amount > 0}


def market_for(markets: Markets, venue: str, base: str, quote: str) -> Market | None:
    """The ``base/quote`` market of ``venue``, whatever its symbol, or None."""
    for market in markets.get(venue, {}).values():
        if market.base == base and market.quote == quote:
            return market
    return None


def venues_of(opportunity: Opportunity) -> list[str]:
    """The opportunity's leg venues, each once, in leg order (where its exposure may be closed)."""
    return list(dict.fromkeys(leg.venue for leg in opportunity.legs))
