"""Serving an emulator over HTTP and websockets on 127.0.0.1, in this loop or in a subprocess.

Every URL has the shape ``/{host}/{path}``: ``arbitrage.exchanges.urls.rewrite_urls`` moved the
exchange's host to the first path segment, so one port serves all of a venue's hosts. The server
logs each request (``EmulatedExchange.requests``), applies the HTTP faults queued for its
``"METHOD /path"`` (``path`` without the host segment) and hands it to the protocol
(``Emulator.handle``); a path no protocol route knows answers 404 and stays in the log.

``/_emulator/...`` is the control API a test uses on an emulator in another process:
``GET /_emulator/state`` (balances, orders, trades, request log as JSON), ``POST
/_emulator/faults`` (a JSON list of ``Fault`` fields), ``POST /_emulator/balances`` (``{asset:
free}``), ``POST /_emulator/book`` (``{"symbol", "bids", "asks"}``: ``set_book``).
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import dataclasses
import json
import typing as t
from decimal import Decimal

from aiohttp import web

from tests.emulator.core import HTTP_FAULTS, EmulatedExchange, Fault, Order

__all__ = ["Emulator", "Route", "serve", "state"]

HOLD_FOREVER = 3600.0
"""How long a ``timeout`` fault without a ``delay`` holds a request: longer than any client timeout."""


@dataclasses.dataclass(frozen=True)
class Route:
    """Where a request went: ``host`` is the original exchange host (the first path segment),
    ``path`` the rest with a leading ``/``, ``endpoint`` ``"METHOD /path"``."""

    method: str
    host: str
    path: str

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


class Emulator:
    """A venue's wire protocol in front of an ``EmulatedExchange``; subclassed per venue.

    The server calls ``start`` once it listens (begin a replay), ``handle`` per request and
    ``stop`` before it closes (end replays, close websockets).
    """

    name = "emulator"

    def __init__(self, exchange: EmulatedExchange) -> None:
        self.exchange = exchange
        self.base_url = ""
        """Set by the server once it listens, e.g. ``http://127.0.0.1:41234``."""

    async def handle(self, request: web.Request, route: Route) -> web.StreamResponse | None:
        """Answer a request (websocket upgrades included); None for an unknown route (404)."""
        return None

    def error_response(self, fault: Fault) -> web.Response:
        """The reply to an injected ``status`` fault, in the venue's error format."""
        return web.json_response({"error": fault.message or "injected"}, status=fault.status)

    async def start(self) -> None:
        """Begin background work (a replay); the server listens already."""

    async def stop(self) -> None:
        """End background work and close websockets; called before the server closes."""


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method in ("POST", "PUT", "DELETE") and request.body_exists:
        text = await request.text()  # cached by aiohttp: the protocol can read it again
        if request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = json.loads(text)
                if isinstance(body, dict):
                    params.update({k: str(v) for k, v in body.items()})
        else:
            params.update((await request.post()).items())  # type: ignore[arg-type]
    return params


def _drop(request: web.Request) -> t.NoReturn:
    """Close the connection without an answer: the client sees it disconnect."""
    if request.transport is not None:
        request.transport.abort()
    raise ConnectionResetError("dropped by an injected fault")


_LATE = web.AppKey("late", set)
"""Requests a ``late`` fault queued for processing after the client was cut off."""


def _make_app(emulator: Emulator) -> web.Application:
    exchange = emulator.exchange

    async def dispatch(request: web.Request) -> web.StreamResponse:
        host, _, rest = request.match_info["tail"].partition("/")
        if host == "_emulator":
            return await _control(emulator, request, rest)
        route = Route(request.method, host, "/" + rest)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        record = exchange.log_request("WS" if upgrade else request.method, route.path,
                                      dict(request.query) if upgrade else await _params(request))
        if upgrade:
            record.status = 101  # logged at once: a websocket's handler returns only when it closes
        fault = None if upgrade else exchange.take_fault(HTTP_FAULTS, endpoint=route.endpoint)
        if fault is not None and fault.kind == "status":
            response = emulator.error_response(fault)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = f"{fault.retry_after:g}"
            record.status = response.status
            return response
        if fault is not None and fault.kind == "late":  # processed later, whoever still waits for it
            async def arrive() -> None:
                await asyncio.sleep(fault.delay)
                record.status = (await emulator.handle(request, route) or web.Response(status=404)).status

            task = asyncio.get_running_loop().create_task(arrive())
            app[_LATE].add(task)
            task.add_done_callback(app[_LATE].discard)
            _drop(request)
        if fault is not None and fault.kind in ("timeout", "delay"):
            if fault.kind == "timeout":
                await asyncio.sleep(fault.delay or HOLD_FOREVER)
                _drop(request)
            await asyncio.sleep(fault.delay)
        response = await emulator.handle(request, route)
        if response is None:
            response = web.json_response({"error": f"no route {route.endpoint}"}, status=404)
        if not upgrade:
            record.status = response.status
        if fault is not None and fault.kind == "lost":
            await asyncio.sleep(fault.delay)
            _drop(request)
        return response

    app = web.Application()
    app[_LATE] = set()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def _jsonable(value: t.Any) -> t.Any:
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def state(exchange: EmulatedExchange) -> dict[str, t.Any]:
    """The exchange's balances, orders, trades and request log as JSON-ready data (Decimals as
    strings): what ``GET /_emulator/state`` answers."""
    orders: list[Order] = list(exchange.orders.values())
    return {
        "name": exchange.name,
        "balances": _jsonable(exchange.balances),
        "orders": _jsonable(orders),
        "trades": _jsonable(exchange.trades),
        "requests": _jsonable(exchange.requests),
    }


async def _control(emulator: Emulator, request: web.Request, what: str) -> web.Response:
    exchange = emulator.exchange
    if request.method == "GET" and what == "state":
        return web.json_response(state(exchange))
    if request.method == "POST" and what in ("faults", "balances", "book"):
        body = await request.json()
        if what == "faults":
            exchange.inject(*(Fault(**{**f, "fill": Decimal(f["fill"]) if f.get("fill") else None})
                              for f in body))
        elif what == "balances":
            for asset, free in body.items():
                exchange.set_balance(asset, free)
        else:
            exchange.set_book(body["symbol"], body["bids"], body["asks"])
        return web.json_response({"ok": True})
    return web.json_response({"error": f"no control route {request.method} {what}"}, status=404)


@contextlib.asynccontextmanager
async def serve(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> c.AsyncIterator[str]:
    """Serve ``emulator`` in the running loop; yield its base URL (``http://127.0.0.1:PORT``).

    ``port=0`` picks a free port. On exit the emulator stops, held requests are cancelled and
    the port is closed. Point ccxt at it with ``rewrite_urls(exchange.urls['api'], base_url)``.
    """
    runner = web.AppRunner(_make_app(emulator), handler_cancellation=True, shutdown_timeout=0.5,
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        emulator.base_url = f"http://{bound_host}:{bound_port}"
        await emulator.start()
        try:
            yield emulator.base_url
        finally:
            late = list(runner.app[_LATE])
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            await emulator.stop()
    finally:
        await runner.cleanup()

