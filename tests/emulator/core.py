"""The exchange-neutral state of a loopback exchange emulator: markets, balances, books, orders.

``EmulatedExchange`` is what a real venue keeps behind its API, with exact ``Decimal`` arithmetic:
one account's balances, one book per market, the orders it received (by venue order id and by the
client order id they carried) and the trades they made. ``place_order`` matches a taker order
against the book, consumes the liquidity it took and tells every book listener, so a protocol's
websocket publishes the changed book. Faults (``Fault``) are queued here and consumed by the
protocol and the server at the points they name. The protocols (``binance.py``, ``kraken.py``)
only translate their wire format to these calls.

Update ids. Each book counts its changes in ``Book.update_id``. A recorded diff keeps its own ids,
shifted by ``Book.offset``: the number of changes the emulator inserted into the recorded sequence
(a fill consuming liquidity, ``set_book``). With no trades a replay carries exactly the recorded
ids; after one fill every later recorded diff is numbered one higher, so the ids stay gapless and
increasing whatever the emulator inserts.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import fnmatch
import itertools
import time
import typing as t
from decimal import ROUND_UP, Decimal

__all__ = [
    "Balance", "Book", "BookDiff", "EmulatedExchange", "Fault", "FaultKind", "MarketRules", "Order",
    "Rejected", "RequestRecord", "Trade", "dec",
]

Number = Decimal | str | int
Side = t.Literal["buy", "sell"]
Levels = c.Iterable[tuple[Number, Number]]
FeeSide = t.Literal["get", "give", "quote", "base"]
OrderStatus = t.Literal["open", "closed", "canceled", "expired"]
FaultKind = t.Literal["status", "timeout", "lost", "delay", "late", "reject", "partial", "unindexed",
                      "fill_on_cancel", "trades_lag", "drop_ws", "gap", "stale"]

HTTP_FAULTS: frozenset[str] = frozenset({"status", "timeout", "lost", "delay", "late"})
"""Faults the server applies to a request whose ``"METHOD /path"`` matches ``Fault.endpoint``."""
ORDER_FAULTS: frozenset[str] = frozenset({"reject", "partial", "unindexed", "fill_on_cancel"})
"""Faults ``place_order`` applies to the next order (of ``Fault.symbol``, when given)."""
STREAM_FAULTS: frozenset[str] = frozenset({"drop_ws", "gap", "stale"})
"""Faults a protocol's websocket applies to the next frame of ``Fault.symbol`` (any when None)."""


def dec(value: Number | float) -> Decimal:
    """``value`` as an exact Decimal (floats through their shortest repr, so ``0.1`` is ``0.1``)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclasses.dataclass
class MarketRules:
    """One market as the venue defines it. ``symbol`` is ccxt's unified symbol (``"BTC/USDT"``),
    ``id`` the venue's own (``"BTCUSDT"``); ``info`` the raw entry the protocol serves (Binance's
    exchangeInfo symbol, Kraken's AssetPairs pair)."""

    symbol: str
    id: str
    base: str
    quote: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal = Decimal(0)
    min_cost: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal("0.001")
    maker_fee: Decimal = Decimal("0.001")
    fee_side: FeeSide = "quote"
    """ccxt's ``feeSide``: ``get`` takes the fee from what the order receives (a buy pays in base,
    a sell in quote: Binance), ``give`` from what it gives, ``quote``/``base`` always that asset."""
    fee_precision: Decimal = Decimal("1e-8")
    """Fees are rounded up to this step (the emulator's choice; Binance shows 8 decimals)."""
    info: dict[str, t.Any] = dataclasses.field(default_factory=dict)

    def fee_currency(self, side: Side) -> str:
        """The asset a ``side`` order pays its fee in under ``fee_side``."""
        if self.fee_side == "get":
            return self.base if side == "buy" else self.quote
        if self.fee_side == "give":
            return self.quote if side == "buy" else self.base
        return self.base if self.fee_side == "base" else self.quote


@dataclasses.dataclass
class Balance:
    """One asset of the account: ``free`` to trade, ``used`` reserved by resting orders."""

    free: Decimal = Decimal(0)
    used: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclasses.dataclass(frozen=True)
