"""Binance's market-data websocket: ``SUBSCRIBE`` replies and ``depthUpdate`` diffs of the book.

A connection to ``/ws...`` (ccxt.pro: ``/ws/0``, ``/ws/1``, ...) gets raw payloads; one to
``/stream...`` gets them wrapped as ``{"stream": name, "data": payload}``, and may name its
streams in the URL (``/stream?streams=nknusdt@depth@100ms/...``). ``SUBSCRIBE`` is answered
``{"result": null, "id": id}`` before any frame of the new streams. Only depth streams
(``<id>@depth``, ``<id>@depth@100ms``) carry data; other streams are acknowledged and stay silent.

Every change of a subscribed book becomes one ``depthUpdate``: a replayed diff keeps its recorded
payload (levels, ``E`` unless ``retime``) with ``U``/``u`` renumbered as the book numbers it; a
change the emulator made (a fill, ``set_book``) carries the changed levels with ``U == u``. The
stream faults (``drop_ws``, ``gap``, ``stale``) are applied here, per book change, to every
connection subscribed to that book.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import typing as t
from decimal import Decimal

from aiohttp import WSMsgType, web

from tests.emulator.core import STREAM_FAULTS, BookDiff, EmulatedExchange, Fault, dec

if t.TYPE_CHECKING:
    import collections.abc as c

    from tests.emulator.server import Route

__all__ = ["BinanceStreams", "fmt"]


def fmt(value: Decimal | int) -> str:
    """Binance's number format: 8 decimals, more only where needed to stay exact."""
    value = dec(value)
    eight = value.quantize(Decimal("1e-8"))
    return f"{eight if eight == value else value:f}"


@dataclasses.dataclass(eq=False)
class _Connection:
    request: web.Request
    ws: web.WebSocketResponse
    path: str
    wrapped: bool
    streams: dict[str, str] = dataclasses.field(default_factory=dict)
    """Market id (``NKNUSDT``) -> the depth stream name it was subscribed as."""
    others: set[str] = dataclasses.field(default_factory=set)
    queue: asyncio.Queue[str | None] = dataclasses.field(default_factory=asyncio.Queue)


