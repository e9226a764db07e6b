"""The order and trade records Kraken answers (QueryOrders, OpenOrders, ClosedOrders,
TradesHistory, QueryTrades), from the core's ``Order`` and ``Trade``.

Decimals as Kraken prints them: volumes with ``lot_decimals``, prices with the pair's book
decimals, an order's ``cost`` truncated to ``cost_decimals`` (Kraken truncates it; ccxt ignores it
and takes average x filled), the average ``price`` rounded to the price decimals; fees, trade costs
and balances exactly (`exact`), so no figure the emulator reports is rounded away.
"""

from __future__ import annotations

import typing as t
from decimal import Decimal

from tests.emulator.core import Order, Trade
from tests.emulator.kraken_markets import KrakenPair
from tests.emulator.kraken_wire import fmt, fmt_down, kraken_id

__all__ = ["STATUS", "OrderTags", "description", "exact", "order_record", "trade_record"]

STATUS = {"open": "open", "closed": "closed", "canceled": "canceled", "expired": "canceled"}
"""Core order status -> Kraken's (an IOC order's expired rest is a cancel on Kraken)."""


class OrderTags(t.NamedTuple):
    """What the client tagged an order with: ``cl_ord_id`` (None without one), ``userref``, and
    the fee currency flag in effect (``fciq``: quote, ``fcib``: base)."""

    cl_ord_id: str | None
    userref: int
    oflags: str = "fciq"


def exact(value: Decimal, decimals: int) -> str:
    """At least ``decimals`` decimals, more when the value needs them: never rounded."""
    digits = max(decimals, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
    return fmt(value, digits)


def description(pair: KrakenPair, side: str, ordertype: str, volume: Decimal, price: Decimal | None) -> str:
    """Kraken's ``descr.order`` text: ``buy 0.70000000 XBTUSDT @ limit 50010.0``."""
    where = "market" if price is None else f"limit {fmt(price, pair.precision.price)}"
    return f"{side} {fmt(volume, pair.lot_decimals)} {pair.altname} @ {where}"


def order_record(order: Order, pair: KrakenPair, tags: OrderTags, with_trades: bool) -> dict[str, t.Any]:
    """One order as QueryOrders / OpenOrders / ClosedOrders list it (``trades`` ids on request)."""
    decimals = pair.precision.price
    price = fmt(order.price, decimals) if order.price is not None else "0"
    out: dict[str, t.Any] = {"refid": None, "userref": tags.userref}
    if tags.cl_ord_id is not None:
        out["cl_ord_id"] = tags.cl_ord_id
    out |= {
        "status": STATUS[order.status], "opentm": order.ts_ms / 1000, "starttm": 0, "expiretm": 0,
        "descr": {"pair": pair.altname, "type": order.side, "ordertype": order.type, "price": price,
                  "price2": "0", "leverage": "none",
                  "order": description(pair, order.side, order.type, order.amount, order.price), "close": ""},
        "vol": fmt(order.amount, pair.lot_decimals), "vol_exec": fmt(order.filled, pair.lot_decimals),
        "cost": fmt_down(order.cost, pair.cost_decimals), "fee": exact(order.fee, pair.cost_decimals),
        "price": fmt(order.average or 0, decimals), "stopprice": fmt(0, decimals),
        "limitprice": fmt(0, decimals), "misc": "", "oflags": tags.oflags, "reason": None,
    }
    if with_trades and order.trades:
        out["trades"] = [kraken_id("T", trade.id) for trade in order.trades]
    if order.status != "open":
        out["closetm"] = order.updated_ms / 1000
    return out


def trade_record(trade: Trade, pair: KrakenPair, ordertype: str) -> dict[str, t.Any]:
    """One fill as TradesHistory / QueryTrades list it (keyed by ``kraken_id("T", trade.id)``)."""
    return {
        "ordertxid": trade.order_id, "postxid": kraken_id("P", trade.id), "pair": pair.id,
        "time": trade.ts_ms / 1000, "type": trade.side, "ordertype": ordertype,
        "price": fmt(trade.price, pair.precision.price), "cost": exact(trade.cost, pair.cost_decimals),
        "fee": exact(trade.fee, pair.cost_decimals), "vol": fmt(trade.amount, pair.lot_decimals),
        "margin": fmt(0, pair.cost_decimals), "leverage": "0", "misc": "", "trade_id": trade.id,
        "maker": trade.maker,
    }
