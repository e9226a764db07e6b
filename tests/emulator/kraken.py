"""Kraken spot emulator: REST ``/0/public/*`` and ``/0/private/*``, websocket v2 ``book``.

Enough of Kraken for the unmodified ccxt 4.5 (``async_support``) and ccxt.pro with their URLs moved
by ``arbitrage.exchanges.urls.rewrite_urls``: ``load_markets`` (Assets, AssetPairs), Depth,
Ticker, Time, SystemStatus; signed Balance, BalanceEx, AddOrder (limit or market; GTC or IOC;
``cl_ord_id`` or ``userref``), QueryOrders, OpenOrders, ClosedOrders, CancelOrder,
TradesHistory, QueryTrades; ``wss://ws.kraken.com/v2`` (`kraken_ws`). State and matching are the
core's (`core.EmulatedExchange`); this module speaks Kraken's wire:

* AddOrder's ``deadline`` (RFC3339) is honoured: an order processed after it is refused
  (`DEADLINE_ERROR`) and not placed; Kraken's 2-60 s bounds on it are not enforced;
* every reply is HTTP 200 ``{"error": [], "result": ...}``; a refusal is ``{"error": ["E..."]}``
  with HTTP 200 too (`kraken_wire.ERRORS`, plus Kraken's own strings for arguments, minimums,
  keys, signatures and nonces); a ``status`` fault of 429 answers ``EAPI:Rate limit exceeded``
  with HTTP 200, one of 5xx that status with ``EService:Unavailable`` (503) or
  ``EGeneral:Internal error``; ``Fault.message`` replaces the error string;
* fees are charged where ``oflags`` asks: ``fciq`` in quote, ``fcib`` in base; without either,
  Kraken's default: a buy pays in quote, a sell in base. The flag in effect is recorded and shown
  as the order's ``oflags`` (from which ccxt's ``parse_order`` takes the fee currency; its
  ``parse_trade`` labels every fee quote). The rate is the pair's first-tier taker rate (0.26 %
  in the recorded pairs), rounded up to ``cost_decimals``;
* ``cl_ord_id`` must be a UUID or at most 18 ASCII characters, and is refused while an *open*
  order carries it: Kraken enforces uniqueness across open orders only, so the id of an IOC
  order, closed at once, can be used again (docs.kraken.com, "Spot Client Order Identifiers");
* an IOC order's unfilled rest is canceled: it ends ``closed`` when it filled whole, else
  ``canceled`` with what it filled in ``vol_exec``;
* numbers are printed with Kraken's decimals: volumes with ``lot_decimals``, prices with the
  pair's book decimals, an order's ``cost`` truncated to ``cost_decimals`` (as Kraken does; ccxt
  ignores it and multiplies the average ``price`` by ``vol_exec``), fees and balances exactly
  (`kraken_records`);
* TradesHistory lists at most ``TRADES_PAGE`` (50) trades, newest first, from offset ``ofs``, with
  ``count`` the number matching in all, as Kraken pages it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import email.utils
import time
import typing as t
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from aiohttp import web

from tests.emulator.core import EmulatedExchange, Fault, Order, Rejected, Trade
from tests.emulator.kraken_feed import BookFrame, Precision, load_recording
from tests.emulator.kraken_markets import KrakenPair, asset_entries, ccxt_pairs, recorded_pairs
from tests.emulator.kraken_records import OrderTags, description, exact, order_record, trade_record
from tests.emulator.kraken_wire import ERRORS, Credentials, KrakenError, fmt, kraken_id, valid_cl_ord_id
from tests.emulator.kraken_ws import PublicSocket
from tests.emulator.server import Emulator, Route

__all__ = ["RECORDED_DEPTH", "TRADES_PAGE", "KrakenEmulator", "add_arguments", "create", "default_emulator"]

RECORDED_DEPTH = 1000
"""The depth the cryptofeed recording subscribed with: fed books are kept at it, like Kraken's."""

