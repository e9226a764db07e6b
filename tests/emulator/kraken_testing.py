"""Helpers for tests that point the real ccxt / ccxt.pro Kraken at the Kraken emulator."""

from __future__ import annotations

import asyncio
import base64
import functools
import typing as t

import pytest

from arbitrage.exchanges.urls import rewrite_urls
from tests.emulator.kraken import KrakenEmulator
from tests.emulator.kraken_feed import Recording, load_recording
from tests.emulator.kraken_markets import DATA_DIR, ccxt_pairs, recorded_pairs
from tests.emulator.server import serve

__all__ = ["KEY", "RECORDING", "SECRET", "emulator", "needs_data", "recording", "run"]

KEY = "emulated-key"
SECRET = base64.b64encode(bytes(range(64))).decode()
RECORDING = DATA_DIR / "cryptofeed" / "KRAKEN.jsonl.zst"

needs_data = pytest.mark.skipif(not RECORDING.exists(), reason=f"real data not found under {DATA_DIR}")


@functools.cache
def recording() -> Recording:
    return load_recording(RECORDING)


def emulator() -> KrakenEmulator:
    """A fresh emulator of ccxt's 8 recorded pairs and the 10 recorded books' pairs, key ``KEY``."""
    return KrakenEmulator([*ccxt_pairs(), *recorded_pairs(recording())], {KEY: SECRET})


Scenario = t.Callable[[KrakenEmulator, t.Any], t.Awaitable[None]]


def run(scenario: Scenario, em: KrakenEmulator | None = None, *, pro: bool = False,
        **config: t.Any) -> KrakenEmulator:
    """Serve ``em`` (a fresh `emulator` by default) in a new loop and run ``scenario(em, exchange)``
    with an unmodified ccxt ``kraken`` (``ccxt.pro`` when ``pro``) created and closed in that loop."""
    em = em or emulator()

    async def main() -> None:
        if pro:
            import ccxt.pro as ccxt_module
        else:
            import ccxt.async_support as ccxt_module
        async with serve(em) as base:
            exchange = ccxt_module.kraken({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False,
                                           **config})
            exchange.urls["api"] = rewrite_urls(exchange.urls["api"], base)
            try:
                await scenario(em, exchange)
            finally:
                await exchange.close()

    asyncio.run(main())
    return em
