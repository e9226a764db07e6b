"""The engine: load plugins, start them in order, run until told to stop, stop cleanly, summarise."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
import typing as t

from loguru import logger

from arbitrage import compiled
from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.errors import NoSuchPlugin, PluginError, SettingsError
from arbitrage.events import BookUpdate, FeedStatus
from arbitrage.exchanges.budget import Budgets
from arbitrage.plugin import Context, Plugin, StopFlag, Views, load_plugin, new_registry, start_order
from arbitrage.settings import Settings
from arbitrage.tally import Tally

__all__ = ["DROP_BOOKS_ON", "Engine", "Tally", "new_run_id", "run_engine"]

DROP_BOOKS_ON = frozenset({"reconnecting", "error"})
"""``FeedStatus`` states after which a venue's books (or one symbol's) are not traded: the source
resubscribes and the store holds nothing of it until its next book. ``stale`` books are refused by
age already (and still mark positions); ``stopped`` keeps the last books for the final marks."""


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


class Engine:
    """One run: a bus, a clock, plugins, and the lifecycle around them.

    The engine owns what plugins share besides events (``arbitrage.plugin``'s services): the book
    store, the run's ``Tally``, its Prometheus registry and the views plugins provide each other,
    handed to every plugin through its own ``Context``.
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None, run_id: str | None = None,
                 plugins: t.Sequence[Plugin] | None = None) -> None:
        """
        :param plugins: plugin instances to use instead of the ones named in settings (tests, backtests).
        """
        self.settings = settings
        self.bus = Bus()
        self.clock = clock or Clock()
        self.run_id = run_id or new_run_id()
        self.books = BookStore()
        self.bus.subscribe(BookUpdate, self.books.update, name="books")  # first: before any plugin
        self.bus.subscribe(FeedStatus, self._on_feed_status, name="books")
        self.tally = Tally(self.bus, self.books)
        self.metrics = new_registry()
        """The run's own Prometheus registry (plugins register collectors; the monitor serves it)."""
        self.views = Views()
        self.budgets = Budgets(settings.ccxt.rate_limits)
        """One request budget per exchange, shared by the live source and the live venue."""
        self.stop_flag = StopFlag()
        self.ctx = self._context(logger.bind(run_id=self.run_id))
        self.plugins = list(plugins) if plugins is not None else self._load_from_settings()
        self.started_at = 0.0
        self.elapsed = 0.0
        self.bus_stats: dict[str, dict[str, int]] = {}

    def _context(self, log: t.Any) -> Context:
        return Context(bus=self.bus, settings=self.settings, clock=self.clock, run_id=self.run_id, log=log,
                       books=self.books, liquidity=self.books, tally=self.tally, metrics=self.metrics,
                       views=self.views, budgets=self.budgets, stop=self.stop_flag)

    def _on_feed_status(self, status: FeedStatus) -> None:
        """A feed resyncing or failing: the store drops its books until fresh ones arrive."""
        if status.status in DROP_BOOKS_ON:
            self.books.drop(status.venue, status.symbol)

    def _load_from_settings(self) -> list[Plugin]:
        """:raises SettingsError: naming the setting of a plugin that is not installed."""
        run = self.settings.run
        names: list[tuple[str, str, str | None]] = [("run.source", run.source, "source")]
        if run.strategy:  # "" = none (a Redis collector runs only its source and the bridge)
            names.append(("run.strategy", run.strategy, "strategy"))
        names += [(f"run.plugins[{i}]", name, None) for i, name in enumerate(run.plugins)
                  if name not in (run.source, run.strategy)]
        plugins = []
        for key, name, kind in names:
            try:
                plugins.append(load_plugin(name, kind)())
            except NoSuchPlugin as exc:
                raise SettingsError(key, str(exc)) from None
        return plugins

    def plugin(self, name: str) -> Plugin:
        """The loaded plugin called ``name``."""
        for p in self.plugins:
            if p.name == name:
                return p
        raise KeyError(name)

    async def run(self, duration: float | None = None) -> dict[str, t.Any]:
        """Set up, start, run until ``duration`` seconds pass, a stop is requested or a signal
        arrives, then stop and return the summary.

        :raises PluginError: if a plugin fails to set up or start (the others are stopped first).
        :raises SettingsError: if a plugin refuses a setting's value (e.g. an unwritable path).
        """
        duration = self.settings.run.duration if duration is None else duration
        log = self.ctx.log
        ordered = start_order(self.plugins)
        for p in ordered:
            try:
                p.setup(self._context(log.bind(plugin=p.name)))
            except SettingsError:
                raise  # names its key: the plugin's name adds nothing
            except Exception as exc:
                raise PluginError(f"plugin {p.name} failed to set up: {exc}") from exc
        await self.bus.start()
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        started: list[Plugin] = []
        self.started_at = time.monotonic()
        try:
            for p in ordered:
                try:
                    await p.start()
                except SettingsError:
                    raise
                except Exception as exc:
                    raise PluginError(f"plugin {p.name} failed to start: {exc}") from exc
                started.append(p)
            run = self.settings.run
            log.info("run {} started: source={} strategy={} plugins={}", self.run_id, run.source,
                     run.strategy, [p.name for p in ordered])
            line, warn = compiled.describe()
            (log.warning if warn else log.info)(line)
            waiter = asyncio.ensure_future(self.ctx.stop.event.wait())
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout=duration or None)
            except TimeoutError:
                self.ctx.request_stop("duration reached")
            finally:
                waiter.cancel()
            log.info("stopping: {}", self.ctx.stop.reason)
        finally:
            await self._shutdown(started)
            self._remove_signals(loop)
        self.elapsed = time.monotonic() - self.started_at
        summary = self.summary()
        for p in started:
            try:
                p.finish(summary)
            except Exception:
                self.ctx.log.opt(exception=True).error("plugin {} failed to take the summary", p.name)
        return summary

    async def _shutdown(self, started: list[Plugin]) -> None:
        """Stop sources first, let queues drain, then stop everything else in reverse order."""
        sources = [p for p in reversed(started) if p.kind == "source"]
        others = [p for p in reversed(started) if p.kind != "source"]
        for p in sources:
            await self._stop_one(p)
        await self.bus.drain()
        for p in others:
            await self._stop_one(p)
            await self.bus.drain()
        self.bus_stats = self.bus.stats()
        await self.bus.stop()

    async def _stop_one(self, p: Plugin) -> None:
        try:
            await p.stop()
        except Exception:
            self.ctx.log.opt(exception=True).error("plugin {} failed to stop cleanly", p.name)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.ctx.request_stop, f"signal {sig.name}")

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def summary(self) -> dict[str, t.Any]:
        """What the run did: counts, realized / unrealized / net PnL and fees by quote currency (net
        = realized + unrealized, the open positions at their last marks), each plugin's figures."""
        tally = self.tally
        errors = sum(s["errors"] for s in self.bus_stats.values())
        return {
            "run_id": self.run_id,
            "source": self.settings.run.source,
            "strategy": self.settings.run.strategy,
            "elapsed_s": round(self.elapsed, 3),
            "stop_reason": self.ctx.stop.reason,
            "events_processed": tally.books,
            "opportunities": tally.opportunities,
            "rejected": tally.rejected,
            "orders": tally.orders,
            "arbs_executed": sum(tally.arbs.values()),
            "arbs_by_status": dict(tally.arbs),
            "realized_pnl": {k: round(v, 10) for k, v in tally.pnl.items()},
            "unrealized_pnl": {k: round(v, 10) for k, v in tally.unrealized.items()},
            "net_pnl": {k: round(v, 10) for k, v in tally.net.items()},
            "fees": {k: round(v, 10) for k, v in tally.fees.items()},
            "handler_errors": errors,
            "plugins": {p.name: s for p in self.plugins if (s := p.summary())},
        }


def run_engine(engine: Engine, duration: float | None = None) -> dict[str, t.Any]:
    """Run an engine to completion on uvloop and return its summary."""
    import uvloop

    return uvloop.run(engine.run(duration))
