"""Binance spot: the REST API ccxt's binance calls and the diff-depth websocket ccxt.pro watches.

REST routes (under any host segment, e.g. ``/api.binance.com/api/v3/...``): public
``GET /api/v3/ping``, ``time``, ``exchangeInfo``, ``depth``, ``ticker/24hr``, ``ticker/bookTicker``,
``ticker/price``; signed (``X-MBX-APIKEY``, ``timestamp``, ``recvWindow``, HMAC-SHA256
``signature``) ``GET /api/v3/account``, ``POST``/``GET``/``DELETE /api/v3/order``,
``GET /api/v3/openOrders``, ``allOrders``, ``myTrades``. Errors are Binance's ``{"code", "msg"}``
with its HTTP statuses. The websocket (``/ws...`` raw frames, ``/stream...`` wrapped in
``{"stream", "data"}``) answers ``SUBSCRIBE``/``UNSUBSCRIBE`` and sends ``depthUpdate`` diffs.
The book traffic replays the real recording ``cryptofeed/BINANCE.jsonl.zst``: see ``binance_replay.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import typing as t
from decimal import Decimal, InvalidOperation

from aiohttp import web

from tests.emulator.binance_replay import BinanceReplay
from tests.emulator.binance_ws import BinanceStreams, fmt
from tests.emulator.core import EmulatedExchange, Fault, MarketRules, Order, Rejected, Trade, dec
from tests.emulator.recordings import ccxt_markets, cryptofeed
from tests.emulator.server import Emulator, Route

__all__ = [
    "API_KEY", "SECRET", "BinanceEmulator", "BinanceError", "add_arguments", "binance_exchange",
    "binance_markets", "create", "rules_from_info",
]

API_KEY = "emulator-binance-api-key"
SECRET = "emulator-binance-secret"
MAX_RECV_WINDOW = 60_000
AHEAD_MS = 1_000
"""A timestamp may be this far ahead of the server's clock (Binance's rule)."""
CLIENT_ORDER_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
STATUS = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED"}
REJECTIONS: dict[str, tuple[int, str]] = {
    "duplicate_client_order_id": (-2010, "Duplicate order sent."),
    "insufficient_funds": (-2010, "Account has insufficient balance for requested action."),
    "unknown_symbol": (-1121, "Invalid symbol."),
    "order_not_found": (-2013, "Order does not exist."),
}


class BinanceError(Exception):
    """An error reply: HTTP ``status`` with ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "msg": self.msg}, status=self.status)


def rules_from_info(info: dict[str, t.Any], taker: Decimal = Decimal("0.001"),
                    maker: Decimal = Decimal("0.001")) -> MarketRules:
    """Market rules from one exchangeInfo ``symbols`` entry (PRICE_FILTER, LOT_SIZE and NOTIONAL
    or the older MIN_NOTIONAL filter); fees follow Binance's ``get`` side."""
    filters = {f["filterType"]: f for f in info["filters"]}
    lot = filters["LOT_SIZE"]
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    return MarketRules(
        symbol=f"{info['baseAsset']}/{info['quoteAsset']}", id=info["symbol"], base=info["baseAsset"],
        quote=info["quoteAsset"], amount_step=dec(lot["stepSize"]).normalize(),
        price_step=dec(filters["PRICE_FILTER"]["tickSize"]).normalize(), min_amount=dec(lot["minQty"]),
        min_cost=dec(notional.get("minNotional", 0)), taker_fee=taker, maker_fee=maker, fee_side="get",
        info=info)


def binance_markets() -> list[MarketRules]:
    """The spot markets of ``ccxt/markets/binance.json`` (BTC/USDT, ETH/USDT, ...) and those of the
    recording's exchangeInfo it has traffic for (NKN/USDT, BLZ/ETH, LRC/BTC, RUNE/EUR)."""
    rules = [rules_from_info(m["info"], dec(m["taker"]), dec(m["maker"]))
             for m in ccxt_markets("binance").values() if m.get("spot")]
    info = next(json.loads(line["data"]) for line in cryptofeed("BINANCE")
                if line["t"] == "http" and line["url"].endswith("/exchangeInfo"))
    recorded = {line["url"].split("symbol=")[1].split("&")[0] for line in cryptofeed("BINANCE")
                if line["t"] == "http" and "/depth?" in line["url"]}
    rules += [rules_from_info(entry) for entry in info["symbols"] if entry["symbol"] in recorded]
    return rules