TRADES_PAGE = 50
"""Trades a TradesHistory reply lists at most (Kraken: "50 results are returned at a time, the most
recent by default"; ``ofs`` pages back)."""
_TRUE = ("true", "True", "1")
DEADLINE_ERROR = "EOrder:Deadline elapsed"
"""What the emulator answers an AddOrder arriving after its ``deadline``. Kraken documents the
parameter (the matching engine rejects the order after it) but the stored docs do not quote its
error string: this one is the emulator's; ccxt raises a plain ``ExchangeError`` for it."""


def _deadline(params: dict[str, str]) -> float | None:
    """AddOrder's ``deadline`` (RFC3339) as seconds since the epoch, None when not sent."""
    if "deadline" not in params:
        return None
    try:
        when = datetime.datetime.fromisoformat(params["deadline"])
    except ValueError:
        raise KrakenError("EGeneral:Invalid arguments:deadline") from None
    if when.tzinfo is None:
        raise KrakenError("EGeneral:Invalid arguments:deadline")
    return when.timestamp()


def _fee_flag(oflags: str | None, side: str) -> str:
    """The fee currency flag an order gets: ``fciq`` (quote) or ``fcib`` (base) as sent, else
    Kraken's default, quote for a buy and base for a sell. Other flags are not emulated."""
    flags = set(oflags.split(",")) if oflags else set()
    if not flags <= {"fciq", "fcib"} or len(flags) > 1:
        raise KrakenError("EGeneral:Invalid arguments:oflags")
    return flags.pop() if flags else ("fciq" if side == "buy" else "fcib")


def _decimal(params: dict[str, str], key: str) -> Decimal:
    try:
        value = Decimal(params[key])
    except (KeyError, InvalidOperation):
        raise KrakenError(f"EGeneral:Invalid arguments:{key}") from None
    if not value.is_finite() or value <= 0:
        raise KrakenError(f"EGeneral:Invalid arguments:{key}")
    return value


