"""Kraken's public websocket v2 (``/ws.kraken.com/v2``): the ``book`` channel, ping, status.

Protocol (docs.kraken.com, "Spot WebSocket v2 / book"; ccxt.pro ``kraken.handle_order_book``):
on connect a ``status`` message; ``{"method": "subscribe", "params": {"channel": "book", "symbol":
[...], "depth": N}, "req_id": R}`` with N one of 10, 25, 100, 500, 1000 (default 10) is answered
per symbol by an ack, then a ``snapshot`` of the best N levels a side, then ``update`` messages;
``{"method": "ping"}`` by ``{"method": "pong"}``. Each message carries the CRC32 checksum of the
book's best 10 levels a side after it (`kraken_feed.checksum`).

Updates follow Kraken's rules for a depth-N subscriber: a level is sent when its quantity changed
within the best N, with quantity 0 when it left the book, and a level that enters the best N
because another left is sent too; a level pushed out by a better one is not deleted on the wire
(the client truncates to N). They are computed as the difference between what this connection
was last sent and the book's best N now, so a fill and a recorded update are published alike.

Stream faults (``core.Fault``) apply to the next update a connection would be sent for the
fault's symbol: ``drop_ws`` closes the connection (at once when injected), ``gap`` withholds that
update (the client's book then differs from the exchange's: its checksum no longer matches),
``stale`` sends nothing more of the symbol for ``delay`` seconds (0: forever), then resumes with
what changed meanwhile. No heartbeats are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import typing as t
from decimal import Decimal

from aiohttp import WSMsgType, web

from tests.emulator.core import STREAM_FAULTS, BookDiff, EmulatedExchange, Fault
from tests.emulator.kraken_feed import Precision, checksum, encode_book

__all__ = ["DEPTHS", "PublicSocket"]

DEPTHS = (10, 25, 100, 500, 1000)
"""The book depths Kraken accepts; any other is refused."""

Side = dict[Decimal, Decimal]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Subscription:
    """One connection's book of one symbol: its depth and the levels it was last sent."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.asks: Side = {}
        self.bids: Side = {}


def _changes(sent: Side, now: list[tuple[Decimal, Decimal]], full: Side) -> list[tuple[Decimal, Decimal]]:
    """What moves a depth-N client from ``sent`` to ``now`` (the best N): levels of ``sent`` gone
    from the book (at 0; those only pushed out are not sent), then levels new or changed in ``now``
    (the order of Kraken's own updates)."""
    best = dict(now)
    gone = [(price, Decimal(0)) for price in sent if price not in best and price not in full]
    return gone + [(price, qty) for price, qty in now if sent.get(price) != qty]


