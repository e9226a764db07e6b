"""The ``trader`` plugin: one venue per venue a source announces, and the executor over them.

Venues are paper accounts (the default: paper trading on whatever data the source gives, live
exchange data included), or with ``run.live`` (``arb run --live``, which passed the CLI's live
gate) live ccxt venues (``trading.live.LiveVenue``) on the exchanges of the ``ccxt`` source.

Wiring, all inline on the bus (trading starts before strategies, so its handlers run first):

* ``MarketsLoaded`` -> paper: create the venue's account (balances from ``paper.balances`` with
  ``paper.venue_balances`` on top) or update its markets; publish its ``BalanceUpdate``. Live:
  open the exchange in a task (``trading.connect``: keys from the environment, markets, balances);
  until it is open the venue is unknown to the risk gate, so nothing trades there; a venue that
  cannot open raises a critical ``Alert`` (``venue.open:<venue>``) and stays closed. An open live
  venue re-reads its balances every ``live.balance_refresh_s`` (and the executor after every
  arbitrage), each published as a ``BalanceUpdate``;
* ``Opportunity`` -> ``Executor.on_opportunity`` (risk checks, then a task per arbitrage);
* ``TradingHalted`` / ``TradingResumed`` (the monitor's kill switch) -> ``halt`` and cancel every
  venue's open orders / ``resume``;
* ``BookUpdate`` / ``Fill`` -> the positions ledger (``trading.positions``): re-mark what is held
  in that market / remember the last price there.

At start (``arb run``, not a backtest) the trader reads the journal's unfinished orders and
arbitrages from ``storage.path`` and reconciles them with the venues before anything trades
(``trading.reconcile``): paper orders of a killed run are recorded ``lost`` at once; in a live run
every venue they name is reconciled as soon as it opens, and the risk gate refuses every
opportunity (rule ``reconciling``) until all of them are, and the unfinished arbitrages finished.

The trader keeps no books: the paper venues fill against the run's book store (``ctx.books``, which
the engine updates before any plugin sees a ``BookUpdate``) and record there what each fill took
(``ctx.liquidity``); the executor hedges against the same store.

The trader provides ``ctx.views.trading``, a ``TraderView`` (the ``TradingState`` service of
``arbitrage.plugin``: open arbitrages, balances, residual, open positions with their marks, halt
reason), for the dashboard and any
other reader. ``--live`` with a source other than ``ccxt`` is refused at setup: silently paper
trading when real orders were asked for would be worse.
"""

from __future__ import annotations

import asyncio
import sqlite3
import typing as t

import msgspec

