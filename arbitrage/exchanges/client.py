"""Making ccxt exchange instances the way every part of arb needs them.

One function, ``create_exchange``, so the live source, the live venue and ``arb check`` talk to an
exchange with the same options: ccxt's throttle per ``[ccxt] enable_rate_limit``, its timeout, the
URLs moved by ``[ccxt] urls`` / ``--exchange-url``, and for Binance spot only: ``fetchMarkets``
types ``spot``, no currencies, no margin pairs, so ``load_markets`` is one
``GET /api/v3/exchangeInfo`` instead of seven calls (sapi, margin, fapi, dapi).

ccxt is imported here, inside the function: ``arb --help`` and everything that never talks to an
exchange do not pay its ~0.5 s import.
"""

from __future__ import annotations

import collections.abc as c
import time
import typing as t

from arbitrage.errors import SettingsError
from arbitrage.exchanges.keys import Keys
from arbitrage.exchanges.urls import rewrite_urls

if t.TYPE_CHECKING:
    from arbitrage.settings import CcxtSettings, Settings

__all__ = ["EXCHANGE_OPTIONS", "NONCE_ORDERED", "REST_DEPTHS", "WS_DEPTHS", "ccxt_settings",
           "check_exchange_ids", "create_exchange", "has_websocket_books", "increasing_nonce", "rest_depth",
           "ws_depth"]

EXCHANGE_OPTIONS: dict[str, dict[str, t.Any]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
    },
}
"""ccxt ``options`` per exchange id: spot markets only, and nothing loaded that arb does not use."""

NONCE_ORDERED = frozenset({"kraken"})
"""Exchanges that refuse a private request whose nonce is not above the key's last accepted one
(Kraken: ``EAPI:Invalid nonce``, which ccxt raises as ``InvalidNonce``, a refusal). ccxt's nonce
there is the time in milliseconds, the same for two requests in one millisecond: these exchanges
get ``increasing_nonce``, and the live venue sends their private requests one at a time, since
concurrent ones may reach the exchange out of nonce order."""


def increasing_nonce() -> c.Callable[[], int]:
    """A nonce for ccxt's ``nonce`` option (the manual's way to override it): milliseconds since
    the epoch, or one more than the last when the clock has not moved on."""
    last = 0

    def nonce() -> int:
        nonlocal last
        last = max(last + 1, time.time_ns() // 1_000_000)
        return last

    return nonce

WS_DEPTHS: dict[str, tuple[int, ...] | None] = {
    "kraken": (10, 25, 100, 500, 1000),
    "binance": None,
}
"""Depths an exchange's book subscription accepts; None: pass no depth. Binance's diff stream has
no depth: ccxt builds the book from a REST snapshot of 1000 levels plus the diffs, and a smaller
snapshot would leave levels missing once the top ones are taken."""
REST_DEPTHS: dict[str, tuple[int, ...]] = {
    "binance": (5, 10, 20, 50, 100, 500, 1000, 5000),
}
"""Depths an exchange's REST order book accepts (others take any count)."""


def _at_least(depth: int, allowed: tuple[int, ...]) -> int:
    return next((d for d in allowed if d >= depth), allowed[-1])


def ws_depth(name: str, depth: int) -> int | None:
    """The depth to subscribe to for at least ``depth`` levels a side: the smallest allowed one
    that is not less (the largest beyond them), ``depth`` itself where any goes, None where the
    exchange takes none (``WS_DEPTHS``)."""
    if name not in WS_DEPTHS:
        return depth
    allowed = WS_DEPTHS[name]
    return None if allowed is None else _at_least(depth, allowed)


def rest_depth(name: str, depth: int) -> int:
    """The ``limit`` of a REST order book for at least ``depth`` levels a side (``REST_DEPTHS``)."""
    allowed = REST_DEPTHS.get(name)
    return depth if allowed is None else _at_least(depth, allowed)


def ccxt_settings(settings: Settings | CcxtSettings) -> CcxtSettings:
    """The ``[ccxt]`` section of whole settings, or the section itself."""
    return t.cast("CcxtSettings", getattr(settings, "ccxt", settings))


def check_exchange_ids(names: t.Sequence[str]) -> None:
    """:raises SettingsError: naming ``ccxt.exchanges[i]`` for the first name ccxt does not know."""
    import ccxt.async_support as ccxt_async

    for i, name in enumerate(names):
        if name not in ccxt_async.exchanges:
            raise SettingsError(f"ccxt.exchanges[{i}]", f"unknown exchange {name!r} (not a ccxt exchange id)")


def create_exchange(name: str, settings: Settings | CcxtSettings, *, pro: bool,
                    keys: Keys | None = None) -> t.Any:
    """A new ccxt exchange instance for ``name`` (a ccxt id such as ``binance``).

    :param settings: the run's settings (or their ``[ccxt]`` section).
    :param pro: a ``ccxt.pro`` instance (websockets and REST); an exchange ccxt.pro lacks gets
        its ``ccxt.async_support`` instance instead (REST only: ``has_websocket_books`` is False).
        Otherwise a ``ccxt.async_support`` instance.
    :param keys: credentials for private calls; None for public data only.
    :raises SettingsError: naming ``ccxt.exchanges`` when ccxt has no exchange ``name``.

    Create it inside the event loop that uses it and ``await exchange.close()`` there: ccxt binds
    its aiohttp session to that loop.
    """
    import ccxt.async_support as ccxt_async

    section = ccxt_settings(settings)
    if name not in ccxt_async.exchanges:
        raise SettingsError("ccxt.exchanges", f"unknown exchange {name!r} (not a ccxt exchange id)")
    module: t.Any = ccxt_async
    if pro:
        import ccxt.pro as ccxt_pro

        if name in ccxt_pro.exchanges:
            module = ccxt_pro
    config: dict[str, t.Any] = {
        "enableRateLimit": section.enable_rate_limit,
        "timeout": int(section.timeout_ms),
        "options": dict(EXCHANGE_OPTIONS.get(name, {})),
    }
    if keys is not None:
        config.update(keys.ccxt_config())
    if name in NONCE_ORDERED:
        config["nonce"] = increasing_nonce()
    exchange = getattr(module, name)(config)
    base = section.urls.get(name)
    if base:
        exchange.urls["api"] = rewrite_urls(exchange.urls["api"], base)
    return exchange


def has_websocket_books(exchange: t.Any) -> bool:
    """The instance can stream order books (``watchOrderBook``), i.e. it is a ccxt.pro one."""
    return bool(exchange.has.get("watchOrderBook")) and hasattr(exchange, "watch_order_book")
