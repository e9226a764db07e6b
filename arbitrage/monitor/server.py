"""A small HTTP server on the event loop for ``/metrics`` (Prometheus text) and ``/health`` (JSON).

It runs on the engine's loop (``asyncio.start_server``), so the collector reads the monitor's
figures on the thread that writes them, with no locking. One request per connection
(``Connection: close``); only ``GET`` and ``HEAD``. Rendering ``/metrics`` costs about a
millisecond of loop time per scrape, off the hot path.

=========  ====================================================================================
path       answer
=========  ====================================================================================
/metrics   200, Prometheus text format (``prometheus_client.generate_latest`` of the run registry)
/health    200 ``{"status": "ok" | "degraded", "reasons": [...]}``; 503 with ``"halted"``
/          200, a plain-text index
other      404
=========  ====================================================================================
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import json
import typing as t

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from arbitrage.plugin import Metrics

_READ_TIMEOUT_S = 5.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


class MetricsServer:
    """Serves a metrics registry and a health function over HTTP on ``host:port``.

    :param health: returns ``{"status": ..., "reasons": [...]}``; status ``halted`` answers 503.
    :param port: 0 picks a free port (read ``port`` after ``start``).
    """

    def __init__(self, registry: Metrics, health: c.Callable[[], dict[str, t.Any]], *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = registry
        self.health = health
        self.host = host
        self.port = port
        self.requests = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; after this ``port`` is the bound port.

        :raises OSError: if the address is in use or cannot be bound.
        """
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and wait for the open connections to end."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
            while await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            status, ctype, body, head = self._answer(request)
            self.requests += 1
            header = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
            writer.write(header if head else header + body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _answer(self, request: bytes) -> tuple[int, str, bytes, bool]:
        parts = request.decode("latin-1").split()
        if len(parts) != 3:
            return 400, "text/plain; charset=utf-8", b"bad request\n", False
        method, target = parts[0], parts[1].split("?", 1)[0]
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"only GET\n", head
        if target == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry), head
        if target == "/health":
            health = self.health()
            body = json.dumps(health, sort_keys=True).encode() + b"\n"
            return (503 if health.get("status") == "halted" else 200), "application/json", body, head
        if target == "/":
            return 200, "text/plain; charset=utf-8", b"arb monitor: /metrics /health\n", head
        return 404, "text/plain; charset=utf-8", b"not found\n", head
