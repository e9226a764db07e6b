"""The plugin contract and discovery from the ``arbitrage.plugins`` entry-point group.

A plugin is a class with a ``name``, a ``kind`` and a one-line ``description``. The engine
creates it with no arguments, calls ``setup(ctx)`` (subscribe to the bus here: nothing is
published yet), then ``await start()`` in dependency order, and ``await stop()`` in reverse.
A plugin that fails to set up or start aborts the run. Plugins never import each other: they
share only the events in ``arbitrage.events`` and what the context gives them.

Besides events, the context holds only typed, read-only services, each declared here as a
``Protocol`` so that a reader depends on this module, never on the plugin behind the service:

=================  ==================================  ========================================
context            Protocol                            provided by
=================  ==================================  ========================================
``books``          ``Books``                           the engine's one book store
``liquidity``      ``Liquidity``                       the same store (venues that fill orders)
``tally``          ``RunTally``                        the engine: what the run did so far
``metrics``        ``Metrics``                         the engine: the run's Prometheus registry
``budgets``        ``RequestBudgets``                  the engine: one request budget per exchange
``views.monitor``  ``MonitorReadings`` (or None)       the monitor, at its setup
``views.trading``  ``TradingState`` (or None)          the trader, at its setup
=================  ==================================  ========================================

A view is None while no loaded plugin provides it, so a reader looks it up when it uses it (the
provider may set up after the reader) and copes with its absence.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import typing as t
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from loguru import logger

from arbitrage.book import BookSide, BookStore
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.errors import NoSuchPlugin, PluginError
from arbitrage.events import Alert, BookUpdate, Level, Position
from arbitrage.exchanges.budget import Budgets
from arbitrage.settings import Settings
from arbitrage.tally import Tally

if t.TYPE_CHECKING:
    from prometheus_client.registry import Collector

GROUP = "arbitrage.plugins"
Kind = t.Literal["source", "strategy", "trading", "storage", "monitor", "notifier", "bridge", "ui"]

START_RANK: dict[str, int] = {
    "storage": 0, "monitor": 1, "notifier": 2, "bridge": 3, "trading": 4, "strategy": 5, "ui": 6, "source": 7,
}
"""Default start order by kind: consumers first, market sources last (stop runs in reverse)."""


class Books(t.Protocol):
    """The run's latest books (read-only): per venue and symbol, with the liquidity our own orders
    took or have in flight removed by ``levels``. Updated by the engine before any plugin sees a
    ``BookUpdate``."""

    @property
    def by_symbol(self) -> c.Mapping[str, c.Mapping[str, BookUpdate]]:
        """symbol -> venue -> latest book (hot paths read it directly; never write it)."""
        ...

    def get(self, venue: str, symbol: str) -> BookUpdate | None:
        """The latest snapshot as the venue published it, or None."""
        ...

    def venues(self, symbol: str) -> c.Mapping[str, BookUpdate]:
        """venue -> latest book of ``symbol``."""
        ...

    def levels(self, venue: str, symbol: str, side: BookSide) -> c.Sequence[Level]:
        """One side of the latest book net of what our orders took or have in flight, best first
        (what a plan may count on; the snapshot's own side while nothing of ours touches it)."""
        ...

    def touched(self, venue: str, symbol: str) -> bool:
        """True while our overlay changes this book's levels (cheap: hot paths read raw books
        otherwise)."""
        ...


class Liquidity(t.Protocol):
    """The overlay's writers: a venue that fills our orders records the liquidity each fill took
    (paper venues), and the executor marks what an order in flight may take, so that no later plan
    or fill counts on it again."""

    def take(self, venue: str, symbol: str, side: BookSide, price: float, amount: float) -> None: ...

    def fillable(self, venue: str, symbol: str, side: BookSide) -> c.Sequence[Level]:
        """One side of the latest book net of what our fills took (not of orders in flight): what
        the venue would still fill."""
        ...

    def reserve(self, order_id: str, venue: str, symbol: str, side: BookSide, limit: float,
                amount: float) -> float:
        """Hold up to ``amount`` of the net levels within ``limit`` for an order in flight; returns
        how much of it the snapshot shows there but our own orders already took or hold."""
        ...

    def release(self, order_id: str) -> None:
        """The order's result is known: drop what it held (its fills were recorded by ``take``)."""
        ...


class RunTally(t.Protocol):
    """What the run has done so far, as the engine counts it (the numbers of its summary)."""

    @property
    def books(self) -> int:
        """``BookUpdate`` events published."""
        ...

    @property
    def opportunities(self) -> int: ...

    @property
    def rejected(self) -> int:
        """Opportunities the trader refused (``OpportunityRejected``)."""
        ...

    @property
    def orders(self) -> int:
        """Orders submitted, of every purpose."""
        ...

    @property
    def arbs(self) -> c.Mapping[str, int]:
        """Finished arbitrages by status."""
        ...

    @property
    def pnl(self) -> c.Mapping[str, float]:
        """Realized profit per quote currency."""
        ...

    @property
    def unrealized(self) -> c.Mapping[str, float]:
        """Unrealized profit of the open positions per quote currency, at their latest marks."""
        ...

    @property
    def net(self) -> c.Mapping[str, float]:
        """``pnl + unrealized`` per quote currency."""
        ...

    @property
    def fees(self) -> c.Mapping[str, float]:
        """Fees per quote currency."""
        ...


class Metrics(t.Protocol):
    """The run's own Prometheus registry (never the global one): plugins add the collectors of their
    figures; the monitor serves it on ``/metrics``. Collectors are read when scraped, so the hot
    path pays nothing."""

    def register(self, collector: Collector) -> None: ...

    def unregister(self, collector: Collector) -> None: ...

    def collect(self) -> c.Iterable[t.Any]:
        """Every metric of every registered collector (what ``generate_latest`` renders)."""
        ...


class RequestBudget(t.Protocol):
    """One exchange's request budget, shared by its market data and its orders (orders first)."""

    async def acquire(self, priority: t.Literal["order", "data"] = "data", cost: float = 1.0) -> None:
        """Wait for ``cost`` of the budget (an ``order`` before any waiting ``data``) and take it."""
        ...

    def hold(self, seconds: float) -> None:
        """Let no request through for ``seconds`` (the exchange's ``Retry-After`` or ban)."""
        ...

    @property
    def held_for(self) -> float:
        """Seconds until a hold ends (0 when none)."""
        ...


class RequestBudgets(t.Protocol):
    """The run's request budgets (``arbitrage.exchanges.budget``), one per exchange."""

    def for_exchange(self, name: str, rate_per_s: float) -> RequestBudget:
        """The budget of ``name``, made at ``rate_per_s`` unless configured or made already."""
        ...


class FeedInfo(t.NamedTuple):
    """One (venue, symbol) feed as the monitor sees it now."""

    venue: str
    symbol: str
    status: str
    """The venue's last ``FeedStatus`` ('' if none), or ``stale`` when the book is too old."""
    age_s: float
    """Since the newest book arrived."""
    rate: float
    """Books per second."""
    latency_ms: float
    """Venue timestamp to receipt of the newest book."""
    bid: float | None
    ask: float | None


class LatencyInfo(t.NamedTuple):
    """Summary of one latency histogram (recent samples), in milliseconds."""

    count: int
    p50_ms: float | None
    p99_ms: float | None


class MonitorReadings(t.Protocol):
    """What the monitor shares of its figures (the monitor's ``MonitorView``). Every method returns
    a fresh snapshot the reader may keep; call from the event loop's thread."""

    @property
    def halted(self) -> str:
        """Why trading is halted ('' while it is not)."""
        ...

    @property
    def halt_rule(self) -> str:
        """Which kill-switch rule halted trading ('' while it is not halted)."""
        ...

    @property
    def metrics_url(self) -> str:
        """``http://host:port`` of the metrics server, '' when it is off."""
        ...

    @property
    def loop_lag_ms(self) -> float:
        """The latest event-loop lag sample."""
        ...

    def health(self) -> dict[str, t.Any]:
        """``{"status": "ok" | "degraded" | "halted", "reasons": [...]}``."""
        ...

    def active_alerts(self) -> list[Alert]:
        """Alerts firing now, most severe first, then oldest first."""
        ...

    def recent_alerts(self, n: int = 10) -> list[Alert]:
        """The last ``n`` alerts published (recoveries included), oldest first."""
        ...

    def feeds(self) -> list[FeedInfo]:
        """Every (venue, symbol) feed seen, sorted by venue then symbol."""
        ...

    def fees(self) -> dict[tuple[str, str], float]:
        """(venue, symbol) -> taker fee."""
        ...

    def latency(self) -> dict[str, LatencyInfo]:
        """Stage -> recent latency summary."""
        ...

    def pnl(self) -> dict[str, float]:
        """Realized PnL per quote currency over the run."""
        ...

    def daily_pnl(self) -> dict[str, float]:
        """Net PnL per quote currency over the current UTC day (realized plus how the open
        positions' marks moved since the day began: the kill switch's figure)."""
        ...

    def residual(self) -> dict[str, float]:
        """Unhedged position per asset over the run (non-zero ones)."""
        ...

    def counts(self) -> dict[str, t.Any]:
        """Opportunities, rejections by reason, orders by purpose, arbitrages by status."""
        ...


class TradingState(t.Protocol):
    """What the trader shares of its state (the trader's ``TraderView``); each property a copy."""

    @property
    def open_arbs(self) -> tuple[str, ...]:
        """Ids of the opportunities being executed."""
        ...

    @property
    def balances(self) -> dict[str, dict[str, float]]:
        """venue -> asset -> free balance."""
        ...

    @property
    def residual(self) -> dict[str, float]:
        """Unhedged position per asset over the run."""
        ...

    @property
    def positions(self) -> tuple[Position, ...]:
        """Open positions (venue, asset, quote, amount, cost, mark), re-marked while the run goes."""
        ...

    @property
    def halted(self) -> str:
        """Why trading is halted ('' while it is not)."""
        ...


@dataclass
class Views:
    """Read-only views that plugins provide for each other, one slot per service; one instance is
    shared by every plugin of a run. The provider fills its slot at setup; a slot stays None while
    no loaded plugin provides it."""

    monitor: MonitorReadings | None = None
    """The monitor's figures (feeds, latency, alerts, halt): set by the ``monitor`` plugin."""
    trading: TradingState | None = None
    """The trader's state (open arbitrages, balances, residual, halt): set by the ``trader`` plugin."""


def new_registry() -> Metrics:
    """A fresh Prometheus registry for one run (prometheus_client is imported only when one is made)."""
    from prometheus_client import CollectorRegistry

    return CollectorRegistry(auto_describe=False)


@dataclass
class Context:
    """What a plugin gets at setup: the shared services of one run (module doc)."""

    bus: Bus
    settings: Settings
    clock: Clock
    run_id: str
    log: t.Any = logger
    """loguru logger bound with ``run_id`` and the plugin name."""
    books: Books = field(default_factory=BookStore)
    """The one book store of the run (the engine's)."""
    liquidity: Liquidity = None  # type: ignore[assignment]  # set in __post_init__
    """The same store's overlay, for venues that fill our orders (defaults to ``books``)."""
    tally: RunTally = field(default_factory=Tally)
    """What the run did so far (the engine's counts; a fresh context's are all zero)."""
    metrics: Metrics = field(default_factory=new_registry)
    """The run's Prometheus registry."""
    views: Views = field(default_factory=Views)
    """Views plugins provide for each other (shared by every plugin of the run)."""
    budgets: RequestBudgets = field(default_factory=Budgets)
    """Request budgets per exchange (the engine's one set, from ``ccxt.rate_limits``)."""
    stop: StopFlag = field(default_factory=lambda: StopFlag())
    """Shared by every plugin of a run."""

    def __post_init__(self) -> None:
        if self.liquidity is None:  # one store, as the engine gives: a test's context too
            self.liquidity = t.cast(Liquidity, self.books)

    def request_stop(self, reason: str) -> None:
        """Ask the engine to end the run (e.g. a replay reached the end of its data)."""
        self.stop.request(reason)


class StopFlag:
    """The run's one stop request: the first reason given wins."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


class Plugin:
    """Base class of every plugin."""

    name: t.ClassVar[str] = NotImplemented
    kind: t.ClassVar[Kind] = NotImplemented
    description: t.ClassVar[str] = ""
    requires: t.ClassVar[tuple[str, ...]] = ()
    """Names of plugins that must start before this one when both are loaded."""

    ctx: Context

    def setup(self, ctx: Context) -> None:
        """Keep the context and subscribe to events. Must not publish."""
        self.ctx = ctx

    async def start(self) -> None:
        """Begin work (connect, spawn tasks). Raising aborts the run."""

    async def stop(self) -> None:
        """End work and release resources; called once, even after a failed start of another plugin."""

    def summary(self) -> dict[str, t.Any]:
        """Figures for the end-of-run summary."""
        return {}

    def finish(self, summary: t.Mapping[str, t.Any]) -> None:
        """Receive the whole run's summary once every plugin has stopped (e.g. to store or send it)."""


def discover() -> dict[str, t.Any]:
    """Entry points of every installed plugin, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_plugin(name: str, kind: str | None = None) -> type[Plugin]:
    """Import one plugin class by entry-point name.

    :raises NoSuchPlugin: if no such plugin is installed, or it has another kind.
    :raises PluginError: if it fails to import.
    """
    found = discover()
    if name not in found:
        known = ", ".join(sorted(n for n, ep in found.items() if kind is None or _kind_of(ep) == kind))
        raise NoSuchPlugin(f"no plugin named {name!r}" + (f" (available: {known})" if known else ""))
    try:
        cls = found[name].load()
    except Exception as exc:
        raise PluginError(f"plugin {name!r} failed to import: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise PluginError(f"entry point {name!r} is not a Plugin subclass")
    if kind is not None and cls.kind != kind:
        raise NoSuchPlugin(f"plugin {name!r} is a {cls.kind}, not a {kind}")
    return t.cast(type[Plugin], cls)


def _kind_of(ep: t.Any) -> str | None:
    try:
        return t.cast(str, ep.load().kind)
    except Exception:
        return None


def plugins_of_kind(kind: str) -> dict[str, type[Plugin]]:
    """Every installed plugin class of one kind (e.g. the strategies), by name."""
    out: dict[str, type[Plugin]] = {}
    for name, ep in sorted(discover().items()):
        try:
            cls = ep.load()
        except Exception as exc:
            logger.warning("plugin {} failed to import: {}", name, exc)
            continue
        if isinstance(cls, type) and issubclass(cls, Plugin) and cls.kind == kind:
            out[name] = cls
    return out


def start_order(plugins: t.Sequence[Plugin]) -> list[Plugin]:
    """Order plugins so each starts after the ones it ``requires``, then by kind rank.

    :raises PluginError: on a dependency cycle.
    """
    by_name = {p.name: p for p in plugins}
    ordered: list[Plugin] = []
    state: dict[str, int] = {}

    def visit(p: Plugin, chain: tuple[str, ...]) -> None:
        if state.get(p.name) == 2:
            return
        if state.get(p.name) == 1:
            raise PluginError(f"plugin dependency cycle: {' -> '.join((*chain, p.name))}")
        state[p.name] = 1
        for dep in p.requires:
            if dep in by_name:
                visit(by_name[dep], (*chain, p.name))
        state[p.name] = 2
        ordered.append(p)

    for p in sorted(plugins, key=lambda p: START_RANK.get(p.kind, 5)):
        visit(p, ())
    return ordered