def binance_exchange(balances: t.Mapping[str, Decimal | str | int] | None = None) -> EmulatedExchange:
    """An ``EmulatedExchange`` named ``binance`` with ``binance_markets()``, empty books, the
    given free balances, and integer order ids."""
    exchange = EmulatedExchange("binance")
    for rules in binance_markets():
        exchange.add_market(rules)
    for asset, free in (balances or {}).items():
        exchange.set_balance(asset, free)
    return exchange


Handler = t.Callable[[dict[str, str]], t.Any]


class BinanceEmulator(Emulator):
    """Binance spot over an ``EmulatedExchange`` (``binance_exchange()`` by default).

    :param replay: a ``BinanceReplay`` feeding the recorded book traffic, or None for books a
        test sets itself (``exchange.set_book``).
    :param api_key, secret: the one account's credentials.
    :param retime: stamp replayed diffs with the emulator's clock (``BinanceStreams``).
    """

    name = "binance"

    def __init__(self, exchange: EmulatedExchange | None = None, *, replay: BinanceReplay | None = None,
                 api_key: str = API_KEY, secret: str = SECRET, retime: bool = True) -> None:
        super().__init__(exchange or binance_exchange())
        self.api_key, self.secret = api_key, secret
        self.replay = replay
        self.streams = BinanceStreams(self.exchange, on_depth_subscribed=self._depth_subscribed,
                                      retime=retime)
        self._cancel_ids = 0
        public: dict[str, Handler] = {
            "GET /api/v3/ping": lambda p: {},
            "GET /api/v3/time": lambda p: {"serverTime": self.exchange.now_ms()},
            "GET /api/v3/exchangeInfo": self._exchange_info,
            "GET /api/v3/depth": self._depth,
            "GET /api/v3/ticker/24hr": self._ticker_24hr,
            "GET /api/v3/ticker/bookTicker": self._book_ticker,
            "GET /api/v3/ticker/price": self._ticker_price,
        }
        signed: dict[str, Handler] = {
            "GET /api/v3/account": self._account,
            "POST /api/v3/order": self._create_order,
            "GET /api/v3/order": self._get_order,
            "DELETE /api/v3/order": self._cancel_order,
            "GET /api/v3/openOrders": self._open_orders,
            "GET /api/v3/allOrders": self._all_orders,
            "GET /api/v3/myTrades": self._my_trades,
        }
        self._routes = {**{k: (v, False) for k, v in public.items()},
                        **{k: (v, True) for k, v in signed.items()}}

    # -- server hooks ---------------------------------------------------------------------------

    async def handle(self, request: web.Request, route: Route) -> web.StreamResponse | None:
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if upgrade and route.path.startswith(("/ws", "/stream")):
            return await self.streams.serve(request, route)
        found = self._routes.get(route.endpoint)
        if found is None:
            return None
        handler, signed = found
        query = request.rel_url.raw_query_string
        body = await request.text() if request.body_exists else ""
        params = dict(request.query)
        if body:
            params.update((await request.post()).items())  # type: ignore[arg-type]
        try:
            if signed:
                self._authenticate(request.headers.get("X-MBX-APIKEY"), query, body, params)
            return web.json_response(handler(params))
        except BinanceError as error:
            return error.response()
        except Rejected as rejected:
            code, msg = REJECTIONS.get(rejected.reason, (-1013, rejected.message))
            if rejected.reason == "order_not_found" and route.method == "DELETE":
                code, msg = -2011, "Unknown order sent."
            return BinanceError(code, msg if rejected.reason in REJECTIONS else rejected.message).response()

    def error_response(self, fault: Fault) -> web.Response:
        """429: -1003 "Too much request weight"; 418: -1003 "IP banned until ..."; other statuses
        (5xx) a plain-text gateway page, as Binance's front answers, unless ``fault.code`` asks for
        a JSON ``{"code", "msg"}``."""
        if fault.code is not None or fault.status in (418, 429):
            msg = fault.message or ("Too much request weight used; current limit is 6000 request weight "
                                    "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                                    "polling the API.")
            if fault.status == 418 and fault.message is None:
                until = self.exchange.now_ms() + int((fault.retry_after or 120) * 1000)
                msg = f"Way too much request weight used; IP banned until {until}. Please use WebSocket " \
                      "Streams for live updates to avoid bans."
            return web.json_response({"code": int(fault.code or -1003), "msg": msg}, status=fault.status)
        page = f"<html><body><h1>{fault.status} Server Error</h1></body></html>"
        return web.Response(text=fault.message or page,
                            status=fault.status, content_type="text/html")

    async def start(self) -> None:
        if self.replay is not None:
            await self.replay.attach(self.exchange)

    async def stop(self) -> None:
        if self.replay is not None:
            await self.replay.stop()
        await self.streams.close()

    def _depth_subscribed(self) -> None:
        if self.replay is not None:
            self.replay.subscribed()

    # -- authentication -------------------------------------------------------------------------

    def _authenticate(self, api_key: str | None, query: str, body: str, params: dict[str, str]) -> None:
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        if api_key != self.api_key:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        for name in ("timestamp", "signature"):
            if not params.get(name):
                raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                          "or malformed.")
        try:
            timestamp, window = int(params["timestamp"]), int(params.get("recvWindow", 5000))
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        if window > MAX_RECV_WINDOW:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = self.exchange.now_ms()
        if timestamp > now + AHEAD_MS:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        payload = _unsigned(query) + _unsigned(body)
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["signature"]):
            raise BinanceError(-1022, "Signature for this request is not valid.")

    # -- public ---------------------------------------------------------------------------------

    def _rules(self, params: dict[str, str], required: bool = True) -> MarketRules | None:
        market_id = params.get("symbol")
        if not market_id:
            if required:
                raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or "
                                          "malformed.")
            return None
        return self.exchange.market_by_id(market_id)

    def _selected(self, params: dict[str, str]) -> list[MarketRules]:
        """The markets of ``symbol`` or ``symbols`` (a JSON list), else all of them."""
        if params.get("symbols"):
            try:
                ids = json.loads(params["symbols"])
            except ValueError:
                raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
            return [self.exchange.market_by_id(i) for i in ids]
        one = self._rules(params, required=False)
        return [one] if one is not None else list(self.exchange.markets.values())

    def _exchange_info(self, params: dict[str, str]) -> dict[str, t.Any]:
        return {
            "timezone": "UTC", "serverTime": self.exchange.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}],
            "exchangeFilters": [], "symbols": [r.info for r in self._selected(params)],
        }

    def _depth(self, params: dict[str, str]) -> dict[str, t.Any]:
        rules = self._rules(params)
        assert rules is not None
        limit = min(int(params.get("limit", 100)), 5000)
        book = self.exchange.book(rules.symbol)
        return {"lastUpdateId": book.update_id,
                "bids": [[fmt(p), fmt(q)] for p, q in book.levels("bids", limit)],
                "asks": [[fmt(p), fmt(q)] for p, q in book.levels("asks", limit)]}

    def _top(self, rules: MarketRules) -> dict[str, str]:
        book = self.exchange.book(rules.symbol)
        bid = (book.levels("bids", 1) or [(Decimal(0), Decimal(0))])[0]
        ask = (book.levels("asks", 1) or [(Decimal(0), Decimal(0))])[0]
        return {"symbol": rules.id, "bidPrice": fmt(bid[0]), "bidQty": fmt(bid[1]), "askPrice": fmt(ask[0]),
                "askQty": fmt(ask[1])}

    def _last(self, rules: MarketRules) -> tuple[Decimal, Decimal]:
        """(price, amount) of the market's last trade: ours, else the best bid (no tape is kept)."""
        for trade in reversed(self.exchange.trades):
            if trade.symbol == rules.symbol:
                return trade.price, trade.amount
        bids = self.exchange.book(rules.symbol).levels("bids", 1)
        return bids[0] if bids else (Decimal(0), Decimal(0))

    def _ticker_24hr(self, params: dict[str, str]) -> t.Any:
        now = self.exchange.now_ms()
        tickers = []
        for rules in self._selected(params):
            price, qty = self._last(rules)
            trades = [tr for tr in self.exchange.trades if tr.symbol == rules.symbol]
            volume = sum((tr.amount for tr in trades), Decimal(0))
            quote_volume = sum((tr.cost for tr in trades), Decimal(0))
            tickers.append({
                **self._top(rules), "priceChange": fmt(0), "priceChangePercent": "0.000",
                "weightedAvgPrice": fmt(price), "prevClosePrice": fmt(price), "lastPrice": fmt(price),
                "lastQty": fmt(qty), "openPrice": fmt(price), "highPrice": fmt(price), "lowPrice": fmt(price),
                "volume": fmt(volume), "quoteVolume": fmt(quote_volume), "openTime": now - 86_400_000,
                "closeTime": now, "firstId": -1, "lastId": -1, "count": 0})
        return tickers[0] if "symbol" in params else tickers

    def _book_ticker(self, params: dict[str, str]) -> t.Any:
        tickers = [self._top(rules) for rules in self._selected(params)]
        return tickers[0] if "symbol" in params else tickers

    def _ticker_price(self, params: dict[str, str]) -> t.Any:
        prices = [{"symbol": r.id, "price": fmt(self._last(r)[0])} for r in self._selected(params)]
        return prices[0] if "symbol" in params else prices

    # -- signed ---------------------------------------------------------------------------------

    def _account(self, params: dict[str, str]) -> dict[str, t.Any]:
        omit_zero = params.get("omitZeroBalances") == "true"
        balances = [{"asset": asset, "free": fmt(b.free), "locked": fmt(b.used)}
                    for asset, b in sorted(self.exchange.balances.items()) if not (omit_zero and not b.total)]
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.exchange.now_ms(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1,
        }

    def _create_order(self, params: dict[str, str]) -> dict[str, t.Any]:
        rules = self._rules(params)
        assert rules is not None
        side = _choice(params, "side", ("BUY", "SELL")).lower()
        kind = _choice(params, "type", ("LIMIT", "MARKET", "LIMIT_MAKER"))
        amount = _decimal(params, "quantity")
        price = _decimal(params, "price") if kind != "MARKET" else None
        tif = _choice(params, "timeInForce", ("GTC", "IOC", "FOK")) if kind == "LIMIT" else "GTC"
        client_id = params.get("newClientOrderId") or None
        if client_id is not None and not CLIENT_ORDER_ID.match(client_id):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newClientOrderId'; legal range "
                                      "is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        if kind == "LIMIT_MAKER" and price is not None and self._would_take(rules, side, price):
            raise BinanceError(-2010, "Order would immediately match and take.")
        order = self.exchange.place_order(rules.symbol, t.cast(t.Any, side),
                                          "market" if kind == "MARKET" else "limit", amount, price, tif,
                                          client_id)
        reply = params.get("newOrderRespType") or ("FULL" if kind in ("LIMIT", "MARKET") else "ACK")
        if reply == "ACK":
            return {"symbol": rules.id, "orderId": int(order.id), "orderListId": -1,
                    "clientOrderId": order.client_order_id, "transactTime": order.ts_ms}
        out = self._order_json(order, rules, "create")
        if reply == "FULL":
            out["fills"] = [{"price": fmt(tr.price), "qty": fmt(tr.amount), "commission": fmt(tr.fee),
                             "commissionAsset": tr.fee_currency, "tradeId": tr.id} for tr in order.trades]
        return out

    def _would_take(self, rules: MarketRules, side: str, price: Decimal) -> bool:
        book = self.exchange.book(rules.symbol)
        best = book.levels("asks" if side == "buy" else "bids", 1)
        return bool(best) and (best[0][0] <= price if side == "buy" else best[0][0] >= price)

    def _find(self, params: dict[str, str]) -> tuple[Order, MarketRules]:
        rules = self._rules(params)
        assert rules is not None
        if params.get("orderId"):
            order = self.exchange.order(order_id=params["orderId"])
        elif params.get("origClientOrderId"):
            order = self.exchange.order(client_order_id=params["origClientOrderId"])
        else:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, "
                                      "but both were empty/null!")
        if order.symbol != rules.symbol:
            raise Rejected("order_not_found")
        return order, rules

    def _get_order(self, params: dict[str, str]) -> dict[str, t.Any]:
        order, rules = self._find(params)
        return self._order_json(order, rules, "query")

    def _cancel_order(self, params: dict[str, str]) -> dict[str, t.Any]:
        order, rules = self._find(params)
        self.exchange.cancel_order(order.id)
        self._cancel_ids += 1
        out = self._order_json(order, rules, "cancel")
        # Binance names the cancel request by its own new client id; the order's is origClientOrderId
        out.update(origClientOrderId=order.client_order_id,
                   clientOrderId=params.get("newClientOrderId") or f"emu-cancel-{self._cancel_ids}")
        return out

    def _open_orders(self, params: dict[str, str]) -> list[dict[str, t.Any]]:
        rules = self._rules(params, required=False)
        return [self._order_json(o, self.exchange.market(o.symbol), "query")
                for o in self.exchange.open_orders(rules.symbol if rules else None)]

    def _window(self, params: dict[str, str], items: list[t.Any], id_key: str,
                id_of: t.Callable[[t.Any], int], ts_of: t.Callable[[t.Any], int]) -> list[t.Any]:
        if params.get(id_key):
            items = [i for i in items if id_of(i) >= int(params[id_key])]
        if params.get("startTime"):
            items = [i for i in items if ts_of(i) >= int(params["startTime"])]
        if params.get("endTime"):
            items = [i for i in items if ts_of(i) <= int(params["endTime"])]
        limit = min(int(params.get("limit", 500)), 1000)
        return items[:limit] if id_key in params else items[-limit:]

    def _all_orders(self, params: dict[str, str]) -> list[dict[str, t.Any]]:
        rules = self._rules(params)
        assert rules is not None
        orders = [o for o in self.exchange.orders.values() if o.symbol == rules.symbol]
        orders = self._window(params, orders, "orderId", lambda o: int(o.id), lambda o: o.ts_ms)
        return [self._order_json(o, rules, "query") for o in orders]

    def _my_trades(self, params: dict[str, str]) -> list[dict[str, t.Any]]:
        rules = self._rules(params)
        assert rules is not None
        trades = [tr for tr in self.exchange.account_trades() if tr.symbol == rules.symbol]
        if params.get("orderId"):
            trades = [tr for tr in trades if tr.order_id == params["orderId"]]
        trades = self._window(params, trades, "fromId", lambda tr: tr.id, lambda tr: tr.ts_ms)
        return [_trade_json(tr, rules) for tr in trades]

    def _order_json(self, order: Order, rules: MarketRules, shape: str) -> dict[str, t.Any]:
        status = STATUS[order.status]
        if order.status == "open" and order.filled:
            status = "PARTIALLY_FILLED"
        out: dict[str, t.Any] = {
            "symbol": rules.id, "orderId": int(order.id), "orderListId": -1,
            "clientOrderId": order.client_order_id, "price": fmt(order.price or 0),
            "origQty": fmt(order.amount), "executedQty": fmt(order.filled), "origQuoteOrderQty": fmt(0),
            "cummulativeQuoteQty": fmt(order.cost),
            "status": status, "timeInForce": order.time_in_force, "type": order.type.upper(),
            "side": order.side.upper(), "selfTradePreventionMode": "EXPIRE_MAKER"}
        if shape == "create":
            out.update(transactTime=order.ts_ms, workingTime=order.ts_ms)
        elif shape == "query":
            out.update(stopPrice=fmt(0), icebergQty=fmt(0), time=order.ts_ms, updateTime=order.updated_ms,
                       isWorking=True, workingTime=order.ts_ms)
        else:
            out.update(transactTime=order.updated_ms)
        return out


