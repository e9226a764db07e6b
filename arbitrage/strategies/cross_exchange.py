"""Cross-exchange arbitrage: buy a symbol on one venue, sell it on another, when that pays after fees.

On every ``BookUpdate`` the book is compared with the same symbol on every other venue, in both
directions, at top of book (``CrossCheck``: ``arbitrage.strategies.cross_check``, compiled when
built), on the engine's book store (``Context.books``), which already holds the book; only a pair
that pays there is sized. The check reads the books as published; sizing reads them net of what our
own orders took or have in flight (``Books.levels``) whenever that overlay touches them, so a book
we swept, or one an order of ours is still on its way to, is not counted on twice (removing
liquidity only makes the best prices worse, so the raw check never misses a net route). Size
comes from walking both books level by level
while the marginal unit still pays after both taker fees and the average stays at or above
``min_profit_bps``, capped by the buy venue's quote balance, the sell venue's base balance,
``max_notional``, and the markets' precision and minimums. Stale or crossed books are never used.
``max_notional`` is an amount of ``risk.currency``: the quote currency is valued from the books
(``arbitrage.valuation``, the risk gate's rule), so on ETH/BTC it caps the BTC spent at
``max_notional`` USDT's worth; a route whose quote cannot be valued is not traded.

Fees are charged where each venue charges them (``Market.fee_side``). Where the buy venue takes
its fee from the base it delivers (Binance's ``get``), or the sell venue takes its fee from the
base it sells, the buy is larger than the sale: it buys ``sold * k`` (``k`` = base given per
unit sold / base received per unit bought, e.g. ``1 / (1 - fee)``), rounded *up* to its amount
step, so that what arrives covers what the sale gives; the sale then grows on its own grid to
what arrived, leaving less than one amount step of base over. That excess stays held at what the
buy paid for it (the executor reports it as a position), so the expected profit is the sale's
proceeds less the share of the buy's cost that bought what was sold.
"""

from __future__ import annotations

import itertools
import typing as t

from arbitrage.book import EPS, SoundBooks, round_down, round_up, walk
from arbitrage.events import BalanceUpdate, BookUpdate, Leg, Market, MarketsLoaded, Opportunity, fee_factors
from arbitrage.plugin import Context, Plugin
from arbitrage.strategies.cross_check import CrossCheck
from arbitrage.valuation import Valuer

_INF = float("inf")


class Sizing(t.NamedTuple):
    """The result of sizing one buy-here/sell-there route."""

    amount: float
    """Base amount sold."""
    buy_notional: float
    sell_notional: float
    buy_limit: float
    sell_limit: float
    profit: float
    """Quote currency, net of both taker fees: the sale's proceeds after its fee less the share of
    the buy's cost (fee included) that bought what the sale gives; base bought beyond that stays
    held at its cost (what the executor's realized profit counts)."""
    buy_amount: float
    """Base amount bought: ``amount`` when no fee is taken in base."""


def route_factors(buy_fee: float, sell_fee: float, buy_fee_in_base: bool = False,
                  sell_fee_in_base: bool = False) -> tuple[float, float, float, float]:
    """``(buy quote, buy base, sell quote, sell base)`` multipliers of a route (``Market.fee_factors``
    of the buy and of the sale)."""
    return (*fee_factors("buy", buy_fee, buy_fee_in_base), *fee_factors("sell", sell_fee, sell_fee_in_base))


def size_route(asks: t.Sequence[tuple[float, float]], bids: t.Sequence[tuple[float, float]],
               buy_fee: float, sell_fee: float, *, min_profit_bps: float, max_notional: float = _INF,
               quote_balance: float = _INF, base_balance: float = _INF, buy_fee_in_base: bool = False,
               sell_fee_in_base: bool = False) -> float:
    """Largest base amount worth selling on ``bids`` after buying what it takes on ``asks``.

    Each unit sold needs ``k`` units bought (``k`` = base the sale gives per unit, ``1 + fee``
    where its fee is taken in base, over base the buy delivers per unit, ``1 - fee`` where its fee
    is taken from the base it receives; 1 when both fees are in quote). Walks both books together.
    A unit is added while it still pays after both fees (the marginal unit's profit is positive)
    and while the average profit stays at or above ``min_profit_bps`` of the buy notional. The
    whole buy at the current (worst so far) ask plus a fee in quote must fit ``quote_balance`` --
    what a venue holds back for a limit buy at that price, and what the risk gate checks -- what
    the sale gives ``base_balance`` and the buy notional ``max_notional``. Returns 0 when nothing
    qualifies.
    """
    buy_quote, buy_base, sell_quote, sell_base = route_factors(buy_fee, sell_fee, buy_fee_in_base,
                                                               sell_fee_in_base)
    k = sell_base / buy_base
    m = min_profit_bps / 1e4
    i = j = 0
    ask_left = asks[0][1] if asks else 0.0  # in units bought
    bid_left = bids[0][1] if bids else 0.0
    amount = notional = profit = 0.0
    while i < len(asks) and j < len(bids):
        pa, pb = asks[i][0] * k, bids[j][0]  # pa: the buy's price of one unit sold
        unit = pb * sell_quote - pa * buy_quote
        if unit <= 0.0:
            break
        take = min(ask_left / k, bid_left, base_balance / sell_base - amount, (max_notional - notional) / pa,
                   quote_balance / (pa * buy_quote) - amount)
        stop = False
        if unit < m * pa:  # this level drags the average down: take only what keeps it >= m
            room = (profit - m * notional) / (m * pa - unit)
            if room < take:
                take, stop = max(room, 0.0), True
        if take <= 0.0:
            break
        amount += take
        notional += take * pa
        profit += take * unit
        if stop or take < min(ask_left / k, bid_left) - 1e-15:
            break
        ask_left -= take * k
        bid_left -= take
        if ask_left <= 1e-15:
            i += 1
            ask_left = asks[i][1] if i < len(asks) else 0.0
        if bid_left <= 1e-15:
            j += 1
            bid_left = bids[j][1] if j < len(bids) else 0.0
    return amount


