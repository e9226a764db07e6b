"""Live venue: real orders on an exchange through ccxt's async client, behind the ``Venue`` interface.

An order is a limit order with our client order id (``params={'clientOrderId': ...}``: ccxt sends
Binance ``newClientOrderId``, Kraken ``cl_ord_id``), immediate-or-cancel where the exchange's
``features`` say it has IOC, else a plain limit order cancelled ``cancel_after_s`` after it was
placed. The amount goes through ccxt's ``amount_to_precision`` (truncated); the limit price is put on
the market's price grid towards the book first (``book.round_price``: a buy's limit down, a sell's
up, so an order never pays more or sells for less than asked; ccxt's ``price_to_precision`` rounds
to the nearest tick and its ``decimal_to_precision`` has no rounding up), then formatted by
``price_to_precision``. The order's request budget is taken before it is stamped: its deadline
(Kraken's ``deadline``, Binance's ``recvWindow`` with the request's ``timestamp``) and the
not-found window below count from one instant, after any rate-limit hold.

Its final state and fills come from the exchange over REST: the create reply when it holds them
(Binance's ``FULL`` reply with ``fills``), else ``fetch_order`` by the venue's id (Kraken's reply
holds only the txid), and the account's trades (``fetch_my_trades``, matched by order id) where
the order does not list its fills; the fee and its currency are ccxt's parsed ``fee`` of each
trade (Binance's ``commissionAsset``: a buy pays in the base it receives; Kraken orders carry
``oflags=fciq``, fee in quote, since ccxt labels every Kraken trade's fee quote while Kraken's own
default charges a sell in base).

Errors are classified by ccxt's exception classes:

* ``DuplicateOrderId`` (an ``InvalidOrder``), and the answers that say the same which ccxt maps
  to a plain ``InvalidOrder`` (Binance's ``-2010 "Duplicate order sent."``, ``_DUPLICATES``): the
  venue already has an order with our client id; its fate is the venue's to tell: looked up as
  below, never sent again, never "not placed";
* the venue refused the request (``InsufficientFunds``, ``InvalidOrder``, ``BadRequest`` /
  ``BadSymbol``, ``AuthenticationError``, ``OperationRejected``, ``NotSupported``,
  ``InvalidNonce``): the order was not placed; ``rejected`` with the reason, never retried;
* anything else on a submission (``RequestTimeout``, ``NetworkError``, ``ExchangeNotAvailable``,
  ``RateLimitExceeded``/``DDoSProtection`` -- Kraken's HTTP 200 ``EAPI:Rate limit exceeded`` --, a
  garbled reply, an error ccxt cannot classify): the order's fate is *unknown*. It is never sent
  again and never called rejected without the venue's word: it is looked up by client order id
  (``_find``) with ``lookup_retries`` attempts and exponential backoff with jitter (tenacity). An
  order found open is cancelled and read again (it may have filled while cancelling). An order the
  venue does not have counts as not placed (``rejected``, reason ``not placed: ...``) only once
  it is still missing ``not_found_after_s`` after it was sent (a request in flight may still
  arrive) -- and never once the venue gave the order an id (its create reply came back, the
  reads after it failed): such an order is also looked up by that id (``fetch_order(id,
  symbol)``), and if still missing it is ``unknown``. If the lookups themselves keep failing,
  ``submit`` answers ``unknown``: the executor then halts trading on this venue and asks
  ``resolve`` until the venue knows.

Looking an order up by client order id: ``fetch_order(None, symbol, {'clientOrderId': id})``
where ccxt sends it as the exchange's client id (Binance ``origClientOrderId``); on Kraken, whose
ccxt ``fetch_order`` sends ``clientOrderId`` as the integer ``userref``, ``fetch_open_orders`` then
``fetch_closed_orders`` with the ``clientOrderId`` filter (``cl_ord_id``); then, everywhere, the
symbol's open orders searched for the id; then the venue's id when the venue gave one; then the
account's trades of the symbol since the order was sent (``fetch_my_trades``, from
``_TRADES_WINDOW_MS`` before): trades carry the venue's order id, not ours, so each order they name
on our side, at our limit price (within one price step) or better and no larger than ours, whose
venue id we do not know already is fetched by that id (``fetch_order``; at most ``_TRADES_LOOKUPS``
per lookup, nearest in time to the submission first) and its client order id compared with ours:
a filled order a lagging client-id index misses is found this way. Every request goes through the
exchange's request budget. Only when all of these miss do the not-found rules above apply.

Balances are the exchange's free amounts (``fetch_balance``), read at start, after every
arbitrage, on a timer (``refresh``) and after an ``InsufficientFunds`` refusal; between two reads
each fill moves them by the executor's own rule (``venue.order_deltas``: a fee in a third currency,
Binance's BNB, from that currency), so the risk gate never counts on money already spent. An
order's ``fee`` is what it paid in the market's fee currency; fills charged in another currency
keep their fee and currency in ``fills``, never added to that number.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import datetime
import math
import re
import typing as t
from collections import defaultdict

import ccxt.async_support as ccxt
import tenacity

from arbitrage.book import EPS, round_price
from arbitrage.clock import Clock
from arbitrage.events import Market
from arbitrage.exchanges.client import NONCE_ORDERED
from arbitrage.plugin import RequestBudget
from arbitrage.redact import redact_line
from arbitrage.settings import LiveSettings
from arbitrage.trading.ids import is_ours
from arbitrage.trading.trades import order_trades
from arbitrage.trading.venue import (
    FILL_TOLERANCE,
    OrderRequest,
    OrderResult,
    Venue,
    VenueFill,
    order_deltas,
)

__all__ = ["REFUSALS", "LiveVenue", "duplicate", "refused", "supports_ioc"]

REFUSALS: tuple[type[Exception], ...] = (
    ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest, ccxt.AuthenticationError,
    ccxt.OperationRejected, ccxt.NotSupported, ccxt.InvalidNonce,
)
"""Errors that are the venue's word that a request was refused (ccxt raises ``BadSymbol`` and
``PermissionDenied`` as subclasses). ``ChecksumError`` is an ``InvalidNonce`` of order books only."""

_OPEN_READS = 3
"""Reads of an order still ``open`` after an IOC submission before it is cancelled."""
_MAX_BACKOFF_S = 4.0
_TRADES_READS = 3
"""Reads of the account's trades (backing off) before an order whose trades do not add up to its
``filled`` is booked as one fill at its average price."""
_TRADES_WINDOW_MS = 300_000
"""How far before the submission the account's trades are read (clock skew between us and the venue)."""
_TRADES_LOOKUPS = 5
"""Orders fetched by venue id at most per lookup when searching the account's trades for an order
the client-id lookups miss (``_find_in_trades``): the nearest in time to the submission first."""
_LOOKUP_BY_ORDERS = frozenset({"kraken"})
"""Exchanges whose ccxt ``fetch_order`` cannot look an order up by client id: searched through
``fetch_open_orders``/``fetch_closed_orders`` with the ``clientOrderId`` filter instead."""

