"""The ``trader`` plugin: one paper venue per venue a source announces, and the executor over them.

Wiring, all inline on the bus (trading starts before strategies, so its handlers run first):

* ``MarketsLoaded`` -> create the venue's paper account (balances from ``paper.balances`` with
  ``paper.venue_balances`` on top) or update its markets; publish its ``BalanceUpdate``;
* ``Opportunity`` -> ``Executor.on_opportunity`` (risk checks, then a task per arbitrage);
* ``TradingHalted`` / ``TradingResumed`` (the monitor's kill switch) -> ``halt`` and cancel every
  venue's open orders / ``resume``;
* ``BookUpdate`` / ``Fill`` -> the positions ledger (``trading.positions``): re-mark what is held
  in that market / remember the last price there.

The trader keeps no books: the paper venues fill against the run's book store (``ctx.books``, which
the engine updates before any plugin sees a ``BookUpdate``) and record there what each fill took
(``ctx.liquidity``); the executor hedges against the same store.

The trader provides ``ctx.views.trading``, a ``TraderView`` (the ``TradingState`` service of
``arbitrage.plugin``: open arbitrages, balances, residual, open positions with their marks, halt
reason), for the dashboard and any
other reader. ``--live`` is refused at setup until a live venue exists: silently paper trading when
real orders were asked for would be worse.
"""

from __future__ import annotations

import asyncio
import typing as t

import msgspec

from arbitrage.errors import PluginError
from arbitrage.events import (
    BalanceUpdate,
    BookUpdate,
    Fill,
    Market,
    MarketsLoaded,
    Opportunity,
    Position,
    TradingHalted,
    TradingResumed,
)
from arbitrage.plugin import Context, Plugin
from arbitrage.trading.executor import Executor
from arbitrage.trading.paper import PaperVenue, paper_balances
from arbitrage.trading.positions import Positions
from arbitrage.trading.venue import Venue


class TraderView:
    """The trader's ``TradingState`` service (read-only); every property returns a copy."""

    def __init__(self, trader: Trader) -> None:
        self._trader = trader

    @property
    def balances(self) -> dict[str, dict[str, float]]:
        """venue -> asset -> free balance."""
        return {name: venue.balances() for name, venue in self._trader.venues.items()}

    @property
    def open_arbs(self) -> tuple[str, ...]:
        """Ids of the opportunities being executed."""
        return self._trader.executor.open_arbs

    @property
    def residual(self) -> dict[str, float]:
        """Unhedged position per asset over the run."""
        return dict(self._trader.executor.risk.residual)

    @property
    def positions(self) -> tuple[Position, ...]:
        """Open positions of the ledger, each with its cost and current mark."""
        return self._trader.positions.open()

    @property
    def halted(self) -> str:
        """Why trading is halted ('' while it is not)."""
        return self._trader.executor.risk.halted


