"""Shared pieces of the ccxt benchmarks: flood emulators in other processes, a plain ccxt.pro
watcher (the baseline) and an in-process arb engine on the same traffic.

Every figure is read from the books themselves (see ``flood.py``): the best bid's quantity is the
change's number, the second bid's the emulator's send time in µs.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import msgspec

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))


@contextlib.contextmanager
def flood(venue: str, *args: str) -> t.Iterator[str]:
    """``flood.py VENUE ARGS`` in its own process; yields its base URL."""
    with subprocess.Popen([sys.executable, str(HERE / "flood.py"), venue, *args], stdout=subprocess.PIPE,
                          text=True, cwd=REPO) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.terminate()


def now_us() -> int:
    return time.time_ns() // 1000


async def ccxt_client(name: str, base_url: str):
    """A ccxt.pro client pointed at ``base_url`` the way arb's own ``create_exchange`` does it."""
    from arbitrage.exchanges.client import create_exchange

    return create_exchange(name, engine_settings({name: base_url}, []).ccxt, pro=True)


def engine_settings(urls: dict[str, str], symbols: list[str], **strategy: t.Any):
    """arb's settings for a run on the flood emulators: the ccxt source, the cross-exchange
    strategy, storage in a temporary file, no trader, no rate limit, no market cache."""
    from arbitrage.settings import Settings

    base = Settings()
    db = Path(tempfile.mkdtemp()) / "bench.db"
    return msgspec.structs.replace(
        base, run=msgspec.structs.replace(base.run, source="ccxt", plugins=["storage"]),
        strategy=msgspec.structs.replace(base.strategy, **strategy),
        storage=msgspec.structs.replace(base.storage, path=str(db)),
        log=msgspec.structs.replace(base.log, file="", level="WARNING"),
        ccxt=msgspec.structs.replace(base.ccxt, exchanges=sorted(urls), symbols=symbols, urls=urls,
                                     enable_rate_limit=False, markets_cache=""))


def run_engine(settings, seconds: float, on_book=None, on_opportunity=None) -> dict[str, t.Any]:
    """arb's engine in this process for ``seconds``, with the callbacks subscribed to its bus."""
    from arbitrage.engine import Engine
    from arbitrage.events import BookUpdate, Opportunity
    from arbitrage.logs import setup_logging

    setup_logging(settings.log, console=True, console_level="WARNING")
    engine = Engine(settings)
    if on_book:
        engine.bus.subscribe(BookUpdate, on_book, name="bench")
    if on_opportunity:
        engine.bus.subscribe(Opportunity, on_opportunity, name="bench")
    return asyncio.run(engine.run(seconds))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
