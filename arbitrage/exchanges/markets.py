"""Markets from ccxt: loaded through an on-disk cache, normalised to ``arbitrage.events.Market``.

**The cache.** ``load_markets`` keeps what ccxt's ``load_markets()`` built (the unified markets, the
currencies and the exchange's own market helpers, ccxt's ``options['marketHelperProps']``: Kraken's
``marketsByAltname``) in ``CACHE_DIR/<exchange>-<key>.json``. The key is a hash of the exchange id
and its ``urls['api']`` after ``--exchange-url`` rewrote them, so an emulator and the real
exchange, or two emulators, never read each other's file. A file younger than ``max_age_s``
(by the wall-clock time it was fetched, written inside it) is used instead of asking the exchange:
restarts do not hammer ``exchangeInfo``. A cache that cannot be read is fetched again and
rewritten; one that cannot be written is logged and the run goes on.

**Normalising.** ``to_market`` reads one spot market: the taker fee, the amount and price steps
whatever ccxt's ``precisionMode`` (``TICK_SIZE``: the precision *is* the step; ``DECIMAL_PLACES``:
``10 ** -precision``), the minimum amount and cost, and the fee currency rule (ccxt's ``feeSide`` as
``Market.fee_side``: Binance ``get``, a buy pays in the base it receives; Kraken ``quote``).
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import hashlib
import json
import os
import time
import typing as t
from pathlib import Path

import msgspec
from loguru import logger

from arbitrage.events import FeeSide, Market

__all__ = ["DECIMAL_PLACES", "FEE_SIDES", "SIGNIFICANT_DIGITS", "TICK_SIZE", "cache_path", "fee_side",
           "is_spot", "load_markets", "to_market", "to_markets"]

DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4
"""ccxt's ``precisionMode`` constants (``ccxt.base.decimal_to_precision``), copied so that reading a
market needs no ccxt import."""

FEE_SIDES = ("quote", "base", "get", "give")
"""ccxt's ``feeSide`` values arb trades with: the fee is charged in the quote, in the base, in what
the order receives (``get``: a Binance buy pays in base) or in what it gives."""

CACHE_VERSION = 1


def cache_path(exchange: t.Any, cache_dir: str | Path) -> Path:
    """The cache file of ``exchange``: its id and a hash of its id and (rewritten) ``urls['api']``."""
    identity = json.dumps([exchange.id, exchange.urls.get("api")], sort_keys=True, default=str)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{exchange.id}-{digest}.json"


def _read(path: Path, max_age_s: float) -> dict[str, t.Any] | None:
    try:
        data = msgspec.json.decode(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        logger.warning("markets cache {} unreadable, fetching again: {}", path, exc)
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return None
    age = time.time() - float(data.get("fetched_at", 0.0))
    return data if 0.0 <= age <= max_age_s else None


def _write(path: Path, data: dict[str, t.Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(msgspec.json.encode(data))
        os.replace(tmp, path)
    except (OSError, TypeError, msgspec.EncodeError) as exc:
        logger.warning("markets cache {} not written: {}", path, exc)


async def load_markets(exchange: t.Any, cache_dir: str | Path, max_age_s: float) -> dict[str, t.Any]:
    """ccxt's markets of ``exchange`` (symbol -> unified market), from the cache when it is fresh.

    From the cache the instance is set up as ``load_markets()`` would have set it (markets,
    currencies, market helpers), so later ccxt calls find their markets loaded and fetch nothing.

    :param cache_dir: the cache directory; "" = no cache (always fetched).
    :param max_age_s: a cached list older than this is fetched again (0 = always fetched).
    :raises ccxt.BaseError: whatever ``exchange.load_markets()`` raises when it has to fetch.
    """
    path = cache_path(exchange, cache_dir) if cache_dir else None
    if path is not None and max_age_s > 0:
        cached = await asyncio.to_thread(_read, path, max_age_s)
        if cached is not None:
            exchange.set_markets(cached["markets"], cached["currencies"] or None)
            exchange.options.update(cached["helpers"])
            logger.debug("{}: {} markets from cache {}", exchange.id, len(exchange.markets), path)
            return t.cast(dict[str, t.Any], exchange.markets)
    markets = await exchange.load_markets()
    if path is not None:
        helpers = {name: exchange.options.get(name)
                   for name in exchange.options.get("marketHelperProps", []) if name in exchange.options}
        data = {"version": CACHE_VERSION, "exchange": exchange.id, "api": exchange.urls.get("api"),
                "fetched_at": time.time(), "markets": list(markets.values()),
                "currencies": dict(exchange.currencies or {}), "helpers": helpers}
        await asyncio.to_thread(_write, path, data)
    return t.cast(dict[str, t.Any], markets)


def is_spot(ccxt_market: c.Mapping[str, t.Any]) -> bool:
    """A spot market (not a swap, future, option or margin-only entry)."""
    return bool(ccxt_market.get("spot")) and ccxt_market.get("type", "spot") == "spot"


def _step(value: t.Any, precision_mode: int, what: str) -> float:
    if value is None:
        return 0.0
    if precision_mode == TICK_SIZE:
        return float(value)
    if precision_mode == DECIMAL_PLACES:
        return float(f"1e{-int(value)}")  # exact decimal steps: 1e-5, not 10.0 ** -5
    raise ValueError(f"{what} precision mode {precision_mode} (significant digits) is not supported")


def _min(limits: c.Mapping[str, t.Any], key: str) -> float:
    value = (limits.get(key) or {}).get("min")
    return float(value) if value is not None else 0.0


def fee_side(ccxt_market: c.Mapping[str, t.Any]) -> FeeSide:
    """The market's fee currency rule: ccxt's ``feeSide`` (its own default ``quote`` when absent).

    :raises ValueError: for a rule arb cannot account for (``other``).
    """
    side = ccxt_market.get("feeSide") or "quote"
    if side not in FEE_SIDES:
        raise ValueError(f"{ccxt_market.get('symbol')}: fee side {side!r} is not supported")
    return t.cast(FeeSide, side)


def to_market(ccxt_market: c.Mapping[str, t.Any], precision_mode: int) -> Market:
    """One ccxt unified spot market as a ``Market``.

    :param precision_mode: the exchange's ``precisionMode`` (``TICK_SIZE`` for Binance and Kraken
        in ccxt 4.5; older recordings use ``DECIMAL_PLACES``).
    :raises ValueError: for a market that is not spot, has no taker fee, or whose precision or fee
        rule arb cannot follow (the caller reports it and leaves the market out).
    """
    symbol = ccxt_market.get("symbol")
    if not is_spot(ccxt_market):
        raise ValueError(f"{symbol}: not a spot market")
    taker = ccxt_market.get("taker")
    if taker is None:
        raise ValueError(f"{symbol}: no taker fee")
    precision = ccxt_market.get("precision") or {}
    limits = ccxt_market.get("limits") or {}
    fields: dict[str, t.Any] = {
        "symbol": symbol, "base": ccxt_market["base"], "quote": ccxt_market["quote"],
        "taker_fee": float(taker),
        "amount_step": _step(precision.get("amount"), precision_mode, f"{symbol}: amount"),
        "price_step": _step(precision.get("price"), precision_mode, f"{symbol}: price"),
        "min_amount": _min(limits, "amount"), "min_cost": _min(limits, "cost"),
    }
    return Market(**fields, fee_side=fee_side(ccxt_market))


def to_markets(markets: c.Mapping[str, c.Mapping[str, t.Any]], precision_mode: int,
               symbols: c.Iterable[str]) -> tuple[tuple[Market, ...], dict[str, str]]:
    """The ``symbols`` a venue has, as ``Market``s, and why each other one is left out.

    :returns: (markets in the order of ``symbols``, symbol -> reason for those missing or unusable).
    """
    found: list[Market] = []
    missing: dict[str, str] = {}
    for symbol in symbols:
        entry = markets.get(symbol)
        if entry is None:
            missing[symbol] = "not listed"
            continue
        if entry.get("active") is False:  # None: the exchange does not say
            missing[symbol] = "not active"
            continue
        try:
            found.append(to_market(entry, precision_mode))
        except ValueError as exc:
            missing[symbol] = str(exc).removeprefix(f"{symbol}: ")
    return tuple(found), missing