_FEE_PARAMS: dict[str, dict[str, str]] = {"kraken": {"oflags": "fciq"}}
"""Order parameters that make the venue charge the fee where ``Market.fee_side`` says. Kraken
charges a sell in base by default (``fcib``) while ccxt's ``parse_trade`` labels every Kraken fee
quote: ``fciq`` makes every Kraken fee quote, as its markets' ``fee_side`` and ccxt's trades say."""

_CLIENT_ID_PARAM: dict[str, str] = {"coinbase": "client_order_id"}
"""The order parameter that carries our client order id where ccxt's unified ``clientOrderId`` does
not reach the exchange: ccxt 4.5.90's coinbase ``create_order`` drops it and posts its own
``ccxt-<uuid>``, but passes ``client_order_id`` through."""

_DUPLICATES: dict[str, str] = {"binance": "Duplicate order sent."}
"""The message by which an exchange says it has an order with this client id already, where ccxt
4.5.90 raises a plain ``InvalidOrder`` for it (Binance's code ``-2010``, NEW_ORDER_REJECTED, is
mapped to ``InvalidOrder`` whatever its message; ``"Duplicate order sent."`` is in no table)."""

CcxtOrder = dict[str, t.Any]


def refused(exc: BaseException) -> bool:
    """True if ``exc`` says the venue refused the request (the order was not placed).
    ``DuplicateOrderId`` (an ``InvalidOrder``) is not one: the venue has an order with that
    client id already, whose fate only the venue can tell."""
    return isinstance(exc, REFUSALS) and not isinstance(exc, ccxt.ChecksumError | ccxt.DuplicateOrderId)


