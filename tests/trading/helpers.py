"""Builders and a simulated-clock harness shared by the trading tests."""

from __future__ import annotations

import asyncio
import typing as t

import msgspec
from loguru import logger

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.events import BookUpdate, FeeSide, Leg, Level, Market, MarketsLoaded, Opportunity
from arbitrage.plugin import Context
from arbitrage.settings import Settings
from arbitrage.trading.ids import client_order_id as cid
from arbitrage.trading.plugin import Trader

__all__ = ["T0", "Harness", "book", "cid", "leg", "make_settings", "market", "opportunity", "run"]

T0 = 1_700_000_000_000_000_000
"""Start of simulated time (ns)."""


def make_settings(balances: dict[str, float] | None = None,
                  venue_balances: dict[str, dict[str, float]] | None = None, **trading: t.Any) -> Settings:
    """Default settings with trading overrides and paper balances (latency 0 unless given).

    The hedge loss cap is off (10,000 bps) unless given: the toy books here are a few percent wide,
    and only the tests of the cap itself set one.
    """
    base = Settings()
    trading.setdefault("latency_ms", 0.0)
    trading.setdefault("hedge_max_loss_bps", 10_000.0)
    paper = msgspec.structs.replace(base.paper, balances=balances or {"USDT": 1000.0, "BTC": 2.0},
                                    venue_balances=venue_balances or {})
    trading_settings = msgspec.structs.replace(base.trading, **trading)
    return msgspec.structs.replace(base, trading=trading_settings, paper=paper)


def market(symbol: str = "BTC/USDT", fee: float = 0.001, step: float = 0.001, min_amount: float = 0.001,
           min_cost: float = 1.0, fee_side: FeeSide = "quote") -> Market:
    base, quote = symbol.split("/")
    return Market(symbol=symbol, base=base, quote=quote, taker_fee=fee, amount_step=step,
                  min_amount=min_amount, min_cost=min_cost, fee_side=fee_side)


def book(venue: str, symbol: str, bids: t.Sequence[Level], asks: t.Sequence[Level], ts: int) -> BookUpdate:
    return BookUpdate(venue=venue, symbol=symbol, bids=tuple(bids), asks=tuple(asks), ts_event=ts, ts_init=ts)


def leg(venue: str, side: t.Literal["buy", "sell"], amount: float, price: float, symbol: str = "BTC/USDT",
        fee: float = 0.001) -> Leg:
    return Leg(venue=venue, symbol=symbol, side=side, amount=amount, price=price, expected_price=price,
               fee_rate=fee)


def opportunity(id: str, *legs: Leg, profit: float = 1.0, notional: float = 100.0, quote: str = "USDT",
                strategy: str = "cross_exchange", ts: int = T0) -> Opportunity:
    return Opportunity(id=id, strategy=strategy, legs=legs, profit=profit, profit_bps=10.0, quote=quote,
                       notional=notional, book_ts=tuple(ts for _ in legs), ts_event=ts, ts_init=ts)


class Harness:
    """A bus, a ``SimClock`` and a set-up ``Trader``, as the engine would wire them."""

    def __init__(self, settings: Settings) -> None:
        self.bus = Bus()
        self.clock = SimClock(T0)
        self.books = BookStore()
        self.bus.subscribe(BookUpdate, self.books.update, name="books")  # first, as the engine does
        self.ctx = Context(bus=self.bus, settings=settings, clock=self.clock, run_id="test-run",
                           log=logger.bind(run_id="test-run"), books=self.books, liquidity=self.books)
        self.trader = Trader()
        self.trader.setup(self.ctx)
        self.trader.executor.strict_states = True  # an illegal state move fails the test

    async def start(self) -> None:
        await self.bus.start()
        await self.trader.start()

    def markets(self, venue: str, *markets: Market, staleness_ms: float = 1000.0) -> None:
        self.bus.publish(MarketsLoaded(venue=venue, markets=markets, staleness_ms=staleness_ms,
                                       ts_init=self.clock.time_ns()))

    def book(self, venue: str, symbol: str, bids: t.Sequence[Level], asks: t.Sequence[Level]) -> None:
        self.bus.publish(book(venue, symbol, bids, asks, self.clock.time_ns()))

    async def settle(self) -> None:
        """Run until no arbitrage is executing, moving simulated time to each sleeper's wake-up."""
        for _ in range(10_000):
            await asyncio.sleep(0)
            if not self.trader.executor.open_arbs:
                return
            wake = self.clock.next_timer_ns()
            if wake is not None:
                self.clock.advance_to(wake)
        raise AssertionError("arbitrages did not finish")

    async def stop(self) -> None:
        await self.trader.stop()
        await self.bus.stop()


def run(coro: t.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
    """Run one test coroutine on a fresh loop (no pytest-asyncio)."""
    return asyncio.run(coro)
