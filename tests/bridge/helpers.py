"""Settings and a collecting plugin for the bridge's tests."""

from __future__ import annotations

import asyncio
import collections.abc as c
import typing as t
from pathlib import Path

import msgspec

from arbitrage.events import BookUpdate, Event, Fill
from arbitrage.plugin import Context, Plugin
from arbitrage.settings import Settings

FAST_TRADING = {"dislocations_per_minute": 600.0, "dislocation_ms": 400.0}
"""Simulated market with a dislocation every 0.1 s: plenty of trading events in a short run."""


def settings(tmp_path: Path, url: str, **sections: dict[str, t.Any]) -> Settings:
    """Defaults with the bridge on ``url``, no log file, storage in ``tmp_path``."""
    data: dict[str, t.Any] = {
        "log": {"file": ""},
        "storage": {"path": str(tmp_path / "run.db"), "backtest_path": str(tmp_path / "bt.db")},
        "monitor": {"halt_file": ""},
        "redis": {"url": url},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return msgspec.convert(data, Settings)


class Collect(Plugin):
    """Keeps every event of the given types in publish order (inline)."""

    name = "collect"
    kind = "monitor"

    def __init__(self, *types: type[Event]) -> None:
        self.types = types
        self.seen: list[Event] = []

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        for tp in self.types:
            ctx.bus.subscribe(tp, self.seen.append, name="collect")


async def wait_for(predicate: c.Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true (failing after ``timeout`` seconds: a hung test, not a slow one)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def numbered_fill(n: int) -> Fill:
    """Fill number ``n``: client order id ``c<n>``, timestamps ``n``."""
    return Fill(client_order_id=f"c{n}", opportunity_id="o", venue="alpha", symbol="BTC/USDT", side="buy",
                price=1.0, amount=1.0, fee=0.0, fee_currency="USDT", ts_event=n, ts_init=n)


def numbered_book(n: int) -> BookUpdate:
    """Book number ``n`` of alpha's BTC/USDT: timestamps ``n``."""
    return BookUpdate(venue="alpha", symbol="BTC/USDT", bids=((100.0 + n, 1.0),), asks=((200.0, 1.0),),
                      ts_event=n, ts_init=n)
