"""Paper venue: fills IOC orders against the recorded or simulated books, with latency and fees.

An order reaches the book ``latency_ms`` after it is sent (by the run's clock, so a backtest on a
``SimClock`` gets the same fills on any machine) and fills against the book *as it is then*,
not as it was when the opportunity was seen. It fills against the run's one book store net of what
our fills took (``Liquidity.fillable``: an exchange knows nothing of our orders still in flight,
which the store also holds for planning) and records each fill's liquidity there when it fills
(``Liquidity.take``): that stays taken until the venue publishes the level again with a different
size (see ``arbitrage.book.BookStore``), so no later order -- nor the strategies' or the
executor's plans -- counts on it again. Balances move by ``balance_deltas``, the rule the
executor's accounting uses too.

Fees are charged where the market says (``Market.fee_side``): ``notional * fee`` in quote, or
``amount * fee`` in base (a buy on a ``get`` market receives ``filled * (1 - fee)`` base and pays
``notional`` quote). Each fill and the result carry the fee's currency.

Refusals mirror an exchange's: unknown market, amount or notional below the market minimum,
no/stale/crossed book, and insufficient balance (``Market.reserve``, what an exchange holds back
for a limit order: a buy needs ``amount * limit`` quote up front, ``* (1 + fee)`` when the fee is
in quote; a sell needs ``amount`` base, ``* (1 + fee)`` when the fee is in base).
"""

from __future__ import annotations

import collections.abc as c

from arbitrage.book import EPS, check_book, is_crossed, round_down
from arbitrage.clock import Clock
from arbitrage.events import Market
from arbitrage.plugin import Books, Liquidity
from arbitrage.trading.venue import (
    FILL_TOLERANCE,
    OrderRequest,
    OrderResult,
    Venue,
    VenueFill,
    balance_deltas,
)


class PaperVenue(Venue):
    """A simulated exchange account: balances and markets, filling against the run's books."""

    def __init__(self, name: str, *, clock: Clock, books: Books, liquidity: Liquidity,
                 markets: c.Iterable[Market], staleness_ms: float, balances: c.Mapping[str, float],
                 latency_ms: float = 0.0) -> None:
        """
        :param books: the run's book store, which this venue fills against.
        :param liquidity: the same store's overlay, where each fill records what it took.
        :param balances: starting free balance per asset (missing assets start at 0).
        :param latency_ms: delay between ``submit`` and the order reaching the book, in clock time.
        """
        self.name = name
        self._clock = clock
        self._books = books
        self._liquidity = liquidity
        self._markets: dict[str, Market] = {}
        self._staleness_ns = 0
        self.update_markets(markets, staleness_ms)
        self._balances: dict[str, float] = {asset: float(v) for asset, v in balances.items()}
        self._latency_s = latency_ms / 1000.0

    def update_markets(self, markets: c.Iterable[Market], staleness_ms: float) -> None:
        """Add or replace markets (a venue may announce its markets again after a reconnect)."""
        for market in markets:
            self._markets[market.symbol] = market
        self._staleness_ns = int(staleness_ms * 1_000_000)

    @property
    def markets(self) -> c.Mapping[str, Market]:
        return self._markets

    def balances(self) -> dict[str, float]:
        return dict(self._balances)

    async def cancel_all(self) -> None:
        """Nothing to do: IOC orders never rest on a paper book."""

    async def submit(self, order: OrderRequest) -> OrderResult:
        """Wait the latency on the run's clock, then fill against the book as it is at arrival."""
        await self._clock.sleep(self._latency_s)
        return self.execute(order)

    def execute(self, order: OrderRequest) -> OrderResult:
        """Fill ``order`` now, synchronously (``submit`` without the latency)."""
        now = self._clock.time_ns()
        market = self._markets.get(order.symbol)
        if market is None:
            return self._reject(order, now, "unknown market")
        if order.venue != self.name:
            return self._reject(order, now, f"order for venue {order.venue!r} sent to {self.name!r}")
        amount = round_down(order.amount, market.amount_step)
        if amount <= EPS or amount < market.min_amount - EPS:
            return self._reject(order, now, "amount below market minimum")
        if order.price <= 0:
            return self._reject(order, now, "limit price must be positive")
        if amount * order.price < market.min_cost - EPS:
            return self._reject(order, now, "cost below market minimum")
        book = self._books.get(self.name, order.symbol)
        if book is None:
            return self._reject(order, now, "no book")
        if now - book.ts_event > self._staleness_ns:
            return self._reject(order, now, "stale book")
        if is_crossed(book.bids, book.asks):
            return self._reject(order, now, "crossed book")
        if check_book(book.bids, book.asks) is not None:  # a source that did not check: no NaN fill
            return self._reject(order, now, "malformed book")

        buy = order.side == "buy"
        side = "asks" if buy else "bids"
        rate = market.taker_fee
        in_base = market.fee_in_base(order.side)
        fee_currency = market.base if in_base else market.quote
        fills: list[tuple[float, float]] = []
        filled = notional = fee = 0.0
        remaining = amount
        for price, size in self._liquidity.fillable(self.name, order.symbol, side):
            if remaining <= EPS or (price > order.price + EPS if buy else price < order.price - EPS):
                break
            take = size if size < remaining else remaining
            fills.append((price, take))
            filled += take
            notional += price * take
            fee += (take if in_base else price * take) * rate
            remaining -= take

        # What an exchange reserves for the limit order; max() with the actual spend keeps float
        # rounding from ever taking the balance below zero. Closer than EPS is equal.
        if buy:
            needed = max(market.reserve("buy", amount, order.price), notional + (0.0 if in_base else fee))
            if self._balances.get(market.quote, 0.0) < needed - EPS:
                return self._reject(order, now, f"insufficient {market.quote} balance", amount)
        elif self._balances.get(market.base, 0.0) < market.reserve("sell", amount, order.price) - EPS:
            return self._reject(order, now, f"insufficient {market.base} balance", amount)

        if not fills:
            return OrderResult(client_order_id=order.client_order_id, status="canceled", amount=amount,
                               fee_currency=fee_currency, reason="no liquidity within limit", ts_event=now)
        for asset, delta in balance_deltas(order.side, market, filled, notional, fee, fee_currency).items():
            left = self._balances.get(asset, 0.0) + delta
            self._balances[asset] = left if abs(left) >= EPS else 0.0  # float noise is no balance
        for price, take in fills:
            self._liquidity.take(self.name, order.symbol, side, price, take)
        return OrderResult(
            client_order_id=order.client_order_id,
            status="filled" if filled >= amount * (1.0 - FILL_TOLERANCE) else "partially_filled",
            amount=amount, filled=filled, notional=notional, average_price=notional / filled, fee=fee,
            fee_currency=fee_currency, ts_event=now,
            fills=tuple(VenueFill(price=p, amount=a, fee=(a if in_base else p * a) * rate,
                                  fee_currency=fee_currency, ts_event=now) for p, a in fills),
        )

    def _reject(self, order: OrderRequest, now: int, reason: str, amount: float = 0.0) -> OrderResult:
        return OrderResult(client_order_id=order.client_order_id, status="rejected", amount=amount,
                           reason=reason, ts_event=now)


def paper_balances(venue: str, balances: c.Mapping[str, float],
                   overrides: c.Mapping[str, c.Mapping[str, float]]) -> dict[str, float]:
    """Starting balances of one venue: the shared ``balances`` with that venue's overrides on top."""
    out = dict(balances)
    out.update(overrides.get(venue, {}))
    return out
