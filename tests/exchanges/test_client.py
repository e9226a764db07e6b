"""create_exchange: the options every part of arb talks to an exchange with (no network)."""

from __future__ import annotations

import asyncio
import time
import typing as t

import pytest

from arbitrage.errors import SettingsError
from arbitrage.exchanges.client import create_exchange, has_websocket_books
from arbitrage.exchanges.keys import Keys
from arbitrage.settings import load_settings

pytest.importorskip("ccxt.pro")

BASE = "http://127.0.0.1:9"


def _settings(**ccxt: t.Any) -> t.Any:
    return load_settings(None, {"ccxt": ccxt}, environ={})


def _made(name: str, settings: t.Any, **kwargs: t.Any) -> t.Any:
    async def make() -> t.Any:
        exchange = create_exchange(name, settings, **kwargs)
        await exchange.close()
        return exchange

    return asyncio.run(make())


def test_binance_loads_spot_markets_only_throttled_per_settings_with_the_settings_timeout() -> None:
    exchange = _made("binance", _settings(enable_rate_limit=False, timeout_ms=2500), pro=True)
    assert exchange.enableRateLimit is False and exchange.timeout == 2500
    assert exchange.options["fetchMarkets"]["types"] == ["spot"]
    assert exchange.options["fetchCurrencies"] is False and exchange.options["fetchMargins"] is False
    assert has_websocket_books(exchange)
    assert _made("binance", _settings(), pro=False).enableRateLimit is True
    assert not has_websocket_books(_made("binance", _settings(), pro=False))


def test_urls_move_under_the_base_only_for_the_exchange_named() -> None:
    settings = _settings(urls={"kraken": BASE})
    kraken = _made("kraken", settings, pro=True)
    assert kraken.urls["api"]["public"] == f"{BASE}/api.kraken.com"
    assert kraken.urls["api"]["ws"]["public"].startswith("ws://127.0.0.1:9/ws.kraken.com")
    assert _made("binance", settings, pro=True).urls["api"]["public"].startswith("https://api.binance.com")


def test_keys_reach_ccxt_and_an_unknown_exchange_is_a_settings_error_naming_it() -> None:
    exchange = _made("binance", _settings(), pro=False, keys=Keys("binance", "key-1", "secret-1"))
    assert (exchange.apiKey, exchange.secret) == ("key-1", "secret-1")
    with pytest.raises(SettingsError, match="ccxt.exchanges: unknown exchange 'binanse'"):
        create_exchange("binanse", _settings(), pro=True)


def test_kraken_nonces_increase_within_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kraken refuses a nonce not above the key's last; ccxt's own is the time in ms
    for pro in (True, False):
        kraken = _made("kraken", _settings(), pro=pro)
        monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_123_456_789)
        assert [kraken.nonce() for _ in range(3)] == [1_700_000_000_123, 1_700_000_000_124, 1_700_000_000_125]
        monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_500_000_000)  # the clock moved on
        assert kraken.nonce() == 1_700_000_000_500
        monkeypatch.undo()
    assert "nonce" not in vars(_made("binance", _settings(), pro=True))  # ccxt's own (timestamps)