class BookDiff:
    """A change of one book, as every book listener receives it.

    ``bids``/``asks`` hold the new quantity of each changed price (``0`` deletes the level).
    ``first_id``..``last_id`` are the update ids it spans (``last_id == Book.update_id`` after it).
    ``own`` is True for a change the emulator made (a fill, ``set_book``), False for a fed one;
    ``snapshot`` True when the book was replaced whole (``load_snapshot``: no diff ids apply).
    ``raw`` is the recorded frame a fed diff came from, for a protocol that replays it verbatim.
    """

    symbol: str
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    first_id: int
    last_id: int
    ts_ms: int
    own: bool = False
    snapshot: bool = False
    raw: t.Any = None


class Book:
    """One market's levels, price -> quantity per side, and its update id (see the module doc)."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.update_id = 0
        self.offset = 0
        """Changes the emulator inserted into the fed sequence; fed ids are shifted by it."""
        self.ts_ms = 0

    def side(self, side: t.Literal["bids", "asks"]) -> dict[Decimal, Decimal]:
        return self.bids if side == "bids" else self.asks

    def levels(self, side: t.Literal["bids", "asks"],
               depth: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """Levels best first: bids descending, asks ascending; at most ``depth`` of them."""
        book = self.side(side)
        prices = sorted(book, reverse=side == "bids")
        if depth is not None:
            prices = prices[:depth]
        return [(price, book[price]) for price in prices]

    def _apply(self, bids: c.Iterable[tuple[Decimal, Decimal]],
               asks: c.Iterable[tuple[Decimal, Decimal]]) -> None:
        for book, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if qty:
                    book[price] = qty
                else:
                    book.pop(price, None)


@dataclasses.dataclass
class Trade:
    """One fill of one of our orders (we are the taker unless ``maker``)."""

    id: int
    order_id: str
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee: Decimal
    fee_currency: str
    ts_ms: int
    maker: bool = False


@dataclasses.dataclass
class Order:
    """An order the venue accepted, with its running state."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    type: t.Literal["limit", "market"]
    time_in_force: str
    amount: Decimal
    price: Decimal | None
    ts_ms: int
    status: OrderStatus = "open"
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    fee_currency: str = ""
    reserved: Decimal = Decimal(0)
    """What a resting order holds in ``Balance.used`` (quote for a buy, base for a sell)."""
    trades: list[Trade] = dataclasses.field(default_factory=list)
    updated_ms: int = 0
    indexed: bool = True
    """False after an ``unindexed`` fault: lookups by client order id do not find it."""
    fills_on_cancel: bool = False
    """A ``fill_on_cancel`` fault's order: its cancel fills it (``cancel_order``)."""

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None