def price_route(asks: t.Sequence[tuple[float, float]], bids: t.Sequence[tuple[float, float]],
                amount: float, buy_fee: float, sell_fee: float, *, buy_amount: float | None = None,
                buy_fee_in_base: bool = False, sell_fee_in_base: bool = False) -> Sizing | None:
    """Exact cost, proceeds and limits of selling ``amount`` on ``bids`` and buying ``buy_amount``
    (None: ``amount * k``, see ``size_route``) on ``asks``, or None if a book is too thin. The
    buy must deliver at least what the sale gives."""
    buy_quote, buy_base, sell_quote, sell_base = route_factors(buy_fee, sell_fee, buy_fee_in_base,
                                                               sell_fee_in_base)
    if buy_amount is None:
        buy_amount = amount * (sell_base / buy_base)
    bought, buy_notional, buy_limit = walk(asks, buy_amount, side="buy")
    sold, sell_notional, sell_limit = walk(bids, amount, side="sell")
    if bought < buy_amount - EPS or sold < amount - EPS:
        return None
    delivered = buy_amount * buy_base
    share = amount * sell_base / delivered if delivered > 0.0 else 1.0  # of the buy that was sold
    profit = sell_notional * sell_quote - buy_notional * buy_quote * share
    return Sizing(amount, buy_notional, sell_notional, buy_limit, sell_limit, profit, buy_amount)


def leg_amounts(amount: float, buy: Market, sell: Market, base_balance: float = _INF) -> tuple[float, float]:
    """``(bought, sold)`` on the markets' grids for selling about ``amount``: the sale rounded down
    to both amount steps; the buy what the sale needs (``sold * k``, see ``size_route``) rounded up
    to its step, so that what it delivers covers what the sale gives; then the sale as large, on its
    grid, as what the buy delivers allows (and ``base_balance`` covers), so that less than one
    amount step of base is left over. Both are ``amount`` rounded down when no fee is in base."""
    sold = round_down(round_down(amount, buy.amount_step), sell.amount_step)
    buy_base = buy.fee_factors("buy")[1]
    sell_base = sell.fee_factors("sell")[1]
    if buy_base == sell_base:
        return sold, sold
    bought = round_up(sold * sell_base / buy_base, buy.amount_step)
    more = round_down(bought * buy_base / sell_base, sell.amount_step)
    if more > sold and more * sell_base <= base_balance:
        sold = more
    return bought, sold


