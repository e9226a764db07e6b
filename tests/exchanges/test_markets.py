"""to_market on ccxt's own recorded markets (ccxt, MIT: ../shared/data/ccxt/markets/) and on what the
pinned ccxt parses from the same raw exchange entries; expected numbers read off the raw entries."""

from __future__ import annotations

import asyncio
import json
import typing as t
from pathlib import Path

import pytest

from arbitrage.events import Market
from arbitrage.exchanges.markets import DECIMAL_PLACES, TICK_SIZE, fee_side, to_market, to_markets

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ccxt" / "markets"


def recorded(name: str) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], json.loads((DATA / f"{name}.json").read_text()))


def test_binance_recorded_decimal_places_give_the_raw_filters_steps() -> None:
    # raw entry: PRICE_FILTER tickSize 0.01, LOT_SIZE stepSize/minQty 0.00001, NOTIONAL minNotional 5
    market = to_market(recorded("binance")["BTC/USDT"], DECIMAL_PLACES)
    assert market == Market(symbol="BTC/USDT", base="BTC", quote="USDT", taker_fee=0.001, amount_step=1e-05,
                            price_step=0.01, min_amount=1e-05, min_cost=5.0, fee_side="get")
    assert fee_side(recorded("binance")["BTC/USDT"]) == "get"  # a buy pays its fee in the base received


def test_binance_markets_parsed_by_the_pinned_ccxt_in_tick_size_mode_are_the_same_markets() -> None:
    ccxt_async = pytest.importorskip("ccxt.async_support")
    data = recorded("binance")

    async def parse() -> tuple[dict[str, t.Any], int]:
        no_margin = {"crossMarginPairsData": [], "isolatedMarginPairsData": []}  # fetchMargins False
        exchange = ccxt_async.binance({"options": no_margin})
        try:
            spot = [exchange.parse_market(m["info"]) for m in data.values() if m["spot"]]
            exchange.set_markets(spot)  # merges the exchange's fee defaults (feeSide) as load_markets does
            return dict(exchange.markets), exchange.precisionMode
        finally:
            await exchange.close()

    markets, mode = asyncio.run(parse())
    assert mode == TICK_SIZE
    for symbol, entry in markets.items():
        assert to_market(entry, mode) == to_market(data[symbol], DECIMAL_PLACES)
        assert fee_side(entry) == "get"


