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


def test_exchange_url_items_are_name_equals_base_or_a_one_line_settings_error() -> None:
    assert parse_exchange_url("Binance=http://127.0.0.1:9000") == ("binance", "http://127.0.0.1:9000")
    for bad in ("binance", "=http://x", "binance=ftp://127.0.0.1", "binance=http://", "kraken=127.0.0.1:80"):
        with pytest.raises(SettingsError, match="--exchange-url"):
            parse_exchange_url(bad)