class KrakenEmulator(Emulator):
    """Kraken spot in front of an ``EmulatedExchange`` of ``pairs``; ``keys`` maps each accepted
    API key to its base64 secret."""

    name = "kraken"

    def __init__(self, pairs: t.Iterable[KrakenPair], keys: dict[str, str],
                 exchange: EmulatedExchange | None = None) -> None:
        numbers = iter(range(1, 1 << 62))
        super().__init__(exchange or EmulatedExchange(
            "kraken", order_ids=lambda: kraken_id("O", next(numbers)), client_ids_unique="open"))
        self.pairs = {pair.symbol: pair for pair in pairs}
        self.pairs_by_id = {pair.id: pair for pair in self.pairs.values()}
        self.credentials = Credentials(dict(keys))
        self.tags: dict[str, OrderTags] = {}
        """Per order id, the ``cl_ord_id`` (None when the order came without one) and ``userref``."""
        self.asset_ids: dict[str, str] = {}
        """Unified asset code (the core's balances) -> Kraken asset id: ``BTC`` -> ``XXBT``."""
        for pair in self.pairs.values():
            rules = pair.rules()
            self.exchange.add_market(rules)
            self.asset_ids[rules.base], self.asset_ids[rules.quote] = pair.info["base"], pair.info["quote"]
        self.assets = asset_entries(self.pairs.values())
        self.socket = PublicSocket(self.exchange, self.precision)
        self.autoplay: tuple[list[BookFrame], float] | None = None
        """Frames and pace to `replay` once the server listens (the subprocess's ``--pace``)."""
        self._replays: list[asyncio.Task[None]] = []

    def precision(self, symbol: str) -> Precision:
        return self.pairs[symbol].precision

    # -- feeding books ----------------------------------------------------------------------------

    def feed(self, frame: BookFrame) -> None:
        """Apply one recorded book message (snapshot or update), kept at `RECORDED_DEPTH` levels."""
        if frame.snapshot:
            self.exchange.load_snapshot(frame.symbol, frame.bids, frame.asks)
        else:
            self.exchange.feed_diff(frame.symbol, frame.bids, frame.asks, ts_ms=int(frame.ts * 1000))
        book = self.exchange.book(frame.symbol)
        for side in (book.asks, book.bids):
            if len(side) > RECORDED_DEPTH:  # levels Kraken stopped sending (out of scope)
                for price in sorted(side, reverse=side is book.bids)[RECORDED_DEPTH:]:
                    del side[price]

    def replay(self, frames: t.Iterable[BookFrame], pace: float = 0.0) -> asyncio.Task[None]:
        """Feed ``frames`` in the background, ``pace`` seconds apart; stopped with the emulator."""
        async def run() -> None:
            for frame in frames:
                self.feed(frame)
                await asyncio.sleep(pace)

        task = asyncio.get_running_loop().create_task(run())
        self._replays.append(task)
        return task

    async def start(self) -> None:
        if self.autoplay is not None:
            self.replay(*self.autoplay)

    async def stop(self) -> None:
        for task in self._replays:
            task.cancel()
        await asyncio.gather(*self._replays, return_exceptions=True)
        self.socket.close_all()

    # -- dispatch ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request, route: Route) -> web.StreamResponse | None:
        if route.host == "ws.kraken.com" and route.path == "/v2":
            return await self.socket.handle(request, route.path)
        if route.host != "api.kraken.com":
            return None
        api, _, method = route.path.removeprefix("/0/").partition("/")
        if api == "public" and request.method == "GET" and method in self._PUBLIC:
            return self._reply(self._PUBLIC[method], dict(request.query))
        if api == "private" and request.method == "POST" and method in self._PRIVATE:
            body = await request.text()
            params = dict(parse_qsl(body, keep_blank_values=True))
            try:
                self.credentials.check(route.path, request.headers, body, params.get("nonce"))
            except KrakenError as error:
                return web.json_response({"error": [error.error]})
            return self._reply(self._PRIVATE[method], params)
        return None

    def _reply(self, handler: t.Callable[[KrakenEmulator, dict[str, str]], t.Any],
               params: dict[str, str]) -> web.Response:
        try:
            return web.json_response({"error": [], "result": handler(self, params)})
        except KrakenError as error:
            return web.json_response({"error": [error.error]})
        except Rejected as rejected:
            own = rejected.message.startswith("E") and ":" in rejected.message  # an injected Kraken string
            error = rejected.message if own else ERRORS.get(rejected.reason, "EGeneral:Internal error")
            return web.json_response({"error": [error]})

    def error_response(self, fault: Fault) -> web.Response:
        if fault.status == 429 or fault.status < 500:
            return web.json_response({"error": [fault.message or "EAPI:Rate limit exceeded"]})
        default = "EService:Unavailable" if fault.status == 503 else "EGeneral:Internal error"
        return web.json_response({"error": [fault.message or default]}, status=fault.status)

    # -- public -----------------------------------------------------------------------------------

    def _pairs(self, params: dict[str, str]) -> list[KrakenPair]:
        if "pair" not in params:
            return list(self.pairs.values())
        found = []
        for name in params["pair"].split(","):
            pair = self.pairs_by_id.get(name) or next(
                (p for p in self.pairs.values() if name in (p.altname, p.info["wsname"], p.symbol)), None)
            if pair is None:
                raise KrakenError("EQuery:Unknown asset pair")
            found.append(pair)
        return found

    def _asset_pairs(self, params: dict[str, str]) -> dict[str, t.Any]:
        return {pair.id: pair.info for pair in self._pairs(params)}

    def _assets(self, params: dict[str, str]) -> dict[str, t.Any]:
        wanted = params.get("asset")
        if wanted is None:
            return self.assets
        result = {}
        for name in wanted.split(","):
            asset = next((k for k, v in self.assets.items() if name in (k, v["altname"])), None)
            if asset is None:
                raise KrakenError("EQuery:Unknown asset")
            result[asset] = self.assets[asset]
        return result

    def _depth(self, params: dict[str, str]) -> dict[str, t.Any]:
        pairs = self._pairs(params)
        if len(pairs) != 1:
            raise KrakenError("EGeneral:Invalid arguments")
        pair, count = pairs[0], int(params.get("count", 100))
        book, p = self.exchange.book(pair.symbol), pair.precision
        stamp = int(book.ts_ms / 1000)
        return {pair.id: {side: [[fmt(price, p.price), fmt(qty, p.qty), stamp]
                                 for price, qty in book.levels(side, count or None)]
                          for side in ("asks", "bids")}}

    def _ticker(self, params: dict[str, str]) -> dict[str, t.Any]:
        result = {}
        for pair in self._pairs(params):
            book, p = self.exchange.book(pair.symbol), pair.precision
            (ask, ask_qty), (bid, bid_qty) = (book.levels("asks", 1) or [(Decimal(0), Decimal(0))])[0], (
                book.levels("bids", 1) or [(Decimal(0), Decimal(0))])[0]
            trades = [tr for tr in self.exchange.trades if tr.symbol == pair.symbol]
            last = (trades[-1].price, trades[-1].amount) if trades else (ask, Decimal(0))
            volume = fmt(sum((tr.amount for tr in trades), Decimal(0)), p.qty)
            result[pair.id] = {
                "a": [fmt(ask, p.price), str(int(ask_qty)), fmt(ask_qty, 3)],
                "b": [fmt(bid, p.price), str(int(bid_qty)), fmt(bid_qty, 3)],
                "c": [fmt(last[0], p.price), fmt(last[1], p.qty)],
                "v": [volume, volume], "p": [fmt(last[0], p.price)] * 2, "t": [len(trades)] * 2,
                "l": [fmt(last[0], p.price)] * 2, "h": [fmt(last[0], p.price)] * 2,
                "o": fmt(last[0], p.price),
            }
        return result

    def _time(self, params: dict[str, str]) -> dict[str, t.Any]:
        now = self.exchange.clock()
        return {"unixtime": int(now), "rfc1123": email.utils.formatdate(now, usegmt=True)}

    def _system_status(self, params: dict[str, str]) -> dict[str, t.Any]:
        return {"status": "online", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    _PUBLIC: t.ClassVar[dict[str, t.Callable[[KrakenEmulator, dict[str, str]], t.Any]]] = {
        "Assets": _assets, "AssetPairs": _asset_pairs, "Depth": _depth, "Ticker": _ticker,
        "Time": _time, "SystemStatus": _system_status,
    }

    # -- private: balances and orders -------------------------------------------------------------

    def _asset_decimals(self, code: str) -> tuple[str, int]:
        asset = self.asset_ids.get(code, code)
        return asset, int(self.assets.get(asset, {}).get("decimals", 8))

    def _balance(self, params: dict[str, str]) -> dict[str, str]:
        out = {}
        for code, balance in self.exchange.balances.items():
            asset, decimals = self._asset_decimals(code)
            out[asset] = exact(balance.total, decimals)
        return out

    def _balance_ex(self, params: dict[str, str]) -> dict[str, dict[str, str]]:
        out = {}
        for code, balance in self.exchange.balances.items():
            asset, decimals = self._asset_decimals(code)
            out[asset] = {"balance": exact(balance.total, decimals),
                          "hold_trade": exact(balance.used, decimals)}
        return out

    def _add_order(self, params: dict[str, str]) -> dict[str, t.Any]:
        pair = self._pairs({"pair": params.get("pair", "")})[0]
        side, ordertype = params.get("type"), params.get("ordertype")
        if side not in ("buy", "sell"):
            raise KrakenError("EGeneral:Invalid arguments:type")
        if ordertype not in ("limit", "market"):
            raise KrakenError("EGeneral:Invalid arguments:ordertype")
        volume = _decimal(params, "volume")
        price = _decimal(params, "price") if ordertype == "limit" else None
        tif = params.get("timeinforce", "GTC")
        if tif not in ("GTC", "IOC"):
            raise KrakenError("EGeneral:Invalid arguments:timeinforce")
        oflags = _fee_flag(params.get("oflags"), side)
        cl_ord_id, userref = params.get("cl_ord_id"), self._userref(params)
        if cl_ord_id is not None and (not valid_cl_ord_id(cl_ord_id) or "userref" in params):
            raise KrakenError("EGeneral:Invalid arguments")
        rules = pair.rules()
        if volume % rules.amount_step:
            raise KrakenError("EGeneral:Invalid arguments:volume")
        if price is not None and price % rules.price_step:
            raise KrakenError(f"EOrder:Invalid price:{pair.altname} price can only be specified up to "
                              f"{pair.pair_decimals} decimals.")
        if volume < rules.min_amount:
            raise KrakenError("EOrder:Order minimum not met")
        if price is not None and volume * price < rules.min_cost:
            raise KrakenError("EOrder:Cost minimum not met")
        deadline = _deadline(params)
        descr = {"order": description(pair, side, ordertype, volume, price)}
        if params.get("validate") in _TRUE:
            return {"descr": descr}
        if deadline is not None and self.exchange.clock() > deadline:
            raise KrakenError(DEADLINE_ERROR)  # reached the matching engine too late
        fee_currency = rules.base if oflags == "fcib" else rules.quote
        order = self.exchange.place_order(pair.symbol, side, ordertype, volume, price,  # type: ignore[arg-type]
                                          "IOC" if ordertype == "market" else tif, cl_ord_id, fee_currency)
        self.tags[order.id] = OrderTags(cl_ord_id, userref or 0, oflags)
        return {"descr": descr, "txid": [order.id]}

    @staticmethod
    def _userref(params: dict[str, str]) -> int | None:
        if "userref" not in params:
            return None
        try:
            value = int(params["userref"])
        except ValueError:
            raise KrakenError("EGeneral:Invalid arguments:userref") from None
        if not -(2**31) <= value < 2**31:
            raise KrakenError("EGeneral:Invalid arguments:userref")
        return value

    def _matching(self, params: dict[str, str], statuses: tuple[str, ...]) -> list[Order]:
        """Orders in ``statuses`` passing the ``userref``/``cl_ord_id``/``start``/``end`` filters,
        newest first."""
        userref, cl_ord_id = self._userref(params), params.get("cl_ord_id")
        start, end = float(params.get("start", 0)), float(params.get("end", "inf"))
        found = []
        for order in reversed(self.exchange.orders.values()):  # in placing order, newest first
            tags = self._tags(order)
            if (order.status in statuses and start < order.ts_ms / 1000 <= end
                    and userref in (None, tags.userref)
                    and (cl_ord_id is None or (order.indexed and cl_ord_id == tags.cl_ord_id))):
                found.append(order)
        return found

    def _open_orders(self, params: dict[str, str]) -> dict[str, t.Any]:
        trades = params.get("trades") in _TRUE
        return {"open": {o.id: self._order(o, trades) for o in self._matching(params, ("open",))}}

    def _closed_orders(self, params: dict[str, str]) -> dict[str, t.Any]:
        trades = params.get("trades") in _TRUE
        orders = self._matching(params, ("closed", "canceled", "expired"))
        return {"closed": {o.id: self._order(o, trades) for o in orders}, "count": len(orders)}

    def _query_orders(self, params: dict[str, str]) -> dict[str, t.Any]:
        if "txid" not in params:
            raise KrakenError("EGeneral:Invalid arguments:txid")
        userref, trades = self._userref(params), params.get("trades") in _TRUE
        result = {}
        for order_id in params["txid"].split(","):
            order = self.exchange.orders.get(order_id)
            if order is None:
                raise KrakenError("EOrder:Invalid order")
            if userref in (None, self._tags(order).userref):
                result[order_id] = self._order(order, trades)
        return result

    def _cancel_order(self, params: dict[str, str]) -> dict[str, t.Any]:
        if "cl_ord_id" in params:
            targets = [o for o in self._matching({"cl_ord_id": params["cl_ord_id"]}, ("open",))]
        elif params.get("txid", "").lstrip("-").isdigit():
            targets = self._matching({"userref": params["txid"]}, ("open",))
        else:
            order = self.exchange.orders.get(params.get("txid", ""))
            targets = [order] if order is not None and order.status == "open" else []
        if not targets:
            raise KrakenError("EOrder:Unknown order")
        for order in targets:
            self.exchange.cancel_order(order.id)
        return {"count": len(targets)}

    def _tags(self, order: Order) -> OrderTags:
        return self.tags.get(order.id, OrderTags(None, 0))

    def _order(self, order: Order, with_trades: bool) -> dict[str, t.Any]:
        return order_record(order, self.pairs[order.symbol], self._tags(order), with_trades)

    def _trade(self, trade: Trade) -> dict[str, t.Any]:
        return trade_record(trade, self.pairs[trade.symbol], self.exchange.orders[trade.order_id].type)

    def _trades_history(self, params: dict[str, str]) -> dict[str, t.Any]:
        """The account's trades after ``start`` up to ``end``, newest first, ``TRADES_PAGE`` of them
        from offset ``ofs``; ``count`` is how many match in all."""
        start, end = float(params.get("start", 0)), float(params.get("end", "inf"))
        try:
            offset = int(params.get("ofs", 0))
        except ValueError:
            raise KrakenError("EGeneral:Invalid arguments:ofs") from None
        trades = [tr for tr in reversed(self.exchange.account_trades()) if start < tr.ts_ms / 1000 <= end]
        page = trades[max(offset, 0):max(offset, 0) + TRADES_PAGE]
        return {"trades": {kraken_id("T", tr.id): self._trade(tr) for tr in page}, "count": len(trades)}

    def _query_trades(self, params: dict[str, str]) -> dict[str, t.Any]:
        by_id = {kraken_id("T", tr.id): tr for tr in self.exchange.trades}
        wanted = params.get("txid", "").split(",")
        if not all(w in by_id for w in wanted):
            raise KrakenError("EGeneral:Invalid arguments:txid")
        return {w: self._trade(by_id[w]) for w in wanted}

    _PRIVATE: t.ClassVar[dict[str, t.Callable[[KrakenEmulator, dict[str, str]], t.Any]]] = {
        "Balance": _balance, "BalanceEx": _balance_ex, "AddOrder": _add_order, "QueryOrders": _query_orders,
        "OpenOrders": _open_orders, "ClosedOrders": _closed_orders, "CancelOrder": _cancel_order,
        "TradesHistory": _trades_history, "QueryTrades": _query_trades,
    }


def default_emulator(keys: dict[str, str]) -> tuple[KrakenEmulator, list[BookFrame]]:
    """An emulator of ccxt's 8 recorded pairs plus the 10 pairs of the cryptofeed recording, and
    that recording's book frames (not fed yet: ``feed``/``replay`` them)."""
    recording = load_recording()
    emulator = KrakenEmulator([*ccxt_pairs(), *recorded_pairs(recording)], keys)
    return emulator, list(recording.frames)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m tests.emulator kraken`` options."""
    parser.add_argument("--key", action="append", default=[], metavar="KEY=SECRET",
                        help="an accepted API key and its base64 secret (repeatable)")
    parser.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                        help="a starting free balance, unified code (BTC=1.5)")
    parser.add_argument("--pace", type=float, default=None,
                        help="replay the recorded books, this many seconds between frames")


def create(args: argparse.Namespace) -> KrakenEmulator:
    keys = dict(item.split("=", 1) for item in args.key)
    emulator, frames = default_emulator(keys)
    for item in args.balance:
        asset, amount = item.split("=", 1)
        emulator.exchange.set_balance(asset, amount)
    if args.pace is not None:
        emulator.autoplay = (frames, args.pace)
    return emulator
