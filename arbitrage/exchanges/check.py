"""``arb check``: can arb work with each configured exchange, and with the keys in the environment?

Per exchange, concurrently: load its markets (always from the exchange, never the on-disk cache:
the point is to talk to it), count them and the spot ones, look up the configured symbols, read
ccxt.pro's websocket support (``watchOrderBook``, ``watchOrderBookForSymbols``) and, when keys are
set (``ARB_<EXCHANGE>_API_KEY`` / ``_SECRET`` / ``_PASSWORD``), prove them with one
``fetch_balance``. Failures are classified by ccxt's exception classes (``classify``), so an
offline laptop gets ``unreachable`` per exchange after at most one short timeout, not a traceback.

Key values never leave this module: a report says only ``absent``, ``incomplete``, ``valid``,
``invalid`` or ``error``, and every ccxt message is passed through ``redact_line`` with the keys
registered as secrets first.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import typing as t

import msgspec

from arbitrage.exchanges.client import create_exchange, has_websocket_books
from arbitrage.exchanges.keys import Keys, env_names
from arbitrage.exchanges.markets import is_spot, load_markets, to_markets
from arbitrage.redact import redact_line, register_secret

if t.TYPE_CHECKING:
    from arbitrage.settings import CcxtSettings

__all__ = ["ExchangeReport", "KeyState", "check_exchange", "check_exchanges", "classify", "one_line"]

KeyState = t.Literal["absent", "incomplete", "valid", "invalid", "error", "unchecked"]

MESSAGE_LIMIT = 160
"""A ccxt message is cut to this many characters: one line per exchange, even for an HTML page."""


class ExchangeReport(msgspec.Struct, kw_only=True):
    """What ``arb check`` found out about one exchange (``--json`` prints these fields)."""

    exchange: str
    reachable: bool = False
    error: str = ""
    """Why the exchange failed the check: ``<kind>: <ccxt class>: <message>`` ('' when it passed)."""
    markets: int = 0
    spot: int = 0
    websocket: bool = False
    """ccxt.pro streams its order books (``watchOrderBook``)."""
    websocket_batch: bool = False
    """... several symbols on one subscription (``watchOrderBookForSymbols``)."""
    symbols_found: list[str] = []
    symbols_missing: dict[str, str] = {}
    """Symbol -> why it cannot be used there (``not listed``, ``not active``, ...)."""
    keys: KeyState = "absent"
    keys_detail: str = ""
    """What is wrong with the keys: the variables missing, or the ccxt error (never a value)."""

    @property
    def ok(self) -> bool:
        """Reachable, markets loaded, and keys either absent or valid. A missing symbol is not a
        failure (a run reports it once and trades the others), so it does not fail the check."""
        return self.reachable and not self.error and self.keys in ("absent", "valid")


def classify(error: BaseException) -> str:
    """The kind of a ccxt failure, by its exception class: ``unreachable`` (the request got no
    usable answer: network, timeout, exchange down or rate limiting), ``keys invalid``,
    ``nonce refused`` (a clock ahead or behind, a nonce not increasing), ``not supported``,
    ``exchange error``; anything else ``failed``."""
    import ccxt

    if isinstance(error, ccxt.AuthenticationError):
        return "keys invalid"
    if isinstance(error, ccxt.InvalidNonce):  # a NetworkError in ccxt, but the exchange did answer
        return "nonce refused"
    if isinstance(error, ccxt.NetworkError | ccxt.RateLimitExceeded):
        return "unreachable"  # RequestTimeout, ExchangeNotAvailable, DDoSProtection, ...
    if isinstance(error, ccxt.NotSupported):
        return "not supported"
    if isinstance(error, ccxt.ExchangeError):
        return "exchange error"
    if isinstance(error, asyncio.TimeoutError | OSError):
        return "unreachable"
    return "failed"


def one_line(error: BaseException) -> str:
    """``<class>: <message>``, redacted, on one line, at most ``MESSAGE_LIMIT`` characters."""
    text = redact_line(str(error))
    if len(text) > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT - 1] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _describe(error: BaseException) -> str:
    return f"{classify(error)}: {one_line(error)}"


async def check_exchange(name: str, section: CcxtSettings, symbols: c.Sequence[str],
                         keys: Keys | None) -> ExchangeReport:
    """Check one exchange (module doc). Never raises for what the exchange answers; a settings
    error (an unknown exchange id) is raised as ``SettingsError`` before anything is sent."""
    report = ExchangeReport(exchange=name)
    if keys is not None:
        for value in (keys.api_key, keys.secret, keys.password):
            register_secret(value)
    exchange = create_exchange(name, section, pro=True, keys=keys if keys and keys.complete else None)
    try:
        report.websocket = has_websocket_books(exchange)
        report.websocket_batch = report.websocket and bool(exchange.has.get("watchOrderBookForSymbols"))
        try:
            markets = await load_markets(exchange, "", 0.0)  # no cache: reachability is the question
        except Exception as exc:  # classified: whatever ccxt or aiohttp raises is reported, not thrown
            report.error = _describe(exc)
            report.keys = "unchecked" if keys is not None else "absent"
            return report
        report.reachable = True
        report.markets = len(markets)
        report.spot = sum(1 for market in markets.values() if is_spot(market))
        found, report.symbols_missing = to_markets(markets, exchange.precisionMode, symbols)
        report.symbols_found = [market.symbol for market in found]
        await _check_keys(exchange, keys, report)
    finally:
        await exchange.close()
    return report


async def _check_keys(exchange: t.Any, keys: Keys | None, report: ExchangeReport) -> None:
    if keys is None:
        return
    if not keys.complete:
        names = env_names(report.exchange)
        report.keys = "incomplete"
        report.keys_detail = "set: " + ", ".join(
            var for var, value in zip(names, (keys.api_key, keys.secret, keys.password), strict=True) if value
        ) + f"; both {names[0]} and {names[1]} are needed"
        return
    try:
        await exchange.fetch_balance()
    except Exception as exc:  # classified below
        kind = classify(exc)
        report.keys = "invalid" if kind == "keys invalid" else "error"
        report.keys_detail = one_line(exc) if kind == "keys invalid" else f"{kind}: {one_line(exc)}"
        return
    report.keys = "valid"


async def check_exchanges(names: c.Sequence[str], section: CcxtSettings, symbols: c.Sequence[str],
                          environ: c.Mapping[str, str]) -> list[ExchangeReport]:
    """Check every exchange at once, in the order given. :raises SettingsError: for an unknown id."""
    import ccxt.async_support as ccxt_async

    from arbitrage.errors import SettingsError
    from arbitrage.exchanges.keys import keys_from_env

    for name in names:  # before any instance exists: none is left unclosed
        if name not in ccxt_async.exchanges:
            raise SettingsError("ccxt.exchanges", f"unknown exchange {name!r} (not a ccxt exchange id)")
    return list(await asyncio.gather(*(
        check_exchange(name, section, symbols, keys_from_env(name, environ)) for name in names)))
