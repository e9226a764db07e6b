"""--exchange-url: every URL of a real ccxt instance moved under one base, host kept as a path segment."""

from __future__ import annotations

import typing as t

import pytest

from arbitrage.errors import SettingsError
from arbitrage.exchanges.urls import parse_exchange_url, rewrite_url, rewrite_urls

BASE = "http://127.0.0.1:8080"


@pytest.mark.parametrize(("url", "base", "expected"), [
    ("https://api.binance.com/api/v3", BASE, "http://127.0.0.1:8080/api.binance.com/api/v3"),
    ("wss://stream.binance.com:9443/ws", BASE, "ws://127.0.0.1:8080/stream.binance.com/ws"),
    ("wss://ws.kraken.com/v2", "https://gw.example:443/x/", "wss://gw.example:443/x/ws.kraken.com/v2"),
    ("https://api.kraken.com", BASE, "http://127.0.0.1:8080/api.kraken.com"),
    ("https://api.binance.com/api/v3/depth?limit=5", BASE,
     "http://127.0.0.1:8080/api.binance.com/api/v3/depth?limit=5"),
    ("not a url", BASE, "not a url"),
])
def test_the_host_becomes_the_first_path_segment_under_the_base(url: str, base: str, expected: str) -> None:
    assert rewrite_url(url, base) == expected


def _strings(tree: t.Any) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _strings(v)]
    if isinstance(tree, list | tuple):
        return [s for v in tree for s in _strings(v)]
    return []


@pytest.mark.parametrize("name", ["binance", "kraken"])
def test_every_url_of_the_real_ccxt_pro_instance_is_rewritten_and_the_tree_keeps_its_shape(name: str) -> None:
    ccxt_pro = pytest.importorskip("ccxt.pro")
    original = getattr(ccxt_pro, name)().urls["api"]
    rewritten = rewrite_urls(original, BASE)
    before, after = _strings(original), _strings(rewritten)
    assert len(before) == len(after) > 3
    urls = [(a, b) for a, b in zip(before, after, strict=True) if "://" in a]
    assert urls and all(b.startswith(("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/")) for _, b in urls)
    for a, b in urls:  # the host (without port) is the first segment, the rest of the path follows
        host = a.split("://", 1)[1].split("/", 1)[0].split(":")[0]
        assert b.split("://", 1)[1].split("/")[1] == host
        assert b.startswith("ws://") == a.startswith(("ws://", "wss://"))
    assert any(b.startswith("ws://") for _, b in urls)  # ccxt.pro's websockets are in the tree too


def test_coinbase_rest_and_advanced_trade_websocket_move_under_the_exchange_url_base() -> None:
    """``--exchange-url coinbase=BASE`` through ``create_exchange``: ccxt.pro's coinbase has two
    URLs, REST (``api.coinbase.com``, under which ccxt puts both its v2 and v3 paths) and the
    Advanced Trade websocket; nothing else in the tree may still point at Coinbase."""
    import asyncio

    from arbitrage.exchanges.client import create_exchange
    from arbitrage.settings import load_settings

    name, base = parse_exchange_url("coinbase=http://127.0.0.1:8765")
    settings = load_settings(None, {"ccxt": {"urls": {name: base}}}, environ={})

    async def made() -> t.Any:
        exchange = create_exchange(name, settings, pro=True)
        await exchange.close()
        return exchange

    exchange = asyncio.run(made())
    assert exchange.urls["api"] == {"rest": "http://127.0.0.1:8765/api.coinbase.com",
                                    "ws": "ws://127.0.0.1:8765/advanced-trade-ws.coinbase.com"}
    # ccxt builds every request as urls["api"]["rest"] + the endpoint's path
    assert exchange.sign("brokerage/market/products", ["v3", "public"], "GET")["url"] == (
        "http://127.0.0.1:8765/api.coinbase.com/api/v3/brokerage/market/products")
    assert exchange.sign("currencies", ["v2", "public"], "GET")["url"] == (
        "http://127.0.0.1:8765/api.coinbase.com/v2/currencies")


def test_exchange_url_items_are_name_equals_base_or_a_one_line_settings_error() -> None:
    assert parse_exchange_url("Binance=http://127.0.0.1:9000") == ("binance", "http://127.0.0.1:9000")
    for bad in ("binance", "=http://x", "binance=ftp://127.0.0.1", "binance=http://", "kraken=127.0.0.1:80"):
        with pytest.raises(SettingsError, match="--exchange-url"):
            parse_exchange_url(bad)