def _trade_json(trade: Trade, rules: MarketRules) -> dict[str, t.Any]:
    return {"symbol": rules.id, "id": trade.id, "orderId": int(trade.order_id), "orderListId": -1,
            "price": fmt(trade.price), "qty": fmt(trade.amount), "quoteQty": fmt(trade.cost),
            "commission": fmt(trade.fee), "commissionAsset": trade.fee_currency, "time": trade.ts_ms,
            "isBuyer": trade.side == "buy", "isMaker": trade.maker, "isBestMatch": True}


def _unsigned(encoded: str) -> str:
    """``encoded`` (a query string or form body) without its ``signature=...`` pair."""
    return "&".join(pair for pair in encoded.split("&") if pair and not pair.startswith("signature="))


def _choice(params: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name)
    if not value:
        raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    if value not in allowed:
        raise BinanceError(-1116 if name == "type" else -1115 if name == "timeInForce" else -1117,
                           f"Invalid {name}.")
    return value


def _decimal(params: dict[str, str], name: str) -> Decimal:
    value = params.get(name)
    if not value:
        raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None


# -- the subprocess entry (python -m tests.emulator binance ...) -----------------------------------

SCENARIOS = {
    "replay": "the recorded books of NKN/USDT, BLZ/ETH, LRC/BTC, RUNE/EUR, replayed once subscribed",
    "quiet": "every market with an empty book: plant books with POST /_emulator/book",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``binance`` options of ``python -m tests.emulator``."""
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="replay",
                        help="; ".join(f"{k}: {v}" for k, v in SCENARIOS.items()))
    parser.add_argument("--pace", type=float, default=0.002, help="seconds between replayed frames")
    parser.add_argument("--start", choices=("subscribe", "listen"), default="subscribe",
                        help="start the replay at the first depth subscription or at once")
    parser.add_argument("--balance", action="append", default=[], metavar="ASSET=FREE")
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--secret", default=SECRET)


def create(args: argparse.Namespace) -> BinanceEmulator:
    """The emulator ``python -m tests.emulator binance`` serves."""
    balances = dict(item.split("=", 1) for item in args.balance)
    replay = BinanceReplay(pace=args.pace, start=args.start) if args.scenario == "replay" else None
    return BinanceEmulator(binance_exchange(balances), replay=replay, api_key=args.api_key,
                           secret=args.secret)