class CrossExchangeStrategy(Plugin):
    """Same symbol, two venues: buy where it is cheap, sell where it is dear, both at once."""

    name = "cross_exchange"
    kind = "strategy"
    description = "Buy on one venue and sell on another when the spread pays both taker fees (depth-aware)."

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        cfg = ctx.settings.strategy
        self.min_profit_bps = cfg.min_profit_bps
        self.max_notional = min(cfg.max_notional, ctx.settings.trading.max_notional)
        """In ``risk.currency``; converted to each route's quote currency when it is sized."""
        self.valuer = Valuer(ctx.books.by_symbol, ctx.settings.risk.currency)
        self.cooldown_ns = int(cfg.cooldown_ms * 1e6)
        self.markets: dict[tuple[str, str], Market] = {}
        self.check = CrossCheck(ctx.books.by_symbol)
        """Finds the pairs that pay at top of book, on the store's books."""
        self._now = ctx.clock.time_ns
        self._levels = ctx.books.levels
        """A book side net of what our orders took or have in flight: what sizing walks."""
        self.balances: dict[str, dict[str, float]] = {}
        self._last_emit: dict[tuple[str, str, str], tuple[int, int, int]] = {}
        """(buy venue, sell venue, symbol) -> (ts_init of emission, buy book ts, sell book ts)."""
        self._ids = itertools.count(1)
        self.emitted = 0
        self.skipped_malformed = 0
        """Paying routes not sized because a book to size on fails ``check_book`` (a source that
        did not check)."""
        self._sound = SoundBooks()
        ctx.bus.subscribe(MarketsLoaded, self.on_markets, name=self.name)
        ctx.bus.subscribe(BalanceUpdate, self.on_balances, name=self.name)
        ctx.bus.subscribe(BookUpdate, self.on_book, name=self.name)

    def on_markets(self, event: MarketsLoaded) -> None:
        self.check.set_staleness(event.venue, int(event.staleness_ms * 1e6))
        for market in event.markets:
            self.markets[(event.venue, market.symbol)] = market
            self.check.set_market(event.venue, market)

    def on_balances(self, event: BalanceUpdate) -> None:
        self.balances[event.venue] = event.balances

    @property
    def skipped_stale(self) -> int:
        return self.check.skipped_stale

    @property
    def skipped_crossed(self) -> int:
        return self.check.skipped_crossed

    def on_book(self, book: BookUpdate) -> None:
        """Size every route of this book against another venue's that pays at top of book."""
        now = self._now()
        pairs = self.check.update(book, now)
        if pairs is not None:
            for buy, sell in pairs:
                self._try(buy, sell, now)

    def _try(self, buy: BookUpdate, sell: BookUpdate, now: int) -> None:
        buy_market = self.markets[(buy.venue, buy.symbol)]
        sell_market = self.markets[(sell.venue, sell.symbol)]
        bf, sf = buy_market.taker_fee, sell_market.taker_fee
        buy_in_base, sell_in_base = buy_market.fee_in_base("buy"), sell_market.fee_in_base("sell")
        buy_quote, buy_base, sell_quote, sell_base = route_factors(bf, sf, buy_in_base, sell_in_base)
        if sell.bids[0][0] * sell_quote / sell_base <= buy.asks[0][0] * buy_quote / buy_base:
            return  # top of book does not pay, per unit of base moved: the common case
        route = (buy.venue, sell.venue, buy.symbol)
        last = self._last_emit.get(route)
        if last is not None and (now - last[0] < self.cooldown_ns or (last[1], last[2]) == (buy.ts_event,
                                                                                             sell.ts_event)):
            return
        sound = self._sound.sound
        if not (sound(buy) and sound(sell)):
            self.skipped_malformed += 1  # sources check every book; this one's did not
            return
        quote_value = self.valuer.price(buy_market.quote)
        if quote_value is None or quote_value <= 0.0:
            return  # no price: the risk gate would refuse it
        levels = self._levels  # the books' own sides unless our overlay touches them
        asks = levels(buy.venue, buy.symbol, "asks")
        bids = levels(sell.venue, sell.symbol, "bids")
        buy_bal = self.balances.get(buy.venue)
        sell_bal = self.balances.get(sell.venue)
        quote_balance = buy_bal.get(buy_market.quote, 0.0) if buy_bal is not None else _INF
        base_balance = sell_bal.get(sell_market.base, 0.0) if sell_bal is not None else _INF
        amount = size_route(
            asks, bids, bf, sf, min_profit_bps=self.min_profit_bps,
            max_notional=self.max_notional / quote_value, quote_balance=quote_balance,
            base_balance=base_balance, buy_fee_in_base=buy_in_base, sell_fee_in_base=sell_in_base)
        for _ in range(3):  # a buy rounded up may pass the quote balance: a step less, up to 3 times
            bought, amount = leg_amounts(amount, buy_market, sell_market, base_balance)
            if amount <= 0.0 or bought < buy_market.min_amount or amount < sell_market.min_amount:
                return
            sized = price_route(asks, bids, amount, bf, sf, buy_amount=bought, buy_fee_in_base=buy_in_base,
                                sell_fee_in_base=sell_in_base)
            if sized is None or sized.buy_notional < max(buy_market.min_cost, sell_market.min_cost):
                return
            if bought <= amount or buy_market.reserve("buy", bought, sized.buy_limit) <= quote_balance:
                break  # (a buy not rounded up fits: size_route fitted it)
            amount -= max(buy_market.amount_step, sell_market.amount_step, amount * 1e-9)
        else:
            return
        profit_bps = sized.profit / sized.buy_notional * 1e4
        if profit_bps < self.min_profit_bps:
            return
        self._last_emit[route] = (now, buy.ts_event, sell.ts_event)
        self.emitted += 1
        self.ctx.bus.publish(Opportunity(
            id=f"{self.ctx.run_id}-{next(self._ids)}",
            strategy=self.name,
            legs=(
                Leg(venue=buy.venue, symbol=buy.symbol, side="buy", amount=bought, price=sized.buy_limit,
                    expected_price=sized.buy_notional / bought, fee_rate=bf),
                Leg(venue=sell.venue, symbol=sell.symbol, side="sell", amount=amount, price=sized.sell_limit,
                    expected_price=sized.sell_notional / amount, fee_rate=sf),
            ),
            profit=sized.profit,
            profit_bps=profit_bps,
            quote=buy_market.quote,
            notional=sized.buy_notional,
            book_ts=(buy.ts_event, sell.ts_event),
            ts_event=max(buy.ts_event, sell.ts_event),
            ts_init=now,
        ))

    def summary(self) -> dict[str, t.Any]:
        return {"pairs_paying_at_top": self.check.evaluated, "opportunities": self.emitted,
                "stale_books_skipped": self.skipped_stale, "crossed_books_skipped": self.skipped_crossed,
                "malformed_books_skipped": self.skipped_malformed}