class PublicSocket:
    """Every open v2 public connection of one emulator, fed by the exchange's book listener."""

    def __init__(self, exchange: EmulatedExchange, precision: t.Callable[[str], Precision]) -> None:
        """:param precision: a symbol's wire decimals (raises KeyError for an unknown symbol)."""
        self.exchange = exchange
        self.precision = precision
        self.connections: dict[web.WebSocketResponse, dict[str, _Subscription]] = {}
        self._queues: dict[web.WebSocketResponse, asyncio.Queue[str | None]] = {}
        self._stale_until: dict[str, float] = {}
        exchange.add_book_listener(self._on_book)
        exchange.add_fault_listener(self._on_fault)

    async def handle(self, request: web.Request, path: str) -> web.WebSocketResponse:
        """Serve one websocket until the client or the emulator closes it; each message received
        is logged as a ``WS<`` request of ``path``."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.connections[ws], self._queues[ws] = {}, queue
        writer = asyncio.create_task(self._write(ws, queue))
        queue.put_nowait(json.dumps({"channel": "status", "type": "update", "data": [{
            "version": "2.0.10", "system": "online", "api_version": "v2", "connection_id": id(ws)}]}))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                self.exchange.log_request("WS<", path, {"message": message.data})
                self._on_message(ws, message.data)
        finally:
            self.connections.pop(ws, None)
            self._queues.pop(ws, None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _write(self, ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> None:
        while (text := await queue.get()) is not None:
            if ws.closed:
                return
            await ws.send_str(text)
        await ws.close()

    def _send(self, ws: web.WebSocketResponse, payload: dict[str, t.Any] | str) -> None:
        queue = self._queues.get(ws)
        if queue is not None:
            queue.put_nowait(payload if isinstance(payload, str) else json.dumps(payload))

    def close_all(self) -> None:
        """Close every connection (after what is queued for it): a dropped websocket."""
        for queue in self._queues.values():
            queue.put_nowait(None)

    # -- requests ---------------------------------------------------------------------------------

    def _on_message(self, ws: web.WebSocketResponse, text: str) -> None:
        time_in = _now()
        try:
            request = json.loads(text)
            method = request["method"]
        except (ValueError, KeyError, TypeError):
            self._send(ws, {"error": "Malformed request", "success": False, "time_in": time_in,
                            "time_out": _now()})
            return
        reply: dict[str, t.Any] = {"method": method}
        if "req_id" in request:
            reply["req_id"] = request["req_id"]
        if method == "ping":
            self._send(ws, {**reply, "method": "pong", "time_in": time_in, "time_out": _now()})
        elif method in ("subscribe", "unsubscribe"):
            self._subscription(ws, method, request.get("params") or {}, reply, time_in)
        else:
            self._send(ws, {**reply, "error": f"Method not found: {method}", "success": False,
                            "time_in": time_in, "time_out": _now()})

    def _subscription(self, ws: web.WebSocketResponse, method: str, params: dict[str, t.Any],
                      reply: dict[str, t.Any], time_in: str) -> None:
        def refuse(error: str, **extra: t.Any) -> None:
            self._send(ws, {**reply, "error": error, "success": False, **extra, "time_in": time_in,
                            "time_out": _now()})

        depth, symbols = params.get("depth", 10), params.get("symbol")
        if params.get("channel") != "book":
            return refuse(f"Channel not supported by this emulator: {params.get('channel')}")
        if not isinstance(symbols, list) or not symbols:
            return refuse("Pair field must be an array")
        if depth not in DEPTHS:
            return refuse(f"Subscription depth not supported: {depth}")
        books = self.connections[ws]
        for symbol in symbols:
            if symbol not in self.exchange.books:
                refuse(f"Currency pair not supported {symbol}", symbol=symbol)
                continue
            result = {"channel": "book", "depth": depth, "snapshot": True, "symbol": symbol}
            if method == "unsubscribe":
                books.pop(symbol, None)
                result.pop("snapshot")
            self._send(ws, {**reply, "result": result, "success": True, "time_in": time_in,
                            "time_out": _now()})
            if method == "subscribe":
                books[symbol] = _Subscription(depth)
                self._publish(ws, symbol, books[symbol], snapshot=True, ts=time.time())

    # -- books ------------------------------------------------------------------------------------

    def _publish(self, ws: web.WebSocketResponse, symbol: str, sub: _Subscription, *, snapshot: bool,
                 ts: float) -> None:
        """Send the connection its snapshot, or the update that brings it to the book now (none
        when nothing changed within its depth), under the stream fault the update meets."""
        book = self.exchange.book(symbol)
        asks, bids = book.levels("asks", sub.depth), book.levels("bids", sub.depth)
        if snapshot:
            ask_changes, bid_changes = asks, bids
        else:
            ask_changes = _changes(sub.asks, asks, book.asks)
            bid_changes = _changes(sub.bids, bids, book.bids)
            if not ask_changes and not bid_changes:
                return
            fault = self.exchange.take_fault(STREAM_FAULTS, symbol=symbol)
            if fault is not None and fault.kind == "drop_ws":
                self._send_close(ws)
                return
            if fault is not None and fault.kind == "stale":  # this update and the next ones wait
                self._stale_until[symbol] = time.monotonic() + (fault.delay or float("inf"))
                return
            if fault is not None and fault.kind == "gap":  # the client never learns this change
                sub.asks, sub.bids = dict(asks), dict(bids)
                return
        sub.asks, sub.bids = dict(asks), dict(bids)
        precision = self.precision(symbol)
        self._send(ws, encode_book("snapshot" if snapshot else "update", symbol, ask_changes, bid_changes,
                                   checksum(asks, bids, precision), ts, precision))

    def _on_book(self, diff: BookDiff) -> None:
        for ws, books in list(self.connections.items()):
            sub = books.get(diff.symbol)
            if sub is not None and self._stale_until.get(diff.symbol, 0.0) <= time.monotonic():
                self._publish(ws, diff.symbol, sub, snapshot=False, ts=diff.ts_ms / 1000)

    def _send_close(self, ws: web.WebSocketResponse) -> None:
        queue = self._queues.get(ws)
        if queue is not None:
            queue.put_nowait(None)

    def _on_fault(self, fault: Fault) -> None:
        if fault.kind != "drop_ws":
            return
        targets = [ws for ws, books in self.connections.items()
                   if fault.symbol is None or fault.symbol in books]
        if targets and self.exchange.take_fault({"drop_ws"}, symbol=fault.symbol) is not None:
            for ws in targets:
                self._send_close(ws)
