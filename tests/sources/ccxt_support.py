"""Running the ccxt source in an in-process engine against an emulator served in the same loop."""

from __future__ import annotations

import asyncio
import collections.abc as c
import typing as t
from pathlib import Path

from loguru import logger

from arbitrage.engine import Engine
from arbitrage.events import BookUpdate, Event, FeedStatus, MarketsLoaded, Opportunity
from arbitrage.plugin import Context, Plugin
from arbitrage.settings import Settings, load_settings
from arbitrage.sources.ccxt_feed import CcxtSource
from tests.emulator.server import Emulator, serve

WAIT = 30.0
"""Only so that a broken test fails instead of hanging; a passing test stops long before."""


class Watcher(Plugin):
    """Records what the source publishes; stops the run once ``until(self)`` holds."""

    name = "watcher"
    kind = "monitor"

    def __init__(self, until: c.Callable[[Watcher], bool] = lambda w: False) -> None:
        self.until = until
        self.events: list[Event] = []
        self.on_event: c.Callable[[Watcher, Event], None] = lambda w, e: None

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        for kind in (BookUpdate, FeedStatus, MarketsLoaded, Opportunity):
            ctx.bus.subscribe(kind, self._record, name=self.name)

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self.on_event(self, event)
        if self.until(self):
            self.ctx.request_stop("watcher: seen enough")

    def books(self, venue: str | None = None, symbol: str | None = None) -> list[BookUpdate]:
        return [e for e in self.events if isinstance(e, BookUpdate)
                and venue in (None, e.venue) and symbol in (None, e.symbol)]

    def statuses(self, venue: str | None = None) -> list[tuple[str, str]]:
        """(status, symbol) of every FeedStatus, in order."""
        return [(e.status, e.symbol) for e in self.events
                if isinstance(e, FeedStatus) and venue in (None, e.venue)]

    def markets(self, venue: str) -> MarketsLoaded:
        return next(e for e in self.events if isinstance(e, MarketsLoaded) and e.venue == venue)


def ccxt_settings(urls: dict[str, str], tmp: Path, **ccxt: t.Any) -> Settings:
    """Settings for the ccxt source on ``urls``: rate limiting off, the cache under ``tmp``, paper
    trading and storage off unless ``run.plugins`` is given."""
    run = ccxt.pop("run", {"plugins": []})
    strategy = ccxt.pop("strategy", {})
    section = {"exchanges": list(urls), "urls": urls, "enable_rate_limit": False,
               "markets_cache": str(tmp / "markets"), "backoff_initial_s": 0.05, "backoff_max_s": 0.5,
               "rate_limits": {name: 1000.0 for name in urls}, **ccxt}
    return load_settings(None, {"run": {"source": "ccxt", **run}, "ccxt": section, "strategy": strategy,
                                "storage": {"path": str(tmp / "arb.db")}, "log": {"file": ""}}, environ={})


async def run_engine_on(emulators: dict[str, Emulator], tmp: Path, watcher: Watcher,
                        extra: c.Sequence[Plugin] = (), **ccxt: t.Any) -> dict[str, t.Any]:
    """Serve every emulator, run the engine with the ccxt source on them until the watcher stops
    it (or ``WAIT``), return the summary. A failure carries the emulators' request logs."""
    async with _served(list(emulators.items())) as urls:
        settings = ccxt_settings(urls, tmp, **ccxt)
        engine = Engine(settings, plugins=[CcxtSource(), watcher, *extra])
        try:
            return await engine.run(duration=WAIT)
        except BaseException as error:
            for name, em in emulators.items():
                error.add_note(f"{name} request log:\n" + em.exchange.request_log())
            raise


class _served:
    def __init__(self, items: list[tuple[str, Emulator]]) -> None:
        self.items = items
        self._stack: t.Any = None

    async def __aenter__(self) -> dict[str, str]:
        import contextlib

        self._stack = contextlib.AsyncExitStack()
        return {name: await self._stack.enter_async_context(serve(em)) for name, em in self.items}

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def run(coro: c.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
    return asyncio.run(coro)


class Warnings:
    """The loguru WARNING+ messages logged while it is open."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __enter__(self) -> Warnings:
        self._id = logger.add(lambda m: self.messages.append(m.record["message"]), level="WARNING")
        return self

    def __exit__(self, *exc: object) -> None:
        logger.remove(self._id)