def duplicate(exc: BaseException, exchange_id: str) -> bool:
    """True if ``exc`` says the venue holds an order with our client id already (ccxt's
    ``DuplicateOrderId``, or an ``InvalidOrder`` carrying the exchange's duplicate message)."""
    if isinstance(exc, ccxt.DuplicateOrderId):
        return True
    message = _DUPLICATES.get(exchange_id)
    return isinstance(exc, ccxt.InvalidOrder) and message is not None and message in str(exc)


def supports_ioc(exchange: t.Any) -> bool:
    """Whether ccxt says the exchange takes immediate-or-cancel limit orders on spot markets."""
    features = (exchange.features or {}).get("spot") or {}
    create = features.get("createOrder") or {}
    return bool((create.get("timeInForce") or {}).get("IOC"))


class _NotFoundYet(Exception):
    """The venue does not have the order (yet): ask again until ``not_found_after_s``."""


class _LookupFailed(Exception):
    """A lookup itself failed (network, rate limit): ask again, at most ``lookup_retries`` times."""


class LiveVenue(Venue):
    """One exchange account, traded for real through a ccxt ``async_support`` instance.

    :param exchange: the ccxt instance, keys set (``arbitrage.exchanges.create_exchange``); its
        markets are loaded by ``start``. The venue closes it in ``close``.
    :param markets: our view of the markets (``MarketsLoaded``), for minimums and accounting.
    :param budget: the exchange's request budget, or None (no pacing beyond ccxt's own).
    """

    knows_abandoned = False


    def __init__(self, name: str, exchange: t.Any, *, clock: Clock, markets: c.Iterable[Market],
                 settings: LiveSettings, log: t.Any, budget: RequestBudget | None = None) -> None:
        self.name = name
        self.exchange = exchange
        self._clock = clock
        self._settings = settings
        self._log = log.bind(venue=name)
        self._budget = budget
        self._markets: dict[str, Market] = {}
        self.update_markets(markets)
        self._balances: dict[str, float] = {}
        self._ioc = supports_ioc(exchange)
        self._one_by_one = asyncio.Lock() if exchange.id in NONCE_ORDERED else None
        """Held by each private request where nonces must arrive in order (``NONCE_ORDERED``)."""
        self._by_orders = exchange.id in _LOOKUP_BY_ORDERS
        self._sent: dict[str, int] = {}
        """client order id -> when it was sent (ns), for the not-found window and trade reads."""
        self._venue_ids: dict[str, str] = {}
        """client order id -> the venue's id of it ("" when unknown), once the venue said it has the
        order (a create reply with its id, a ``DuplicateOrderId``): such an order was placed."""
        self._symbols: set[str] = set()
        """Symbols we sent orders on: where ``cancel_all`` looks for open orders of ours."""
        self._earlier: set[str] = set()
        """Orders an earlier process sent (``lookup``): their fills are in the balances read since."""

    # -- life cycle and balances ----------------------------------------------------------------

    async def start(self) -> None:
        """Load the exchange's markets (precision) unless loaded already, and read the balances.

        :raises ccxt.BaseError: if the exchange cannot be reached or refuses the keys.
        """
        if not self.exchange.markets:
            await self._call("data", self.exchange.load_markets)
        await self.refresh()

    async def close(self) -> None:
        await self.exchange.close()

    def update_markets(self, markets: c.Iterable[Market], staleness_ms: float = 0.0) -> None:
        """Add or replace markets (``staleness_ms`` is the paper venue's concern, not ours)."""
        for market in markets:
            self._markets[market.symbol] = market

    @property
    def markets(self) -> c.Mapping[str, Market]:
        return self._markets

    def balances(self) -> dict[str, float]:
        return dict(self._balances)

    async def refresh(self) -> bool:
        """Read the free balances from the exchange. :raises ccxt.BaseError: when the read fails."""
        balance = await self._call("data", self.exchange.fetch_balance)
        self._balances = {asset: float(v) for asset, v in (balance.get("free") or {}).items()
                          if v is not None and math.isfinite(float(v))}
        return True

    async def _reread_balances(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            self._log.warning("{}: could not read balances ({}: {})", self.name, type(exc).__name__,
                              _short(exc))

    async def open_orders(self, symbol: str) -> list[CcxtOrder]:
        """The account's open orders on ``symbol`` (ccxt's unified orders), through the venue's
        budget and, where nonces must arrive in order, one request at a time."""
        return t.cast(list[CcxtOrder], await self._call("data", self.exchange.fetch_open_orders, symbol))

    async def cancel_venue_order(self, venue_order_id: str, symbol: str) -> None:
        """Cancel the venue's order ``venue_order_id``; one that ended meanwhile is no error."""
        with contextlib.suppress(ccxt.OrderNotFound):
            await self._call("order", self.exchange.cancel_order, venue_order_id, symbol)

    async def cancel_all(self) -> None:
        """Cancel every open order of ours (client id made by ``trading.ids``) on the symbols this
        venue sent orders on; other orders of the account are left alone."""
        for symbol in sorted(self._symbols):
            for order in await self.open_orders(symbol):
                if is_ours(order.get("clientOrderId")):
                    await self.cancel_venue_order(order["id"], symbol)
                    self._log.warning("cancelled open order {} on {}", order.get("clientOrderId"), self.name)

    # -- orders ---------------------------------------------------------------------------------

    async def submit(self, order: OrderRequest) -> OrderResult:
        """Send ``order`` and return its final state (module doc); ``unknown`` only when the lookups
        after a lost answer could not find out. Never sends the same client order id twice."""
        if order.client_order_id in self._sent:
            raise RuntimeError(f"order {order.client_order_id} was already sent")  # the executor's bug
        market = self._markets.get(order.symbol)
        if market is None or order.symbol not in (self.exchange.markets or {}):
            return self._rejected(order, "unknown market")
        try:
            amount = float(self.exchange.amount_to_precision(order.symbol, order.amount))
            limit = round_price(order.price, market.price_step, up=order.side == "sell")
            price = float(self.exchange.price_to_precision(order.symbol, limit))
        except ccxt.BaseError as exc:
            return self._rejected(order, f"precision: {_short(exc)}")
        if amount <= EPS or amount < market.min_amount - EPS:
            return self._rejected(order, "amount below market minimum")
        if amount * price < market.min_cost - EPS:
            return self._rejected(order, "cost below market minimum")
        id_param = _CLIENT_ID_PARAM.get(self.exchange.id, "clientOrderId")
        params: dict[str, t.Any] = {id_param: order.client_order_id}
        if self._ioc:
            params["timeInForce"] = "IOC"
        params.update(_FEE_PARAMS.get(self.exchange.id, {}))
        self._sent[order.client_order_id] = self._clock.time_ns()  # taken: never sent twice
        self._symbols.add(order.symbol)
        try:
            if self._budget is not None:  # first: a long hold must not eat into the venue's deadline
                await self._budget.acquire("order")
            async with self._private():
                now = self._clock.time_ns()  # the one instant both the deadline and our window count from
                self._sent[order.client_order_id] = now
                params.update(_deadline(self.exchange, now, self._settings.order_deadline_s))
                reply = await self.exchange.create_order(order.symbol, "limit", order.side, amount, price,
                                                         params)
        except Exception as exc:
            if isinstance(exc, ccxt.DDoSProtection) and self._budget is not None:
                self._budget.hold(_retry_after(self.exchange))  # the lookups wait for it too
            if duplicate(exc, self.exchange.id):  # the venue has an order with this id: find it
                self._venue_ids.setdefault(order.client_order_id, "")
                self._log.warning("{}: order {} is a duplicate to the venue ({}); looking it up", self.name,
                                  order.client_order_id, _short(exc))
                return await self._recover(order, "duplicate client order id on submit")
            if refused(exc):
                if isinstance(exc, ccxt.InsufficientFunds):
                    await self._reread_balances()  # ours were wrong: plan nothing more on them
                return self._rejected(order, f"{type(exc).__name__}: {_short(exc)}", amount)
            self._log.warning("{}: no answer to order {} ({}: {}); looking it up by client order id",
                              self.name, order.client_order_id, type(exc).__name__, _short(exc))
            return await self._recover(order, f"{type(exc).__name__} on submit")
        if reply.get("id") is not None:
            self._venue_ids[order.client_order_id] = str(reply["id"])
        try:
            if not self._ioc and reply.get("status") in (None, "open"):
                await self._clock.sleep(self._settings.cancel_after_s)
                return await self._settle(order, reply, cancel=True)
            return await self._settle(order, reply)
        except Exception as exc:  # placed, but its state could not be read: find it by either id
            self._log.warning("{}: reading order {} ({}) failed ({}); looking it up", self.name,
                              order.client_order_id, self._venue_ids.get(order.client_order_id),
                              type(exc).__name__)
            return await self._recover(order, f"{type(exc).__name__} reading the order")

    async def resolve(self, order: OrderRequest) -> OrderResult:
        """One more lookup of an order of unknown fate (no retries: the executor paces them)."""
        try:
            return await self._lookup(order)
        except (_NotFoundYet, _LookupFailed) as exc:
            return self._unknown(order, str(exc))

    async def lookup(self, order: OrderRequest, sent_ns: int) -> OrderResult:
        """``resolve`` for an order an earlier process sent at ``sent_ns`` (its journal's
        ``ts_submitted``; start-up reconciliation): the not-found window counts from then, and the
        order can never be sent from this venue."""
        self._sent.setdefault(order.client_order_id, sent_ns)
        self._symbols.add(order.symbol)
        self._earlier.add(order.client_order_id)
        return await self.resolve(order)

    async def _recover(self, order: OrderRequest, why: str) -> OrderResult:
        """Look a sent order up until the venue knows (bounded retries), else answer ``unknown``."""
        s = self._settings
        retries = s.lookup_retries

        def stop(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome is not None else None
            return not isinstance(exc, _NotFoundYet) and state.attempt_number > retries

        await self._clock.sleep(s.lookup_backoff_s)
        retrying = tenacity.AsyncRetrying(
            stop=stop, sleep=self._clock.sleep, reraise=True,
            wait=tenacity.wait_exponential(multiplier=s.lookup_backoff_s, max=_MAX_BACKOFF_S)
            + tenacity.wait_random(0, s.lookup_backoff_s),
            retry=tenacity.retry_if_exception_type((_NotFoundYet, _LookupFailed)))
        try:
            return t.cast(OrderResult, await retrying(self._lookup, order))
        except _LookupFailed as exc:
            return self._unknown(order, f"{why}; lookups failed: {exc}")

    async def _lookup(self, order: OrderRequest) -> OrderResult:
        """The order's final state from the venue, found by client order id (and by the venue's id
        when the venue gave one). An order the venue gave an id for was placed: missing, it is
        ``unknown``, never "not placed".

        :raises _NotFoundYet: the venue does not have it, within ``not_found_after_s`` of sending.
        :raises _LookupFailed: the lookup itself failed.
        """
        try:
            found = await self._find(order)
            if found is not None:
                return await self._settle(order, found)
        except Exception as exc:
            if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded) and self._budget is not None:
                self._budget.hold(_retry_after(self.exchange))  # the next lookup waits what it asked
            raise _LookupFailed(f"{type(exc).__name__}: {_short(exc)}") from exc
        sent = self._sent.get(order.client_order_id, 0)
        waited = (self._clock.time_ns() - sent) / 1e9
        if waited < self._settings.not_found_after_s:
            raise _NotFoundYet(f"not found {waited:.3g} s after sending")
        venue_id = self._venue_ids.get(order.client_order_id)
        if venue_id is not None:  # the venue said it has it: its fate is unknown, not "not placed"
            self._log.warning("{}: order {} ({}) not found {:.3g} s after sending, though the venue "
                              "said it has it: fate unknown", self.name, order.client_order_id,
                              venue_id or "no venue id", waited)
            return self._unknown(order, f"{self.name} said it has order {order.client_order_id} "
                                        f"({venue_id or 'a duplicate'}) but does not find it {waited:.3g} s "
                                        "after it was sent", venue_id)
        self._log.warning("{}: order {} not found {:.3g} s after sending: not placed", self.name,
                          order.client_order_id, waited)
        return self._rejected(order, f"not placed: {self.name} has no order {order.client_order_id} "
                                     f"{waited:.3g} s after it was sent")

    async def _find(self, order: OrderRequest) -> CcxtOrder | None:
        """The venue's order carrying our client id, or None if the venue does not have it."""
        cid, symbol = order.client_order_id, order.symbol
        by_id = {"clientOrderId": cid}
        if self._by_orders:
            for method in (self.exchange.fetch_open_orders, self.exchange.fetch_closed_orders):
                found = [o for o in await self._call("data", method, symbol, None, None, by_id)
                         if o.get("clientOrderId") == cid]
                if found:
                    return found[0]
        else:
            with contextlib.suppress(ccxt.OrderNotFound):
                return t.cast(CcxtOrder, await self._call("data", self.exchange.fetch_order, None, symbol,
                                                          by_id))
        for o in await self._call("data", self.exchange.fetch_open_orders, symbol):
            if o.get("clientOrderId") == cid:
                return t.cast(CcxtOrder, o)
        venue_id = self._venue_ids.get(cid)
        if venue_id:  # a venue whose client-id lookups lag still knows its own id
            with contextlib.suppress(ccxt.OrderNotFound):
                found = await self._call("data", self.exchange.fetch_order, venue_id, symbol)
                return t.cast(CcxtOrder, found)
        return await self._find_in_trades(order)

    async def _find_in_trades(self, order: OrderRequest) -> CcxtOrder | None:
        """The order found through the account's trades of its symbol since it was sent: a filled
        order a lagging client-id index misses (closed, so not among the open orders) still left
        trades, whose venue order id leads to the order and its client id. Only trades that can be
        ours (our side, limit, at most our amount), of orders whose venue id we do not know; at most
        ``_TRADES_LOOKUPS`` orders are fetched, nearest in time to the submission first. Found, the
        order carries those trades (its fills, as ``_fills`` reads)."""
        cid, symbol = order.client_order_id, order.symbol
        sent_ms = self._sent.get(cid, self._clock.time_ns()) // 1_000_000
        trades = await self._call("data", self.exchange.fetch_my_trades, symbol, sent_ms - _TRADES_WINDOW_MS)
        known = set(self._venue_ids.values())
        sign = 1.0 if order.side == "buy" else -1.0  # our trades are at our limit price or better
        slack = self._markets[symbol].price_step + EPS * order.price  # the limit sent was rounded
        by_order: dict[str, list[CcxtOrder]] = defaultdict(list)
        for tr in trades:
            if (tr.get("order") and str(tr["order"]) not in known and tr.get("side") in (None, order.side)
                    and sign * (float(tr.get("price") or 0.0) - order.price) <= slack
                    and float(tr.get("amount") or 0.0) <= order.amount * (1.0 + FILL_TOLERANCE)):
                by_order[str(tr["order"])].append(tr)
        nearest = sorted(by_order, key=lambda oid: min(abs((tr.get("timestamp") or 0) - sent_ms)
                                                       for tr in by_order[oid]))
        for venue_id in nearest[:_TRADES_LOOKUPS]:
            with contextlib.suppress(ccxt.OrderNotFound):
                found = await self._call("data", self.exchange.fetch_order, venue_id, symbol)
                if found.get("clientOrderId") == cid:
                    self._log.info("{}: order {} found through its trades as {}", self.name, cid, venue_id)
                    return t.cast(CcxtOrder, {**found, "trades": by_order[venue_id]})
        return None

    async def _settle(self, order: OrderRequest, found: CcxtOrder, *, cancel: bool = False) -> OrderResult:
        """Bring a placed order to its final state (read again while open; cancel it if it stays
        open, or at once with ``cancel``; read again after cancelling: it may have filled
        meanwhile) and turn it into an ``OrderResult`` with its fills."""
        venue_id = str(found["id"])
        reads = _OPEN_READS if cancel else 0
        while found.get("status") in (None, "open") or (found.get("filled") is None):
            if reads >= _OPEN_READS:
                with contextlib.suppress(ccxt.OrderNotFound):  # it ended meanwhile: the read says how
                    await self._call("order", self.exchange.cancel_order, venue_id, order.symbol)
                found = await self._call("data", self.exchange.fetch_order, venue_id, order.symbol)
                if found.get("status") in (None, "open"):
                    return self._unknown(order, "still open after cancelling", venue_id)
                break
            if reads:
                await self._clock.sleep(self._settings.lookup_backoff_s * 2 ** (reads - 1))
            reads += 1
            found = await self._call("data", self.exchange.fetch_order, venue_id, order.symbol)
        return await self._result(order, found)

    async def _result(self, order: OrderRequest, found: CcxtOrder) -> OrderResult:
        market = self._markets[order.symbol]
        venue_id = str(found["id"])
        amount = float(found.get("amount") or order.amount)
        filled = float(found.get("filled") or 0.0)
        now = self._clock.time_ns()
        fills = await self._fills(order, found, market, filled) if filled > 0 else []
        notional = sum(f.price * f.amount for f in fills)
        fees: dict[str, float] = defaultdict(float)
        for f in fills:
            fees[f.fee_currency] += f.fee
        fee_currency = _main_fee_currency(fees, market, order.side)
        if len(fees) > 1:  # e.g. BNB until the account's BNB ran out: each stays in its currency
            self._log.info("{}: order {} paid fees in several currencies {}", self.name,
                           order.client_order_id, dict(fees))
        status = found.get("status")
        if status == "rejected":
            result_status: t.Literal["filled", "partially_filled", "canceled", "rejected"] = "rejected"
        elif filled >= amount * (1.0 - FILL_TOLERANCE) and filled > 0:
            result_status = "filled"
        elif filled > 0:
            result_status = "partially_filled"
        else:
            result_status = "canceled"
        reason = "" if result_status == "filled" else (
            f"venue status {status}" if result_status == "rejected" else "rest expired (IOC)"
            if self._ioc else "rest cancelled")
        result = OrderResult(
            client_order_id=order.client_order_id, status=result_status, amount=amount, filled=filled,
            notional=notional, average_price=notional / filled if filled else 0.0,
            fee=fees.get(fee_currency, 0.0), fee_currency=fee_currency, fills=tuple(fills), reason=reason,
            ts_event=int(found.get("lastUpdateTimestamp") or found.get("timestamp") or 0) * 1_000_000 or now,
            venue_order_id=venue_id)
        if filled > 0 and order.client_order_id not in self._earlier:
            for asset, delta in order_deltas(order.side, market, result).items():
                self._balances[asset] = self._balances.get(asset, 0.0) + delta
        return result

    async def _fills(self, order: OrderRequest, found: CcxtOrder, market: Market,
                     filled: float) -> list[VenueFill]:
        """The order's executions: its own ``trades`` when they carry amounts, else the account's
        trades of that order, read up to ``_TRADES_READS`` times (a trade history may lag the
        order); only if they still do not add up, one fill at the average price (fee from the
        order: ccxt's ``average`` is rounded to the venue's decimals, so the notional is approximate)."""
        trades = [tr for tr in found.get("trades") or [] if tr.get("amount")]
        sent = self._sent.get(order.client_order_id, self._clock.time_ns())
        since = sent // 1_000_000 - _TRADES_WINDOW_MS
        for read in range(_TRADES_READS):
            if _adds_up(trades, filled):
                break
            if read:
                self._log.info("{}: trades of order {} do not add up to {:.10g} yet; reading them again",
                               self.name, order.client_order_id, filled)
                await self._clock.sleep(self._settings.lookup_backoff_s * 2 ** (read - 1))
            trades = await order_trades(self.exchange.id, lambda *a: self._call(
                "data", self.exchange.fetch_my_trades, *a), order.symbol, since, str(found["id"]),
                lambda got: _adds_up(got, filled))
        # Binance's order reply lists its fills without a time: they happened when the order did
        when = int(found.get("timestamp") or 0) * 1_000_000 or self._clock.time_ns()
        if _adds_up(trades, filled):
            return [_fill(tr, market, when) for tr in trades]
        self._log.warning("{}: trades of order {} do not add up to {:.10g} after {} reads; booked as one "
                          "fill at the order's average price {} (rounded by the venue)", self.name,
                          order.client_order_id, filled, _TRADES_READS, found.get("average"))
        fee = found.get("fee") or {}
        average = float(found.get("average") or (float(found.get("cost") or 0.0) / filled))
        return [VenueFill(price=average, amount=filled, fee=float(fee.get("cost") or 0.0),
                          fee_currency=fee.get("currency") or market.quote,
                          ts_event=when, trade_id=f"order:{found['id']}")]  # one per order

    async def _call(self, kind: t.Literal["order", "data"], method: c.Callable[..., t.Awaitable[t.Any]],
                    *args: t.Any) -> t.Any:
        if self._budget is not None:
            await self._budget.acquire(kind)
        async with self._private():
            return await method(*args)

    def _private(self) -> t.AsyncContextManager[t.Any]:
        """One private request at a time where the exchange needs its nonces in order."""
        return self._one_by_one if self._one_by_one is not None else contextlib.nullcontext()

    def _rejected(self, order: OrderRequest, reason: str, amount: float = 0.0) -> OrderResult:
        return OrderResult(client_order_id=order.client_order_id, status="rejected", amount=amount,
                           reason=reason, ts_event=self._clock.time_ns())

    def _unknown(self, order: OrderRequest, reason: str, venue_id: str = "") -> OrderResult:
        return OrderResult(client_order_id=order.client_order_id, status="unknown", reason=reason,
                           ts_event=self._clock.time_ns(),
                           venue_order_id=venue_id or self._venue_ids.get(order.client_order_id, ""))


def _retry_after(exchange: t.Any, default_s: float = 1.0) -> float:
    """Seconds the exchange asked us to wait (``Retry-After`` of its last reply), else ``default_s``."""
    headers = exchange.last_response_headers or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return min(max(float(value), 0.0), 60.0) if value is not None else default_s
    except ValueError:
        return default_s


def _deadline(exchange: t.Any, now_ns: int, deadline_s: float) -> dict[str, t.Any]:
    """The order parameters that make the venue refuse an order arriving ``deadline_s`` after
    ``now_ns``: Kraken's ``deadline`` (RFC3339, UTC); Binance's ``recvWindow`` (ms) with the
    request's ``timestamp`` set from ``now_ns`` (ccxt's ``sign`` keeps a ``timestamp`` param over its
    own ``nonce()``; less its ``timeDifference``, as that nonce would be), so that the venue's window
    opens when our not-found window does; none elsewhere."""
    if exchange.id == "kraken":
        when = datetime.datetime.fromtimestamp(now_ns / 1e9 + deadline_s, datetime.UTC)
        return {"deadline": when.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    if exchange.id == "binance":
        skew = int((exchange.options or {}).get("timeDifference") or 0)
        return {"recvWindow": max(1, round(deadline_s * 1000)), "timestamp": now_ns // 1_000_000 - skew}
    return {}


def _main_fee_currency(fees: c.Mapping[str, float], market: Market, side: t.Literal["buy", "sell"]) -> str:
    """The currency an order's ``OrderResult.fee`` is in: the market's rule (``Market.fee_currency``)
    when a fill paid in it, else the market's other currency, else the first one charged (all in
    BNB); the rest stay in the fills (``venue.other_fees``)."""
    for currency in (market.fee_currency(side), market.quote, market.base):
        if currency in fees:
            return currency
    return next(iter(fees), market.quote)


def _adds_up(trades: c.Sequence[CcxtOrder], filled: float) -> bool:
    total = sum(float(tr["amount"]) for tr in trades if tr.get("amount"))
    return bool(trades) and abs(total - filled) <= max(filled * FILL_TOLERANCE, EPS)


def _fill(trade: CcxtOrder, market: Market, when: int) -> VenueFill:
    """One execution; ``when`` (ns) is its time if the trade carries none."""
    fee = trade.get("fee") or {}
    return VenueFill(price=float(trade["price"]), amount=float(trade["amount"]),
                     fee=float(fee.get("cost") or 0.0), fee_currency=fee.get("currency") or market.quote,
                     ts_event=int(trade.get("timestamp") or 0) * 1_000_000 or when,
                     trade_id=str(trade.get("id") or ""))


_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


def _short(exc: BaseException) -> str:
    """An exception's message, one line, at most 200 characters (ccxt puts the whole reply in it),
    URLs without their query (a signed request's parameters and signature), redacted before it is
    cut (a key the reply echoes, cut in two, would no longer be recognised)."""
    text = _QUERY.sub(r"\1", redact_line(str(exc)))
    return text if len(text) <= 200 else text[:197] + "..."
