"""Helpers for tests that point the real ccxt / ccxt.pro Kraken at the Kraken emulator."""

from __future__ import annotations

import base64
import typing as t

from tests.emulator.fixtures import ccxt_client, run_against
from tests.emulator.kraken import KrakenEmulator
from tests.emulator.kraken_feed import load_recording
from tests.emulator.kraken_markets import ccxt_pairs, recorded_pairs

__all__ = ["KEY", "SECRET", "emulator", "run"]

KEY = "emulated-key"
SECRET = base64.b64encode(bytes(range(64))).decode()


def emulator() -> KrakenEmulator:
    """A fresh emulator of ccxt's 8 recorded pairs and the 10 recorded books' pairs, key ``KEY``."""
    return KrakenEmulator([*ccxt_pairs(), *recorded_pairs(load_recording())], {KEY: SECRET})


def run(scenario: t.Callable[[KrakenEmulator, t.Any], t.Awaitable[None]], em: KrakenEmulator | None = None,
        *, pro: bool = False, **config: t.Any) -> KrakenEmulator:
    """Serve ``em`` (a fresh `emulator` by default) and run ``scenario(em, exchange)`` with an
    unmodified ccxt ``kraken`` (``ccxt.pro`` when ``pro``) keyed with ``KEY``; return ``em``."""
    em = em or emulator()

    async def scenario_at(base_url: str) -> None:
        async with ccxt_client("kraken", base_url, pro=pro, api_key=KEY, secret=SECRET, **config) as exchange:
            await scenario(em, exchange)

    run_against(em, scenario_at)
    return em