class Rejected(Exception):
    """The venue refused a request. ``reason`` is one of ``duplicate_client_order_id``,
    ``insufficient_funds``, ``invalid_order``, ``unknown_symbol``, ``order_not_found``; each
    protocol maps it to its own error code."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


@dataclasses.dataclass
class Fault:
    """One injected fault, consumed ``times`` times by the requests, orders or frames it matches.

    HTTP faults (matched against ``"METHOD /path"`` by ``endpoint``, an fnmatch pattern; the path
    is the one under the host segment, e.g. ``"POST /api/v3/order"``):

    * ``status``: answer ``status`` (429, 418, 500, 503 ...) with ``Retry-After: retry_after`` when
      given, the protocol's error body (``code``/``message`` override it) and do nothing else;
    * ``timeout``: hold the request ``delay`` seconds (default an hour: longer than any client
      timeout), then drop the connection, without processing it;
    * ``lost``: process the request (the order is placed), then hold ``delay`` seconds and drop
      the connection: the client never learns the answer;
    * ``delay``: hold ``delay`` seconds, then process and answer normally;
    * ``late``: drop the connection at once, and process the request ``delay`` seconds later
      (a request queued on its way: it reaches the venue after the client gave up on it).

    Order faults, applied by ``place_order`` (to an order of ``symbol`` when given):

    * ``reject``: refuse the order with ``Rejected(reason or "insufficient_funds")``;
    * ``partial``: fill at most ``fill`` (base amount) of it, the rest expires (IOC) or rests;
    * ``unindexed``: place it, but lookups by its client order id miss it (``Order.indexed``
      False: a venue whose client-id index lags); by its venue id it is found.
    * ``fill_on_cancel``: a GTC limit order rests unfilled whatever the book, and the counterparty
      arrives with its cancel: the cancel fills the whole rest at the limit price as a maker, then
      is refused (``order_not_found``, the order being closed): "filled while cancelling".

    ``trades_lag``, applied by ``account_trades`` (a protocol listing the account's trades): each
    of the next ``times`` listings leaves out the newest trade (a trade history lagging its orders).

    Stream faults, applied by a protocol's websocket at the next frame of ``symbol`` (any when None):

    * ``drop_ws``: close the websocket instead of sending;
    * ``gap``: do not send this frame (the client's next frame skips an update id);
    * ``stale``: send nothing for ``delay`` seconds (forever when 0), connection kept open.
    """

    kind: FaultKind
    endpoint: str = "*"
    symbol: str | None = None
    times: int = 1
    status: int = 0
    retry_after: float | None = None
    delay: float = 0.0
    reason: str | None = None
    fill: Decimal | None = None
    code: int | str | None = None
    message: str | None = None


@dataclasses.dataclass
class RequestRecord:
    """One request the emulator saw. ``method`` is the HTTP method, or ``WS`` for a websocket
    connection and ``WS<`` for a message received on one; ``status`` 101 for an upgrade."""

    method: str
    path: str
    params: dict[str, str]
    status: int = 0
    ts: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


class EmulatedExchange:
    """One account at one venue: markets, balances, books, orders, trades, faults, request log.

    Not thread-safe; used from the server's event loop. Book listeners are called synchronously
    from the method that changed the book, after the change (they must not change a book).
    """

    def __init__(self, name: str, *, order_ids: c.Callable[[], str] | None = None,
                 clock: c.Callable[[], float] = time.time,
                 client_ids_unique: t.Literal["ever", "open"] = "ever") -> None:
        """:param order_ids: makes venue order ids (default ``"1"``, ``"2"``, ...).
        :param clock: seconds since the epoch (tests may freeze it).
        :param client_ids_unique: ``"ever"`` refuses a client order id any earlier order carried;
            ``"open"`` only one an open order carries (Kraken's ``cl_ord_id`` rule), and the id
            then names the newest order that carried it."""
        self.name = name
        self.client_ids_unique = client_ids_unique
        self.markets: dict[str, MarketRules] = {}
        self.balances: dict[str, Balance] = {}
        self.books: dict[str, Book] = {}
        self.orders: dict[str, Order] = {}
        self.orders_by_client_id: dict[str, Order] = {}
        self.trades: list[Trade] = []
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.clock = clock
        counter = itertools.count(1)
        self._order_ids = order_ids or (lambda: str(next(counter)))
        self._trade_ids = itertools.count(1)
        self._client_ids = itertools.count(1)
        self._book_listeners: list[c.Callable[[BookDiff], None]] = []
        self._fault_listeners: list[c.Callable[[Fault], None]] = []
        self.fee_asset: tuple[str, Decimal] | None = None
        """``pay_fees_in``'s (asset, its price in a market's quote), or None."""

    # -- markets and balances -------------------------------------------------------------------

    def add_market(self, rules: MarketRules) -> None:
        self.markets[rules.symbol] = rules
        self.books.setdefault(rules.symbol, Book(rules.symbol))

    def market(self, symbol: str) -> MarketRules:
        """:raises Rejected: ``unknown_symbol``."""
        try:
            return self.markets[symbol]
        except KeyError:
            raise Rejected("unknown_symbol", f"unknown symbol {symbol}") from None

    def market_by_id(self, market_id: str) -> MarketRules:
        """The market whose venue id is ``market_id``. :raises Rejected: ``unknown_symbol``."""
        for rules in self.markets.values():
            if rules.id == market_id:
                return rules
        raise Rejected("unknown_symbol", f"unknown symbol {market_id}")

    def set_balance(self, asset: str, free: Number, used: Number = 0) -> None:
        self.balances[asset] = Balance(dec(free), dec(used))

    def balance(self, asset: str) -> Balance:
        """The asset's balance (zero for an asset never held; not stored until it changes)."""
        return self.balances.get(asset) or Balance()

    def pay_fees_in(self, asset: str | None, price: Number = 0) -> None:
        """Charge each fill's fee in ``asset`` (Binance's "use BNB for fees"), worth the fee in the
        market's quote at ``price`` quote per unit, rounded up to the fee precision, for as long as
        the free balance of ``asset`` covers it; a fill it does not cover pays as the order would
        (so one order may pay in two currencies). ``None`` turns it off."""
        self.fee_asset = (asset, dec(price)) if asset is not None else None

    def _credit(self, asset: str, amount: Decimal) -> None:
        self.balances.setdefault(asset, Balance()).free += amount

    # -- books ----------------------------------------------------------------------------------

    def book(self, symbol: str) -> Book:
        """:raises Rejected: ``unknown_symbol``."""
        try:
            return self.books[symbol]
        except KeyError:
            raise Rejected("unknown_symbol", f"unknown symbol {symbol}") from None

    def add_book_listener(self, listener: c.Callable[[BookDiff], None]) -> None:
        self._book_listeners.append(listener)

    def remove_book_listener(self, listener: c.Callable[[BookDiff], None]) -> None:
        if listener in self._book_listeners:
            self._book_listeners.remove(listener)

    def _publish(self, diff: BookDiff) -> None:
        for listener in tuple(self._book_listeners):
            listener(diff)

    def load_snapshot(self, symbol: str, bids: Levels, asks: Levels, update_id: int = 0,
                      raw: t.Any = None) -> BookDiff:
        """Replace the book whole, as a fed snapshot (a recording's REST depth): ``update_id`` is
        the snapshot's, the offset restarts at 0. Listeners get a ``snapshot=True`` diff."""
        book = self.book(symbol)
        book.bids = {dec(p): dec(q) for p, q in bids if dec(q)}
        book.asks = {dec(p): dec(q) for p, q in asks if dec(q)}
        book.update_id, book.offset, book.ts_ms = update_id, 0, self.now_ms()
        diff = BookDiff(symbol, tuple(book.levels("bids")), tuple(book.levels("asks")), update_id,
                        update_id, book.ts_ms, snapshot=True, raw=raw)
        self._publish(diff)
        return diff

    def feed_diff(self, symbol: str, bids: Levels, asks: Levels, first_id: int | None = None,
                  last_id: int | None = None, *, ts_ms: int | None = None,
                  raw: t.Any = None) -> BookDiff | None:
        """Apply a fed (recorded) diff and tell the listeners; None when already in the book.

        With ids (Binance's ``U``/``u``) they are shifted by ``Book.offset``; a diff that ends at
        or before ``update_id`` is dropped (it is older than the snapshot), one that overlaps it
        is applied and numbered from ``update_id + 1``. Without ids the diff counts as one update.
        """
        book = self.book(symbol)
        if last_id is None:
            first, last = book.update_id + 1, book.update_id + 1
        else:
            last = last_id + book.offset
            if last <= book.update_id:
                return None
            first = max((first_id if first_id is not None else last_id) + book.offset, book.update_id + 1)
        return self._change(book, _levels(bids), _levels(asks), first, last, own=False, ts_ms=ts_ms, raw=raw)

    def set_book(self, symbol: str, bids: Levels, asks: Levels) -> BookDiff:
        """Make the book exactly ``bids``/``asks`` (a planted scenario), as one own update: the
        listeners get the diff from the old levels (removed ones at quantity 0)."""
        book = self.book(symbol)
        new_bids = {dec(p): dec(q) for p, q in bids if dec(q)}
        new_asks = {dec(p): dec(q) for p, q in asks if dec(q)}
        changes = []
        for old, new in ((book.bids, new_bids), (book.asks, new_asks)):
            gone = [(price, Decimal(0)) for price in old if price not in new]
            changed = [(price, qty) for price, qty in new.items() if old.get(price) != qty]
            changes.append(gone + changed)
        return self._own_change(book, changes[0], changes[1])

    def _own_change(self, book: Book, bids: list[tuple[Decimal, Decimal]],
                    asks: list[tuple[Decimal, Decimal]]) -> BookDiff:
        book.offset += 1
        return self._change(book, bids, asks, book.update_id + 1, book.update_id + 1, own=True)

    def _change(self, book: Book, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]],
                first: int, last: int, *, own: bool, ts_ms: int | None = None, raw: t.Any = None) -> BookDiff:
        book._apply(bids, asks)
        book.update_id, book.ts_ms = last, ts_ms if ts_ms is not None else self.now_ms()
        diff = BookDiff(book.symbol, tuple(bids), tuple(asks), first, last, book.ts_ms, own=own, raw=raw)
        self._publish(diff)
        return diff

    # -- orders ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def new_client_order_id(self) -> str:
        """A client order id for an order that came without one (``emu-1``, ``emu-2``, ...)."""
        return f"emu-{next(self._client_ids)}"

    def order(self, order_id: str | None = None, client_order_id: str | None = None) -> Order:
        """The order by venue id or client id. :raises Rejected: ``order_not_found``."""
        found = (self.orders.get(order_id) if order_id is not None
                 else self.orders_by_client_id.get(client_order_id or ""))
        if found is None:
            raise Rejected("order_not_found", "order does not exist")
        return found

    def place_order(self, symbol: str, side: Side, type: t.Literal["limit", "market"], amount: Number,
                    price: Number | None = None, time_in_force: str = "GTC",
                    client_order_id: str | None = None, fee_currency: str | None = None) -> Order:
        """Accept an order and match it at once against the book, like a taker.

        A limit order takes the levels at or better than ``price``, a market order any level. What
        does not fill: IOC (and market) orders expire, a FOK order that cannot fill whole expires
        without filling (as Binance answers it: accepted, ``EXPIRED``), GTC limit orders rest (their
        funds move to ``used``; they are not shown in the book and fill only through
        ``fill_resting``). Fees follow the market's ``fee_side``, or are charged in
        ``fee_currency`` (the market's base or quote) when given: what the order asked for.

        :raises Rejected: ``duplicate_client_order_id`` (a client id already used, whatever that
            order's state; under ``client_ids_unique="open"`` one an open order carries),
            ``unknown_symbol``, ``invalid_order`` (amount or price off its step, below the
            minimum amount or cost), ``insufficient_funds`` (not enough free quote for a
            buy at its limit price plus a quote fee, or free base for a sell), or an injected
            ``reject`` fault's reason.
        """
        rules = self.market(symbol)
        amount_d = dec(amount)
        price_d = dec(price) if price is not None else None
        earlier = self.orders_by_client_id.get(client_order_id) if client_order_id is not None else None
        if earlier is not None and (self.client_ids_unique == "ever" or earlier.status == "open"):
            raise Rejected("duplicate_client_order_id", "Duplicate order sent.")
        fault = self.take_fault(ORDER_FAULTS, symbol=symbol)
        if fault is not None and fault.kind == "reject":
            raise Rejected(fault.reason or "insufficient_funds", fault.message or "")
        self._validate(rules, amount_d, price_d, type)
        takes = self._crossing(symbol, side, amount_d, price_d)
        rests = fault is not None and fault.kind == "fill_on_cancel" and type == "limit"
        if rests:
            takes = []
        if fault is not None and fault.kind == "partial" and fault.fill is not None:
            takes = _capped(takes, fault.fill)
        time_in_force = time_in_force.upper()
        if time_in_force == "FOK" and sum(q for _, q in takes) < amount_d:
            takes = []  # all or nothing: it expires unfilled
        fee_currency = fee_currency or rules.fee_currency(side)
        self._check_funds(rules, side, amount_d, price_d, takes, fee_currency)
        now = self.now_ms()
        order = Order(self._order_ids(), client_order_id or self.new_client_order_id(), symbol, side, type,
                      time_in_force, amount_d, price_d, now, fee_currency=fee_currency, updated_ms=now,
                      fills_on_cancel=rests)
        self.orders[order.id] = order
        if fault is not None and fault.kind == "unindexed":
            order.indexed = False
        else:
            self.orders_by_client_id[order.client_order_id] = order
        self._take(rules, order, takes)
        if order.remaining == 0:
            order.status = "closed"
        elif type == "limit" and time_in_force == "GTC":
            self._reserve(rules, order)
        else:
            order.status = "expired"
        return order

    def cancel_order(self, order_id: str | None = None, client_order_id: str | None = None) -> Order:
        """Cancel an open order, releasing what it reserved (an order of a ``fill_on_cancel``
        fault fills whole instead, then the cancel is refused).

        :raises Rejected: ``order_not_found`` (unknown, or no longer open: a real venue refuses
            to cancel a closed order)."""
        order = self.order(order_id, client_order_id)
        if order.status == "open" and order.fills_on_cancel:
            self.fill_resting(order.id)
        if order.status != "open":
            raise Rejected("order_not_found", "Unknown order sent.")
        self._release(order)
        order.status, order.updated_ms = "canceled", self.now_ms()
        return order

    def fill_resting(self, order_id: str, amount: Number | None = None) -> Trade:
        """Fill a resting (open) order at its limit price as a maker: the scenario's counterparty
        arrived. ``amount`` defaults to the whole remainder. :raises Rejected: ``order_not_found``."""
        order = self.order(order_id)
        if order.status != "open" or order.price is None:
            raise Rejected("order_not_found", "Unknown order sent.")
        rules = self.market(order.symbol)
        qty = min(dec(amount) if amount is not None else order.remaining, order.remaining)
        self._release(order)
        trade = self._fill(rules, order, order.price, qty, maker=True)
        if order.remaining == 0:
            order.status = "closed"
        else:
            self._reserve(rules, order)
        return trade

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.status == "open" and symbol in (None, o.symbol)]

    def _validate(self, rules: MarketRules, amount: Decimal, price: Decimal | None, type: str) -> None:
        if amount <= 0 or amount % rules.amount_step or amount < rules.min_amount:
            raise Rejected("invalid_order", f"Filter failure: LOT_SIZE (amount {amount})")
        if type == "limit":
            if price is None or price <= 0 or price % rules.price_step:
                raise Rejected("invalid_order", f"Filter failure: PRICE_FILTER (price {price})")
            if amount * price < rules.min_cost:
                raise Rejected("invalid_order", "Filter failure: NOTIONAL")
        elif type != "market":
            raise Rejected("invalid_order", f"unsupported order type {type}")

    def _crossing(self, symbol: str, side: Side, amount: Decimal,
                  price: Decimal | None) -> list[tuple[Decimal, Decimal]]:
        """(price, qty) the order would take from the book, best first."""
        book = self.book(symbol)
        takes, left = [], amount
        for level, qty in book.levels("asks" if side == "buy" else "bids"):
            if left <= 0 or (price is not None and (level > price if side == "buy" else level < price)):
                break
            take = min(qty, left)
            takes.append((level, take))
            left -= take
        return takes

    def _check_funds(self, rules: MarketRules, side: Side, amount: Decimal, price: Decimal | None,
                     takes: list[tuple[Decimal, Decimal]], fee_currency: str) -> None:
        if side == "sell":
            need, asset = amount, rules.base
            if fee_currency == rules.base:
                need += _fee(rules, amount)
        else:
            cost = amount * price if price is not None else sum(p * q for p, q in takes)
            need, asset = cost, rules.quote
            if fee_currency == rules.quote:
                need += _fee(rules, cost)
        if self.balance(asset).free < need:
            raise Rejected("insufficient_funds", "Account has insufficient balance for requested action.")

    def _take(self, rules: MarketRules, order: Order, takes: list[tuple[Decimal, Decimal]]) -> None:
        if not takes:
            return
        book = self.book(order.symbol)
        levels = book.asks if order.side == "buy" else book.bids
        changed = []
        for level, qty in takes:
            self._fill(rules, order, level, qty, maker=False)
            changed.append((level, levels[level] - qty))
        bids, asks = ([], changed) if order.side == "buy" else (changed, [])
        self._own_change(book, bids, asks)

    def _fill(self, rules: MarketRules, order: Order, price: Decimal, qty: Decimal, *, maker: bool) -> Trade:
        cost = price * qty
        fee_currency = order.fee_currency
        fee = _fee(rules, qty if fee_currency == rules.base else cost, maker=maker)
        if self.fee_asset is not None:
            asset, worth = self.fee_asset
            in_asset = _fee(rules, cost / worth, maker=maker)
            if self.balance(asset).free >= in_asset:
                fee_currency, fee = asset, in_asset
        if order.side == "buy":
            self._credit(rules.quote, -cost)
            self._credit(rules.base, qty)
        else:
            self._credit(rules.base, -qty)
            self._credit(rules.quote, cost)
        self._credit(fee_currency, -fee)
        now = self.now_ms()
        trade = Trade(next(self._trade_ids), order.id, order.symbol, order.side, price, qty, cost, fee,
                      fee_currency, now, maker)
        order.filled += qty
        order.cost += cost
        if fee_currency == order.fee_currency:  # the order's fee is in its own currency only
            order.fee += fee
        order.trades.append(trade)
        order.updated_ms = now
        self.trades.append(trade)
        return trade

    def _reserve(self, rules: MarketRules, order: Order) -> None:
        assert order.price is not None
        if order.side == "buy":
            asset, held = rules.quote, order.remaining * order.price
            if order.fee_currency == rules.quote:
                held += _fee(rules, held)
        else:
            asset, held = rules.base, order.remaining
        balance = self.balances.setdefault(asset, Balance())
        balance.free -= held
        balance.used += held
        order.reserved = held

    def _release(self, order: Order) -> None:
        if order.reserved:
            rules = self.market(order.symbol)
            balance = self.balances[rules.quote if order.side == "buy" else rules.base]
            balance.free += order.reserved
            balance.used -= order.reserved
            order.reserved = Decimal(0)

    def account_trades(self) -> list[Trade]:
        """The account's trades, oldest first, as a trade-history endpoint lists them (less the
        newest one under a ``trades_lag`` fault)."""
        if self.trades and self.take_fault(("trades_lag",)) is not None:
            return self.trades[:-1]
        return list(self.trades)

    # -- faults and the request log -------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults (first queued, first used) and tell the fault listeners (a protocol drops
        its websockets at once for a ``drop_ws`` rather than waiting for the next frame)."""
        for fault in faults:
            self.faults.append(fault)
            for listener in tuple(self._fault_listeners):
                listener(fault)

    def add_fault_listener(self, listener: c.Callable[[Fault], None]) -> None:
        self._fault_listeners.append(listener)

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, kinds: c.Container[str], *, endpoint: str | None = None,
                   symbol: str | None = None) -> Fault | None:
        """Consume one use of the first queued fault of one of ``kinds`` that matches.

        ``endpoint`` (``"METHOD /path"``) is matched against ``Fault.endpoint``; a fault with a
        ``symbol`` matches only that symbol. The fault leaves the queue after ``times`` uses.
        """
        for fault in self.faults:
            if fault.kind not in kinds:
                continue
            if endpoint is not None and not fnmatch.fnmatchcase(endpoint, fault.endpoint):
                continue
            if fault.symbol is not None and fault.symbol != symbol:
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    def log_request(self, method: str, path: str, params: c.Mapping[str, str]) -> RequestRecord:
        """Append a request to the log (the server sets its ``status`` when it answers)."""
        record = RequestRecord(method, path, dict(params), ts=self.clock())
        self.requests.append(record)
        return record

    def endpoints(self) -> list[str]:
        """``"METHOD /path"`` of every request so far, in order (websocket messages excluded)."""
        return [r.endpoint for r in self.requests if r.method != "WS<"]

    def request_log(self) -> str:
        """The request log, one line a request, for a failing test to print."""
        return "\n".join(f"{r.status or '---'} {r.method} {r.path} {r.params}" for r in self.requests)


def _levels(levels: Levels) -> list[tuple[Decimal, Decimal]]:
    return [(dec(p), dec(q)) for p, q in levels]


def _fee(rules: MarketRules, charged_on: Decimal, *, maker: bool = False) -> Decimal:
    fee = charged_on * (rules.maker_fee if maker else rules.taker_fee)
    return fee.quantize(rules.fee_precision, rounding=ROUND_UP) if fee % rules.fee_precision else fee


def _capped(takes: list[tuple[Decimal, Decimal]], cap: Decimal) -> list[tuple[Decimal, Decimal]]:
    out, left = [], dec(cap)
    for price, qty in takes:
        if left <= 0:
            break
        out.append((price, min(qty, left)))
        left -= min(qty, left)
    return out
