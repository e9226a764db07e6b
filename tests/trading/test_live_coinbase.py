"""What a live Coinbase order carries to Coinbase (no emulator: ccxt 4.5.90's coinbase with its
order endpoint answered locally). ccxt's ``coinbase.create_order`` drops the unified
``clientOrderId`` parameter and sends ``client_order_id = "ccxt-" + uuid`` instead; only a
``client_order_id`` parameter reaches Coinbase. Until ``LiveVenue`` sends that, our id never gets
there: no look-up by client order id, no recognising our own orders at restart."""

from __future__ import annotations

import asyncio
import typing as t

import pytest
from loguru import logger

from arbitrage.clock import Clock
from arbitrage.exchanges.markets import to_market
from tests.trading.live_helpers import FAST, request

ccxt = pytest.importorskip("ccxt.async_support")

PRODUCT = {"product_id": "BTC-USD", "base_increment": "0.00000001", "price_increment": "0.01",
           "quote_increment": "0.01", "base_min_size": "0.00000001", "quote_min_size": "1",
           "product_type": "SPOT", "base_currency_id": "BTC", "quote_currency_id": "USD",
           "trading_disabled": False}


async def sent_by(submit: t.Callable[[t.Any], t.Awaitable[t.Any]]) -> dict[str, t.Any]:
    """The body ccxt's coinbase posts to ``brokerage/orders`` when ``submit(exchange)`` runs (the
    endpoint refuses it, so nothing else is called)."""
    exchange = ccxt.coinbase({"enableRateLimit": False})
    exchange.set_markets([exchange.parse_spot_market(PRODUCT, {})])
    bodies: list[dict[str, t.Any]] = []

    async def orders(params: dict[str, t.Any] | None = None) -> t.NoReturn:
        bodies.append(dict(params or {}))
        raise ccxt.InvalidOrder("refused locally")

    exchange.v3PrivatePostBrokerageOrders = orders
    try:
        await submit(exchange)
    finally:
        await exchange.close()
    [body] = bodies
    return body


def test_ccxt_coinbase_replaces_a_client_order_id_parameter_and_passes_client_order_id() -> None:
    async def unified(exchange: t.Any) -> None:
        with pytest.raises(ccxt.InvalidOrder):
            await exchange.create_order("BTC/USD", "limit", "buy", 0.1, 100, {"clientOrderId": "arbX",
                                                                               "timeInForce": "IOC"})

    async def native(exchange: t.Any) -> None:
        with pytest.raises(ccxt.InvalidOrder):
            await exchange.create_order("BTC/USD", "limit", "buy", 0.1, 100, {"client_order_id": "arbX",
                                                                               "timeInForce": "IOC"})

    dropped, kept = asyncio.run(sent_by(unified)), asyncio.run(sent_by(native))
    assert dropped["client_order_id"].startswith("ccxt-") and kept["client_order_id"] == "arbX"
    assert dropped["order_configuration"] == {"sor_limit_ioc": {"base_size": "0.1", "limit_price": "100"}}


def test_a_live_coinbase_order_carries_our_client_order_id() -> None:
    from arbitrage.trading.live import LiveVenue

    order = request("cb1-L0", "coinbase", "buy", 0.1, 100.0, symbol="BTC/USD")

    async def submit(exchange: t.Any) -> None:
        venue = LiveVenue("coinbase", exchange, clock=Clock(), markets=[to_market(
            exchange.markets["BTC/USD"], exchange.precisionMode)], settings=FAST, log=logger)
        result = await venue.submit(order)
        assert result.status == "rejected"

    assert asyncio.run(sent_by(submit))["client_order_id"] == order.client_order_id