from arbitrage.clock import SimClock
from arbitrage.errors import PluginError
from arbitrage.events import (
    Alert,
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
from arbitrage.trading.reconcile import Reconciler
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
        """Why trading is halted ('' while it is not), start-up reconciliation included."""
        risk = self._trader.executor.risk
        return risk.halted or (f"reconciling: {risk.reconciling_reason}" if risk.reconciling else "")


class Trader(Plugin):
    """Paper (or, with ``--live``, ccxt) venues and the executor: risk checks, concurrent IOC legs,
    hedging and unwinding."""

    name = "trader"
    kind = "trading"
    description = "Paper or live venues and the executor: risk checks, concurrent IOC legs, hedges, unwinds."

    stop_timeout_s: t.ClassVar[float] = 5.0
    """How long ``stop`` waits (wall time) for running arbitrages before abandoning them."""

    def setup(self, ctx: Context) -> None:
        """Create the executor and subscribe.

        :raises PluginError: when live trading is requested on a source other than ``ccxt``.
        """
        super().setup(ctx)
        self.live = ctx.settings.run.live
        """Live venues (real orders) instead of paper ones."""
        if self.live and ctx.settings.run.source != "ccxt":
            raise PluginError(f"--live needs --source ccxt, not {ctx.settings.run.source!r}")
        if self.live:  # ccxt's import takes ~0.5 s: here, not on the running loop when a venue opens
            import arbitrage.trading.connect  # noqa: F401
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
        self.reconciler = Reconciler(bus=ctx.bus, clock=ctx.clock, log=ctx.log, executor=self.executor,
                                     books=ctx.books, settings=ctx.settings.live, live=self.live)
        """Start-up reconciliation of the journal with the venues (``trading.reconcile``)."""
        self._paper: dict[str, PaperVenue] = {}
        ctx.bus.subscribe(MarketsLoaded, self._on_markets, name="trader")
        ctx.bus.subscribe(Opportunity, self.executor.on_opportunity, name="trader")
        ctx.bus.subscribe(TradingHalted, self._on_halted, name="trader")
        ctx.bus.subscribe(TradingResumed, self._on_resumed, name="trader")
        ctx.bus.subscribe(BookUpdate, self.positions.on_book, name="trader:positions")
        ctx.bus.subscribe(Fill, self.positions.on_fill, name="trader:positions")
        self._cancels: set[asyncio.Task[None]] = set()
        self._live_tasks: dict[str, asyncio.Task[None]] = {}
        """venue -> its opening task, then its balance timer."""
        self._live: dict[str, t.Any] = {}
        """venue -> its open ``LiveVenue``."""
        ctx.views.trading = TraderView(self)

    async def start(self) -> None:
        """Read the journal's unfinished orders and arbitrages for start-up reconciliation (not in a
        backtest: its simulated orders have nothing to recover; a journal that cannot be read holds
        trading, ``Reconciler.unreadable``); announce the balances of venues
        already known (normally none: sources start later)."""
        if not isinstance(self.ctx.clock, SimClock):
            from arbitrage.storage.queries import unfinished_arbitrages, unfinished_orders

            path = self.ctx.settings.storage.path
            try:
                orders = await asyncio.to_thread(unfinished_orders, path)
                arbitrages = await asyncio.to_thread(unfinished_arbitrages, path) if self.live else []
            except sqlite3.DatabaseError as exc:
                self.reconciler.unreadable(f"{type(exc).__name__}: {exc}")
            else:
                self.reconciler.load(orders, arbitrages)
        for name, venue in self.venues.items():
            self.ctx.bus.publish(BalanceUpdate(venue=name, balances=venue.balances(),
                                               ts_init=self.ctx.clock.time_ns()))

    async def stop(self) -> None:
        """Let running arbitrages finish (hedges included), abandon them after ``stop_timeout_s``."""
        await self.reconciler.stop()
        if not await self.executor.join(timeout=self.stop_timeout_s):
            self.ctx.log.error("arbitrages still running after {}s at stop: {}", self.stop_timeout_s,
                               list(self.executor.open_arbs))
            await self.executor.cancel()
        if self._cancels:
            await asyncio.gather(*self._cancels, return_exceptions=True)
        for task in self._live_tasks.values():
            task.cancel()
        await asyncio.gather(*self._live_tasks.values(), return_exceptions=True)
        for name, venue in self.venues.items():
            try:
                await venue.cancel_all()
            except Exception as exc:
                self.ctx.log.bind(venue=name).error("could not cancel open orders on {}: {!r}", name, exc)
        for venue in self._live.values():
            await venue.close()
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
        if self.live:
            self._on_live_markets(event)
            return
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

    def _on_live_markets(self, event: MarketsLoaded) -> None:
        live = self._live.get(event.venue)
        if live is not None:
            live.update_markets(event.markets)
        elif event.venue not in self._live_tasks:  # markets announced again while opening: read then
            self._live_tasks[event.venue] = asyncio.get_running_loop().create_task(
                self._open_live(event.venue), name=f"trader:open:{event.venue}")

    async def _open_live(self, name: str) -> None:
        """Open the live venue ``name``, then re-read its balances every ``live.balance_refresh_s``."""
        from arbitrage.trading.connect import connect

        ctx = self.ctx
        log = ctx.log.bind(venue=name)
        try:
            venue = await connect(name, settings=ctx.settings, markets=self.markets[name].values(),
                                  clock=ctx.clock, log=ctx.log, budgets=ctx.budgets)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"live venue {name} could not open, nothing trades there: {type(exc).__name__}: {exc}"
            log.critical(message)
            ctx.bus.publish(Alert(key=f"venue.open:{name}", level="critical", message=message,
                                  ts_init=ctx.clock.time_ns()))
            return
        venue.update_markets(self.markets[name].values())  # announced again while it opened
        self._live[name] = venue
        self.venues[name] = venue
        log.warning("live venue {} open: {} markets, balances {}", name, len(venue.markets), venue.balances())
        self.reconciler.venue_open(name, venue)
        while True:
            ctx.bus.publish(BalanceUpdate(venue=name, balances=venue.balances(), ts_init=ctx.clock.time_ns()))
            await ctx.clock.sleep(ctx.settings.live.balance_refresh_s)
            try:
                await venue.refresh()
            except Exception as exc:  # the next read may work; the executor's accounting goes on
                log.warning("could not read the balances of {}: {}: {}", name, type(exc).__name__, exc)

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
            "reconciliation": self.reconciler.summary(),
        }
