"""Opening a live venue for ``--live``: keys, ccxt instance, request budget, markets, balances.

It exists apart from the trader plugin so the plugin stays free of ccxt (this module imports it,
and the plugin imports this module only for a live run). Keys come only from the environment
(``arbitrage.exchanges.keys``); their values are registered with ``arbitrage.redact`` before any
request is made, so no log line, stored row or notification can show them. The ccxt instance is
``arbitrage.exchanges.create_exchange``'s (``async_support``: orders need no websocket), with the
run's ``[ccxt]`` options and URLs; its markets come through the on-disk cache the market source
filled; its requests draw on the exchange's one budget (``ctx.budgets``), orders first.
"""

from __future__ import annotations

import collections.abc as c
import os
import typing as t

from arbitrage.clock import Clock
from arbitrage.errors import PluginError
from arbitrage.events import Market
from arbitrage.exchanges.client import create_exchange
from arbitrage.exchanges.keys import env_names, keys_from_env
from arbitrage.exchanges.markets import load_markets
from arbitrage.plugin import RequestBudgets
from arbitrage.redact import register_secret
from arbitrage.settings import Settings
from arbitrage.trading.live import LiveVenue

__all__ = ["connect"]


async def connect(name: str, *, settings: Settings, markets: c.Iterable[Market], clock: Clock, log: t.Any,
                  budgets: RequestBudgets, environ: c.Mapping[str, str] | None = None) -> LiveVenue:
    """A started ``LiveVenue`` on exchange ``name``: markets loaded, balances read.

    :raises PluginError: when the keys are missing from the environment.
    :raises SettingsError: for an exchange ccxt does not know.
    :raises ccxt.BaseError: when the exchange cannot be reached or refuses the keys (the ccxt
        instance is closed first).
    """
    keys = keys_from_env(name, os.environ if environ is None else environ)
    if keys is None or not keys.complete:
        key_var, secret_var, _ = env_names(name)
        raise PluginError(f"live venue {name}: {key_var} and {secret_var} must be set")
    for secret in (keys.api_key, keys.secret, keys.password):
        register_secret(secret)
    exchange = create_exchange(name, settings, pro=False, keys=keys)
    budget = budgets.for_exchange(name, 1000.0 / max(float(exchange.rateLimit or 1000.0), 1.0))
    venue = LiveVenue(name, exchange, clock=clock, markets=markets, settings=settings.live, log=log,
                      budget=budget)
    try:
        await load_markets(exchange, settings.ccxt.markets_cache, settings.ccxt.markets_max_age_s)
        await venue.start()
    except BaseException:
        await venue.close()
        raise
    return venue
