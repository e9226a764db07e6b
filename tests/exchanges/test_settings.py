"""[ccxt] settings and the arb run flags that fill them: one line naming the key when wrong."""

from __future__ import annotations

import pytest

from arbitrage.cli.common import build_overrides
from arbitrage.errors import SettingsError
from arbitrage.settings import load_settings


def test_flags_fill_the_ccxt_section_and_exchange_urls_add_to_the_file_s() -> None:
    overrides = build_overrides(source="ccxt", exchanges="Binance, kraken", symbols="BTC/USDT,ETH/USDT",
                                rest=True, exchange_url=["binance=http://127.0.0.1:1"])
    settings = load_settings(None, overrides, environ={"ARB_CCXT__URLS": '{kraken = "http://127.0.0.1:2"}'})
    ccxt = settings.ccxt
    assert (ccxt.exchanges, ccxt.symbols) == (["binance", "kraken"], ["BTC/USDT", "ETH/USDT"])
    assert ccxt.rest
    assert ccxt.urls == {"kraken": "http://127.0.0.1:2", "binance": "http://127.0.0.1:1"}
    assert ccxt.depth == 10 and ccxt.markets_cache == "data/markets" and ccxt.enable_rate_limit


def test_staleness_is_per_venue_with_a_default() -> None:
    ccxt = load_settings(None, {"ccxt": {"staleness_ms": 3000, "venue_staleness_ms": {"kraken": 8000}}},
                         environ={}).ccxt
    assert (ccxt.staleness_of("kraken"), ccxt.staleness_of("binance")) == (8000, 3000)


@pytest.mark.parametrize(("ccxt", "key"), [
    ({"symbols": ["BTCUSDT"]}, "ccxt.symbols[0]"),
    ({"exchanges": ["Binance"]}, "ccxt.exchanges[0]"),
    ({"exchanges": ["kraken", "kraken"]}, "ccxt.exchanges"),
    ({"urls": {"binance": "127.0.0.1:8080"}}, "ccxt.urls.binance"),
    ({"depth": 0}, "ccxt.depth"),
    ({"staleness_ms": -1}, "ccxt.staleness_ms"),
    ({"backoff_initial_s": 5, "backoff_max_s": 1}, "ccxt.backoff_max_s"),
    ({"rest_intervl_s": 1}, "ccxt.rest_intervl_s"),
])
def test_a_wrong_ccxt_setting_is_one_line_naming_its_key(ccxt: dict[str, object], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(None, {"ccxt": ccxt}, environ={})
    assert info.value.key == key and "\n" not in str(info.value)


def test_the_ccxt_source_needs_exchanges_and_symbols() -> None:
    with pytest.raises(SettingsError, match="ccxt.exchanges"):
        load_settings(None, {"run": {"source": "ccxt"}, "ccxt": {"symbols": ["BTC/USDT"]}}, environ={})
    with pytest.raises(SettingsError, match="ccxt.symbols"):
        load_settings(None, {"run": {"source": "ccxt"}, "ccxt": {"exchanges": ["binance"]}}, environ={})
    with pytest.raises(SettingsError, match="--exchange-url"):
        build_overrides(exchange_url=["binance"])
