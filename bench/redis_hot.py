"""The publisher's hot path with the Redis bridge on or off: one workload, timed or counted.

A real engine (book store, tally, cross-exchange strategy, paper trader, storage on SQLite,
monitor; the ``redis`` plugin or not) gets a prepared stream of events published in a tight loop
inside a source's ``start``: simulated books of three venues, every eleventh event a trading event
(``OrderSubmitted``, ``OrderUpdate``, ``Fill``, ``ArbResult`` in turn). Nothing awaits in between,
so the figure is what ``publish`` costs the publisher with every subscriber of a run attached; the
bridge's worker encodes and sends it all afterwards, off that path.

Modes: ``off`` (no bridge), ``on`` (the bridge with its default events: trading events, books
not), ``books`` (``[redis] books = true``: every book too).

``bench_redis.py`` imports ``wall`` (CPU time of each burst, in process) and runs this file under
``valgrind --tool=callgrind --toggle-collect=ffi_call --dump-after=ffi_call``:
``python bench/redis_hot.py MODE WARMUP N URL DB`` calls a warm-up burst of ``WARMUP`` events,
then the measured burst of the next ``N``, each through ``ctypes`` (``ffi_call`` is entered nowhere
else in this process: the toggle counts exactly the instructions of the two bursts, the second
dump being the measured one).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import sys
import time
import typing as t
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arbitrage.bridge.mirror import RedisBridge
from arbitrage.engine import Engine
from arbitrage.events import (
    ArbResult,
    Event,
    Fill,
    LegResult,
    OrderSubmitted,
    OrderUpdate,
)
from arbitrage.logs import setup_logging
from arbitrage.monitor import Monitor
from arbitrage.plugin import Plugin
from arbitrage.settings import Settings
from arbitrage.sources.sim import SimMarket
from arbitrage.storage.plugin import Storage
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.trading.plugin import Trader

MODES = ("off", "on", "books")
TRADING_EVERY = 11
"""One event in this many is a trading event (far more than a real run has: the conservative side)."""


def settings(url: str, db: str, mode: str, buffer: int) -> Settings:
    return msgspec.convert({"log": {"file": ""}, "monitor": {"halt_file": ""}, "storage": {"path": db},
                            "redis": {"url": url, "books": mode == "books", "market_buffer": buffer,
                                      "trading_buffer": buffer}}, Settings)


def trading(i: int, venue: str, symbol: str, now: int) -> Event:
    """The ``i``-th trading event: each kind in turn, every client order id distinct."""
    opp, coid = f"bench-{i}", f"arbbench{i:011d}"
    kind = i % 4
    if kind == 0:
        return OrderSubmitted(client_order_id=coid, opportunity_id=opp, venue=venue, symbol=symbol,
                              side="buy", amount=0.01, price=100.0, label=f"{opp}-L0", ts_init=now)
    if kind == 1:
        return OrderUpdate(client_order_id=coid, opportunity_id=opp, venue=venue, symbol=symbol, side="buy",
                           status="filled", amount=0.01, filled=0.01, average_price=100.0, fee=0.001,
                           ts_event=now, ts_init=now)
    if kind == 2:
        return Fill(client_order_id=coid, opportunity_id=opp, venue=venue, symbol=symbol, side="buy",
                    price=100.0, amount=0.01, fee=0.001, fee_currency="USDT", ts_event=now, ts_init=now)
    leg = LegResult(client_order_id=coid, venue=venue, symbol=symbol, side="buy", amount=0.01, filled=0.01,
                    average_price=100.0, fee=0.001, status="filled")
    return ArbResult(opportunity_id=opp, strategy="cross_exchange", status="complete", legs=(leg, leg),
                     quote="USDT", expected_profit=0.02, realized_profit=0.01, fees=0.002, slippage=0.01,
                     ts_init=now)


def workload(market: SimMarket, n: int, now: int, every: int) -> list[tuple[Event, t.Any]]:
    """``n`` (event, sender) pairs: books published by their venue, every ``every``-th a trading
    event published by anyone (``every`` 1: trading events only; 0: books only)."""
    from blinker import ANY as any_sender

    out: list[tuple[Event, t.Any]] = []
    for i in range(n):
        if every and i % every == every - 1:
            out.append((trading(i, "alpha", "ETH/USDT", now), any_sender))
        else:
            book = msgspec.structs.replace(market.step(now + i * 1000), ts_event=now, ts_init=now)
            out.append((book, book.venue))
    return out


class BurstSource(Plugin):
    """Publishes the markets, then hands the prepared events to ``run_bursts`` from its ``start``."""

    name = "burst"
    kind = "source"

    def __init__(self, market: SimMarket, events: list[tuple[Event, t.Any]],
                 run_bursts: t.Callable[[t.Callable[[Event, t.Any], None], list[tuple[Event, t.Any]]], t.Any]
                 ) -> None:
        self.market = market
        self.events = events
        self.run_bursts = run_bursts
        self.result: t.Any = None

    async def start(self) -> None:
        bus = self.ctx.bus
        for loaded in self.market.markets_loaded(time.time_ns()):  # never stale, even under valgrind
            bus.publish(msgspec.structs.replace(loaded, staleness_ms=3_600_000.0), loaded.venue)
        self.result = self.run_bursts(bus.publish, self.events)
        self.ctx.request_stop("burst")


def run(mode: str, n: int, url: str, db: str,
        run_bursts: t.Callable[[t.Callable[[Event, t.Any], None], list[tuple[Event, t.Any]]], t.Any],
        every: int = TRADING_EVERY) -> t.Any:
    """One engine in ``mode`` over ``n`` prepared events; returns what ``run_bursts`` returned."""
    cfg = settings(url, db, mode, 2 * n)
    setup_logging(cfg.log, console=False)  # no sink: as cheap as a run's, and quiet
    market = SimMarket(cfg.sim, 7)
    source = BurstSource(market, workload(market, n, time.time_ns(), every), run_bursts)
    plugins: list[Plugin] = [source, CrossExchangeStrategy(), Trader(), Storage(), Monitor()]
    if mode != "off":
        plugins.append(RedisBridge())
    asyncio.run(Engine(cfg, plugins=plugins).run(duration=600))
    return source.result


def _publish_all(publish: t.Callable[[Event, t.Any], None], events: list[tuple[Event, t.Any]]) -> None:
    for event, sender in events:
        publish(event, sender)


def wall(mode: str, url: str, db: str, bursts: int = 5, per_burst: int = 11_000) -> float:
    """CPU ns per event of the publishing thread: the median of ``bursts`` bursts of ``per_burst``."""

    def timed(publish: t.Callable[[Event, t.Any], None], events: list[tuple[Event, t.Any]]) -> float:
        _publish_all(publish, events[:TRADING_EVERY * 100])  # warm-up: caches resolved, tables created
        rest = events[TRADING_EVERY * 100:]
        ns = []
        for b in range(bursts):
            chunk = rest[b * per_burst:(b + 1) * per_burst]
            start = time.thread_time_ns()  # CPU time: other processes on the machine do not count
            _publish_all(publish, chunk)
            ns.append((time.thread_time_ns() - start) / len(chunk))
        return sorted(ns)[len(ns) // 2]

    return run(mode, TRADING_EVERY * 100 + bursts * per_burst, url, db, timed)


def counted(mode: str, warmup: int, n: int, url: str, db: str, every: int = TRADING_EVERY) -> None:
    """The two bursts, each entered through ``ffi_call`` (what callgrind's toggle counts)."""
    call = ctypes.pythonapi.PyObject_CallNoArgs
    call.argtypes, call.restype = [ctypes.py_object], ctypes.py_object

    def bursts(publish: t.Callable[[Event, t.Any], None], events: list[tuple[Event, t.Any]]) -> None:
        call(functools.partial(_publish_all, publish, events[:warmup]))
        call(functools.partial(_publish_all, publish, events[warmup:]))

    run(mode, warmup + n, url, db, bursts, every)


if __name__ == "__main__":
    mode, warmup, n, url, db = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    if mode not in MODES:
        sys.exit(f"mode: one of {', '.join(MODES)}")
    counted(mode, warmup, n, url, db, int(sys.argv[6]) if len(sys.argv) > 6 else TRADING_EVERY)