class Trader(Plugin):
    """Paper venues and the executor: risk checks, concurrent IOC legs, hedging and unwinding."""

    name = "trader"
    kind = "trading"
    description = "Paper venues and the executor: risk checks, concurrent IOC legs, hedges and unwinds."

    stop_timeout_s: t.ClassVar[float] = 5.0
    """How long ``stop`` waits (wall time) for running arbitrages before abandoning them."""

    def setup(self, ctx: Context) -> None:
        """Create the executor and subscribe; refuse ``--live`` (no live venue yet).

        :raises PluginError: when live trading is requested.
        """
        super().setup(ctx)
        if ctx.settings.run.live:
            raise PluginError("live trading is not available yet; run without --live to paper trade")
        self.venues: dict[str, Venue] = {}
        self.markets: dict[str, dict[str, Market]] = {}
        self.staleness_ms: dict[str, float] = {}
        self.positions = Positions(bus=ctx.bus, clock=ctx.clock, books=ctx.books, markets=self.markets,
                                   staleness_ms=self.staleness_ms)
        """The positions ledger: what arbitrages left open, marked to market."""
        self.executor = Executor(bus=ctx.bus, clock=ctx.clock, settings=ctx.settings.trading,
                                 venues=self.venues, markets=self.markets, books=ctx.books,
                                 staleness_ms=self.staleness_ms, log=ctx.log, positions=self.positions,
                                 liquidity=ctx.liquidity, currency=ctx.settings.risk.currency,
                                 unknown_retry_s=ctx.settings.live.unknown_retry_s)
        self._paper: dict[str, PaperVenue] = {}
        ctx.bus.subscribe(MarketsLoaded, self._on_markets, name="trader")
        ctx.bus.subscribe(Opportunity, self.executor.on_opportunity, name="trader")
        ctx.bus.subscribe(TradingHalted, self._on_halted, name="trader")
        ctx.bus.subscribe(TradingResumed, self._on_resumed, name="trader")
        ctx.bus.subscribe(BookUpdate, self.positions.on_book, name="trader:positions")
        ctx.bus.subscribe(Fill, self.positions.on_fill, name="trader:positions")
        self._cancels: set[asyncio.Task[None]] = set()
        ctx.views.trading = TraderView(self)

    async def start(self) -> None:
        """Announce the balances of venues already known (normally none: sources start later)."""
        for name, venue in self.venues.items():
            self.ctx.bus.publish(BalanceUpdate(venue=name, balances=venue.balances(),
                                               ts_init=self.ctx.clock.time_ns()))

    async def stop(self) -> None:
        """Let running arbitrages finish (hedges included), abandon them after ``stop_timeout_s``."""
        if not await self.executor.join(timeout=self.stop_timeout_s):
            self.ctx.log.error("arbitrages still running after {}s at stop: {}", self.stop_timeout_s,
                               list(self.executor.open_arbs))
            await self.executor.cancel()
        if self._cancels:
            await asyncio.gather(*self._cancels, return_exceptions=True)
        for venue in self.venues.values():
            await venue.cancel_all()
        self.positions.flush()

    def halt(self, reason: str) -> None:
        """Kill switch: refuse every new opportunity (running ones finish, hedges included).

        The reason is what ``TraderView.halted`` (the dashboard's banner) shows until ``resume``.
        """
        self.executor.risk.halt(reason)
        self.ctx.log.warning("trading halted: {}", reason)

    def resume(self) -> None:
        """Undo ``halt``."""
        self.executor.risk.resume()
        self.ctx.log.info("trading resumed")

    async def cancel_open_orders(self) -> int:
        """Ask every venue to cancel our open orders; a venue that fails is logged, the rest still run.

        :returns: how many venues confirmed.
        """
        names = list(self.venues)
        results = await asyncio.gather(*(self.venues[n].cancel_all() for n in names), return_exceptions=True)
        failed = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)}
        for name, exc in failed.items():
            self.ctx.log.bind(venue=name).error("could not cancel open orders on {}: {!r}", name, exc)
        self.ctx.log.info("open orders cancelled on {} of {} venues", len(names) - len(failed), len(names))
        return len(names) - len(failed)

    def _on_halted(self, event: TradingHalted) -> None:
        self.halt(event.reason)
        task = asyncio.get_running_loop().create_task(self.cancel_open_orders(), name="trader:cancel_all")
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    def _on_resumed(self, _: TradingResumed) -> None:
        self.resume()

    def _on_markets(self, event: MarketsLoaded) -> None:
        self.markets.setdefault(event.venue, {}).update({m.symbol: m for m in event.markets})
        self.staleness_ms[event.venue] = event.staleness_ms
        venue = self._paper.get(event.venue)
        if venue is not None:
            venue.update_markets(event.markets, event.staleness_ms)
            return
        paper = self.ctx.settings.paper
        venue = PaperVenue(event.venue, clock=self.ctx.clock, books=self.ctx.books,
                           liquidity=self.ctx.liquidity, markets=event.markets,
                           staleness_ms=event.staleness_ms, latency_ms=self.ctx.settings.trading.latency_ms,
                           balances=paper_balances(event.venue, paper.balances, paper.venue_balances))
        self._paper[event.venue] = venue
        self.venues[event.venue] = venue
        self.ctx.log.bind(venue=event.venue).info("paper venue {} ready: {} markets, balances {}",
                                                  event.venue, len(event.markets), venue.balances())
        self.ctx.bus.publish(BalanceUpdate(venue=event.venue, balances=venue.balances(),
                                           ts_init=self.ctx.clock.time_ns()))

    def summary(self) -> dict[str, t.Any]:
        """Orders by purpose and status, fills, refusals by reason, arbitrages by status, residual, open
        positions, final balances."""
        ex = self.executor
        return {
            "orders": sum(ex.orders.values()),
            "orders_by_purpose": dict(ex.orders),
            "orders_by_status": dict(ex.order_status),
            "fills": ex.fills,
            "hedges": ex.orders["hedge"],
            "unwinds": ex.orders["unwind"],
            "rejected": dict(ex.rejected),
            "arbs": dict(ex.arbs),
            "residual": {asset: v for asset, v in ex.risk.residual.items() if v},
            "positions": [msgspec.to_builtins(p) | {"unrealized": p.unrealized}
                          for p in self.positions.open()],
            "balances": {name: venue.balances() for name, venue in self.venues.items()},
        }
