"""A bus, a ``SimClock`` and a set-up ``Monitor`` (optionally a ``Trader``) as the engine would wire them."""

from __future__ import annotations

import asyncio
import typing as t
from pathlib import Path

import msgspec
from loguru import logger

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.events import (
    Alert,
    ArbResult,
    BookUpdate,
    Leg,
    Market,
    MarketsLoaded,
    Opportunity,
)
from arbitrage.monitor import Monitor
from arbitrage.plugin import Context
from arbitrage.settings import Settings

T0 = 1_700_000_000_000_000_000
"""Start of simulated time (ns): 2023-11-14T22:13:20Z."""
MS = 1_000_000
S = 1_000_000_000


def settings_with(base: Settings | None = None, **monitor: t.Any) -> Settings:
    """Default settings with ``[monitor]`` overrides."""
    base = base or Settings()
    return msgspec.structs.replace(base, monitor=msgspec.structs.replace(base.monitor, **monitor))


class MonitorHarness:
    """A ``Monitor`` on its own bus and simulated clock; ``check_at`` moves time and evaluates the rules."""

    def __init__(self, settings: Settings, *, metrics_port: int | None = None, clock: SimClock | None = None,
                 bus: Bus | None = None, ctx: Context | None = None) -> None:
        self.bus = bus or Bus()
        self.clock = clock or SimClock(T0)
        if ctx is None:
            books = BookStore()
            self.bus.subscribe(BookUpdate, books.update, name="books")  # first, as the engine does
            ctx = Context(bus=self.bus, settings=settings, clock=self.clock, run_id="test-run",
                          log=logger.bind(run_id="test-run"), books=books, liquidity=books)
        self.ctx = ctx
        self.monitor = Monitor(metrics_port=metrics_port)
        self.monitor.setup(self.ctx)
        self.alerts: list[Alert] = []
        self.bus.subscribe(Alert, self.alerts.append, name="test")

    async def start(self) -> None:
        await self.bus.start()
        await self.monitor.start()

    async def stop(self) -> None:
        await self.monitor.stop()
        await self.bus.stop()

    def check_at(self, ts_ns: int) -> None:
        self.clock.advance_to(ts_ns)
        self.monitor.check()

    def markets(self, venue: str, *symbols: str, staleness_ms: float = 1000.0, fee: float = 0.001) -> None:
        markets = tuple(Market(symbol=s, base=s.split("/")[0], quote=s.split("/")[1], taker_fee=fee)
                        for s in symbols)
        self.bus.publish(MarketsLoaded(venue=venue, markets=markets, staleness_ms=staleness_ms,
                                       ts_init=self.clock.time_ns()))

    def book(self, venue: str, symbol: str, bid: float, ask: float, *,
             ts_event: int | None = None) -> BookUpdate:
        now = self.clock.time_ns()
        book = BookUpdate(venue=venue, symbol=symbol, bids=((bid, 1.0),), asks=((ask, 1.0),),
                          ts_event=now if ts_event is None else ts_event, ts_init=now)
        self.bus.publish(book, venue)
        return book

    def keys(self, *, recovered: bool | None = None) -> list[str]:
        return [a.key for a in self.alerts if recovered is None or a.recovered == recovered]


def opportunity(id: str, book_ts: int, ts_init: int, legs: t.Sequence[tuple[str, str, str]] = (
        ("alpha", "BTC/USDT", "buy"), ("beta", "BTC/USDT", "sell"))) -> Opportunity:
    return Opportunity(id=id, strategy="cross_exchange",
                       legs=tuple(Leg(venue=v, symbol=s, side=side, amount=0.01, price=100.0,  # type: ignore[arg-type]
                                      expected_price=100.0, fee_rate=0.001) for v, s, side in legs),
                       profit=1.0, profit_bps=10.0, quote="USDT", notional=1.0,
                       book_ts=tuple(book_ts for _ in legs), ts_event=book_ts, ts_init=ts_init)


def result(id: str, status: str = "complete", realized: float = 1.0, residual: dict[str, float] | None = None,
           ts: int = T0, quote: str = "USDT", unrealized: float = 0.0) -> ArbResult:
    return ArbResult(opportunity_id=id, strategy="cross_exchange", status=status, legs=(),  # type: ignore[arg-type]
                     quote=quote, expected_profit=1.0, realized_profit=realized, fees=0.1,
                     slippage=1.0 - realized - unrealized, residual=residual or {},
                     unrealized_profit=unrealized, ts_init=ts)


def run(coro: t.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
    """Run one test coroutine on a fresh loop."""
    return asyncio.run(coro)


def halt_path(tmp_path: Path) -> str:
    return str(tmp_path / "data" / "HALT")