class BinanceStreams:
    """The websocket side of one Binance emulator.

    :param on_depth_subscribed: called after a depth subscription is acknowledged (a replay
        waiting for its first client begins).
    :param retime: replace a replayed payload's event time ``E`` by the emulator's clock, so a
        client's staleness check sees live books (the recording is from 2021).
    """

    def __init__(self, exchange: EmulatedExchange, *,
                 on_depth_subscribed: c.Callable[[], None] = lambda: None, retime: bool = True) -> None:
        self.exchange = exchange
        self.retime = retime
        self.connections: set[_Connection] = set()
        self.frames_sent = 0
        self._on_depth_subscribed = on_depth_subscribed
        self._stale_until: dict[str | None, float] = {}
        exchange.add_book_listener(self._on_diff)
        exchange.add_fault_listener(self._on_fault)

    async def serve(self, request: web.Request, route: Route) -> web.WebSocketResponse:
        """Run one websocket connection until either side closes it."""
        ws = web.WebSocketResponse(autoping=True)
        conn = _Connection(request, ws, route.path, wrapped=route.path.startswith("/stream"))
        if request.query.get("streams"):
            self._subscribe(conn, request.query["streams"].split("/"))
        self.connections.add(conn)  # before the handshake: no frame is missed once it completes
        await ws.prepare(request)
        sender = asyncio.get_running_loop().create_task(self._send(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.exchange.log_request("WS<", route.path, {"message": msg.data})
                    self._command(conn, msg.data)
        finally:
            self.connections.discard(conn)
            conn.queue.put_nowait(None)
            await sender
        return ws

    async def close(self) -> None:
        """Close every connection (the server is stopping)."""
        for conn in list(self.connections):
            await conn.ws.close()

    def drop(self, symbol: str | None = None) -> int:
        """Cut the connections subscribed to ``symbol``'s book (all connections when None) without
        a close frame, as a network failure does; returns how many were cut."""
        market_id = self.exchange.market(symbol).id if symbol is not None else None
        cut = [c for c in self.connections if market_id is None or market_id in c.streams]
        for conn in cut:
            self.connections.discard(conn)
            if conn.request.transport is not None:
                conn.request.transport.abort()
            conn.queue.put_nowait(None)
        return len(cut)

    # -- commands -------------------------------------------------------------------------------

    def _command(self, conn: _Connection, text: str) -> None:
        try:
            message = json.loads(text)
            method, request_id = message["method"], message.get("id")
        except (ValueError, KeyError, TypeError):
            conn.queue.put_nowait(json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": None}))
            return
        params = message.get("params") or []
        if method == "SUBSCRIBE":
            depth = self._subscribe(conn, params)
            conn.queue.put_nowait(json.dumps({"result": None, "id": request_id}))
            if depth:
                self._on_depth_subscribed()
        elif method == "UNSUBSCRIBE":
            for name in params:
                conn.others.discard(name)
                conn.streams = {k: v for k, v in conn.streams.items() if v != name}
            conn.queue.put_nowait(json.dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            names = sorted([*conn.streams.values(), *conn.others])
            conn.queue.put_nowait(json.dumps({"result": names, "id": request_id}))
        else:
            conn.queue.put_nowait(json.dumps({"error": {"code": 2, "msg": f"Invalid request: {method}"},
                                              "id": request_id}))

    def _subscribe(self, conn: _Connection, names: c.Iterable[str]) -> bool:
        """Add the streams; True when one of them is a depth stream of a known market."""
        by_lower = {rules.id.lower(): rules.id for rules in self.exchange.markets.values()}
        depth = False
        for name in names:
            market, _, kind = name.partition("@")
            if kind in ("depth", "depth@100ms", "depth@1000ms") and market in by_lower:
                conn.streams[by_lower[market]] = name
                depth = True
            else:
                conn.others.add(name)
        return depth

    # -- frames ---------------------------------------------------------------------------------

    async def _send(self, conn: _Connection) -> None:
        while (text := await conn.queue.get()) is not None:
            try:
                await conn.ws.send_str(text)
            except ConnectionError:
                return
            self.frames_sent += 1

    def _on_fault(self, fault: Fault) -> None:
        if fault.kind == "drop_ws" and self.connections and self.exchange.take_fault(
                {"drop_ws"}, symbol=fault.symbol) is not None:
            self.drop(fault.symbol)

    def _on_diff(self, diff: BookDiff) -> None:
        if diff.snapshot:
            return  # a whole new book has no wire form: load snapshots before clients subscribe
        market_id = self.exchange.market(diff.symbol).id
        subscribers = [conn for conn in self.connections if market_id in conn.streams]
        if not subscribers:
            return
        now = asyncio.get_running_loop().time()
        fault = self.exchange.take_fault(STREAM_FAULTS, symbol=diff.symbol)
        if fault is not None:
            if fault.kind == "drop_ws":
                self.drop(diff.symbol)
                return
            if fault.kind == "stale":
                self._stale_until[diff.symbol] = now + fault.delay if fault.delay else math.inf
            if fault.kind in ("gap", "stale"):
                return
        if self._stale_until.get(diff.symbol, 0.0) > now:
            return
        payload = json.dumps(self._payload(diff, market_id), separators=(",", ":"))
        for conn in subscribers:
            if conn.wrapped:
                conn.queue.put_nowait(f'{{"stream":"{conn.streams[market_id]}","data":{payload}}}')
            else:
                conn.queue.put_nowait(payload)

    def _payload(self, diff: BookDiff, market_id: str) -> dict[str, t.Any]:
        if diff.raw is not None:
            raw = diff.raw
            payload = {**raw, "U": int(raw["U"]) + diff.last_id - int(raw["u"]), "u": diff.last_id}
            if self.retime:
                payload["E"] = diff.ts_ms
            return payload
        return {"e": "depthUpdate", "E": diff.ts_ms, "s": market_id, "U": diff.first_id, "u": diff.last_id,
                "b": [[fmt(p), fmt(q)] for p, q in diff.bids], "a": [[fmt(p), fmt(q)] for p, q in diff.asks]}

