"""The plugin contract and discovery from the ``arbitrage.plugins`` entry-point group.

A plugin is a class with a ``name``, a ``kind`` and a one-line ``description``. The engine
creates it with no arguments, calls ``setup(ctx)`` (subscribe to the bus here: nothing is
published yet), then ``await start()`` in dependency order, and ``await stop()`` in reverse.
A plugin that fails to set up or start aborts the run. Plugins never import each other: they
share only the events in ``arbitrage.events`` and what the context gives them.
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
from arbitrage.errors import PluginError
from arbitrage.events import BookUpdate, Level
from arbitrage.settings import Settings

GROUP = "arbitrage.plugins"
Kind = t.Literal["source", "strategy", "trading", "storage", "monitor", "notifier", "bridge", "ui"]

START_RANK: dict[str, int] = {
    "storage": 0, "monitor": 1, "notifier": 2, "bridge": 3, "trading": 4, "strategy": 5, "ui": 6, "source": 7,
}
"""Default start order by kind: consumers first, market sources last (stop runs in reverse)."""


class Books(t.Protocol):
    """The run's latest books (read-only): per venue and symbol, with the liquidity our own fills
    took removed by ``levels``. Updated by the engine before any plugin sees a ``BookUpdate``."""

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

    def levels(self, venue: str, symbol: str, side: BookSide) -> list[Level]:
        """One side of the latest book net of what our fills took, best first."""
        ...


class Liquidity(t.Protocol):
    """Where a venue that fills our orders records the liquidity each fill took (paper venues), so
    that no later plan or fill counts on it again."""

    def take(self, venue: str, symbol: str, side: BookSide, price: float, amount: float) -> None: ...


@dataclass
class Context:
    """What a plugin gets at setup: the shared services of one run."""

    bus: Bus
    settings: Settings
    clock: Clock
    run_id: str
    log: t.Any = logger
    """loguru logger bound with ``run_id`` and the plugin name."""
    books: Books = field(default_factory=BookStore)
    """The one book store of the run (the engine's)."""
    liquidity: Liquidity = field(default_factory=BookStore)
    """The same store's overlay, for venues that fill our orders."""
    state: dict[str, t.Any] = field(default_factory=dict)
    """Read-only views plugins publish for the dashboard and monitor (name -> object)."""
    stop: StopFlag = field(default_factory=lambda: StopFlag())
    """Shared by every plugin of a run."""

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

    :raises PluginError: if no such plugin is installed, it fails to import, or has another kind.
    """
    found = discover()
    if name not in found:
        known = ", ".join(sorted(n for n, ep in found.items() if kind is None or _kind_of(ep) == kind))
        raise PluginError(f"no plugin named {name!r}" + (f" (available: {known})" if known else ""))
    try:
        cls = found[name].load()
    except Exception as exc:
        raise PluginError(f"plugin {name!r} failed to import: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise PluginError(f"entry point {name!r} is not a Plugin subclass")
    if kind is not None and cls.kind != kind:
        raise PluginError(f"plugin {name!r} is a {cls.kind}, not a {kind}")
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
