"""Helpers for tests that drive the real ccxt against an emulator (pytest has no asyncio plugin
here: each test runs one ``asyncio.run``; ccxt instances are made and closed inside that loop)."""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import typing as t

from arbitrage.exchanges.urls import rewrite_urls
from tests.emulator.server import Emulator, serve

__all__ = ["ccxt_client", "run_against"]

T = t.TypeVar("T")


@contextlib.asynccontextmanager
async def ccxt_client(name: str, base_url: str, *, pro: bool = False, api_key: str | None = None,
                      secret: str | None = None, **config: t.Any) -> c.AsyncIterator[t.Any]:
    """A ccxt.async_support (or ccxt.pro) instance of ``name`` pointed at ``base_url``, closed on exit.

    Rate limiting off; Binance loads spot markets only, without currencies or margin pairs (what
    ``arbitrage.exchanges.client`` configures). ``config`` is merged into the constructor's dict.
    """
    if pro:
        import ccxt.pro as module
    else:
        import ccxt.async_support as module
    options = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False} \
        if name == "binance" else {}
    options.update(config.pop("options", {}))
    settings: dict[str, t.Any] = {"enableRateLimit": False, "options": options, **config}
    if api_key is not None:
        settings.update(apiKey=api_key, secret=secret)
    exchange = getattr(module, name)(settings)
    exchange.urls["api"] = rewrite_urls(exchange.urls["api"], base_url)
    try:
        yield exchange
    finally:
        await exchange.close()


def run_against(emulator: Emulator, scenario: c.Callable[[str], c.Awaitable[T]]) -> T:
    """Serve ``emulator`` in a fresh loop, run ``scenario(base_url)`` and return its result. A
    failure is re-raised with the emulator's request log attached, so a missing route is obvious."""

    async def main() -> T:
        async with serve(emulator) as base_url:
            return await scenario(base_url)

    try:
        return asyncio.run(main())
    except BaseException as error:
        error.add_note("emulator request log:\n" + emulator.exchange.request_log())
        raise