def test_kraken_recorded_tick_sizes_and_the_pinned_ccxt_agree_and_fees_are_in_quote() -> None:
    ccxt_async = pytest.importorskip("ccxt.async_support")
    data = recorded("kraken")
    # raw XBTUSDT: tick_size 0.1, lot_decimals 8, ordermin 0.0001, costmin 0.5, fees[0] 0.26 %
    expected = Market(symbol="BTC/USDT", base="BTC", quote="USDT", taker_fee=0.0026, amount_step=1e-08,
                      price_step=0.1, min_amount=0.0001, min_cost=0.5, fee_side="quote")
    assert to_market(data["BTC/USDT"], TICK_SIZE) == Market(**{**_fields(expected), "min_cost": 0.0})

    async def parse() -> dict[str, t.Any]:
        exchange = ccxt_async.kraken()

        async def asset_pairs(params: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
            return {"error": [], "result": {m["id"]: m["info"] for m in data.values()}}

        exchange.publicGetAssetPairs = asset_pairs  # the raw reply, without a network
        try:
            exchange.set_markets(await exchange.fetch_markets())
            return dict(exchange.markets)
        finally:
            await exchange.close()

    markets = asyncio.run(parse())
    assert to_market(markets["BTC/USDT"], TICK_SIZE) == expected  # ccxt 4.5 reads costmin too
    assert {fee_side(m) for m in markets.values()} == {"quote"}


def _fields(market: Market) -> dict[str, t.Any]:
    return {name: getattr(market, name) for name in market.__struct_fields__}


def test_non_spot_unknown_precision_and_missing_fees_are_refused_with_the_symbol() -> None:
    data = recorded("binance")
    with pytest.raises(ValueError, match="BTC/USDT:USDT: not a spot market"):
        to_market(data["BTC/USDT:USDT"], DECIMAL_PLACES)
    with pytest.raises(ValueError, match="significant digits"):
        to_market(data["BTC/USDT"], 3)
    with pytest.raises(ValueError, match="no taker fee"):
        to_market({**data["BTC/USDT"], "taker": None}, DECIMAL_PLACES)
    with pytest.raises(ValueError, match="fee side 'other'"):
        to_market({**data["BTC/USDT"], "feeSide": "other"}, DECIMAL_PLACES)


def test_to_markets_keeps_the_configured_order_and_says_why_others_are_left_out() -> None:
    data = recorded("binance")
    data["LTC/USDT"] = {**data["LTC/USDT"], "active": False}
    found, missing = to_markets(data, DECIMAL_PLACES, ["ETH/USDT", "NOPE/USDT", "BTC/USDT", "LTC/USDT",
                                                       "BTC/USDT:USDT"])
    assert [m.symbol for m in found] == ["ETH/USDT", "BTC/USDT"]
    assert missing == {"NOPE/USDT": "not listed", "LTC/USDT": "not active",
                       "BTC/USDT:USDT": "not a spot market"}


COINBASE_PRODUCTS = [
    # ccxt 4.5's own sample of Advanced Trade's public products reply (coinbase.py, fetch_markets_v3)
    {"product_id": "BTC-USD", "price": "67060", "base_increment": "0.00000001", "quote_increment": "0.01",
     "quote_min_size": "1", "quote_max_size": "150000000", "base_min_size": "0.00000001",
     "base_max_size": "3400", "status": "online", "trading_disabled": False, "product_type": "SPOT",
     "quote_currency_id": "USD", "base_currency_id": "BTC", "alias_to": ["BTC-USDC"],
     "price_increment": "0.01"},
    # one of ccxt's ``stablePairs``, which it gives a taker fee of 0.001 %; quote_increment only
    {"product_id": "USDT-USD", "base_increment": "0.01", "quote_increment": "0.00001",
     "quote_min_size": "1", "base_min_size": "0.99", "status": "online", "trading_disabled": False,
     "product_type": "SPOT", "quote_currency_id": "USD", "base_currency_id": "USDT"},
]


def test_coinbase_markets_as_the_pinned_ccxt_parses_them_have_tick_sizes_and_quote_fees() -> None:
    """No Coinbase recording or emulator exists: the raw products go through ccxt's own parsing
    (``fetch_markets`` with the public products endpoint answered locally), as ``load_markets``
    would do them."""
    ccxt_async = pytest.importorskip("ccxt.async_support")

    async def parse() -> tuple[dict[str, t.Any], int, list[dict[str, t.Any]]]:
        exchange = ccxt_async.coinbase()
        asked: list[dict[str, t.Any]] = []

        async def products(params: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
            asked.append(dict(params or {}))
            spot = (params or {}).get("product_type") is None
            return {"products": COINBASE_PRODUCTS if spot else [], "num_products": "2"}

        exchange.v3PublicGetBrokerageMarketProducts = products  # the raw reply, without a network
        try:
            exchange.set_markets(await exchange.fetch_markets())  # fee defaults merged as by load_markets
            return dict(exchange.markets), exchange.precisionMode, asked
        finally:
            await exchange.close()

    markets, mode, asked = asyncio.run(parse())
    assert mode == TICK_SIZE and asked == [{}, {"product_type": "FUTURE"}]
    # ccxt names no fee side for coinbase (its default: quote), and labels every coinbase order's and
    # trade's fee with the market's quote currency
    assert {m.get("feeSide") for m in markets.values()} == {None}
    # BTC-USD: base_increment 1e-8 (also base_min_size), price_increment 0.01, quote_min_size 1; no
    # keys, so no fee tier read: ccxt's default taker fee of coinbase, 1.2 %
    assert to_market(markets["BTC/USD"], mode) == Market(
        symbol="BTC/USD", base="BTC", quote="USD", taker_fee=0.012, amount_step=1e-08, price_step=0.01,
        min_amount=1e-08, min_cost=1.0, fee_side="quote")
    # USDT-USD: no price_increment, so quote_increment 0.00001 is the price step
    assert to_market(markets["USDT/USD"], mode) == Market(
        symbol="USDT/USD", base="USDT", quote="USD", taker_fee=0.00001, amount_step=0.01, price_step=0.00001,
        min_amount=0.99, min_cost=1.0, fee_side="quote")
