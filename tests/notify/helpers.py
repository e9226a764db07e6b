"""A real HTTP endpoint on 127.0.0.1 for Apprise ``json://`` posts, and a notifier harness on a SimClock."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
from loguru import logger

from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.notify import Notifier
from arbitrage.plugin import Context
from arbitrage.settings import Settings

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


class Post(t.NamedTuple):
    path: str
    payload: dict[str, t.Any]
    authorization: str


class Sink:
    """Records every POST; while ``hold`` is cleared a request hangs until it is set (or 10 s pass)."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Semaphore(0)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.posts.append(Post(self.path, json.loads(body), self.headers.get("Authorization", "")))
                sink.arrived.release()
                sink.hold.wait(10)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), name="sink",
                                       daemon=True)

    def url(self, path: str = "hook") -> str:
        """An Apprise URL to this sink, with a password that must never be logged."""
        return f"json://arb:S3cretPw@127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def messages(self) -> list[tuple[str, str, str]]:
        """(title, message, type) of every post, in arrival order."""
        return [(p.payload["title"], p.payload["message"], p.payload["type"]) for p in self.posts]


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notify_settings(urls: list[str], **notify: t.Any) -> Settings:
    """Defaults with ``[notify]`` set: these URLs, and no lifecycle messages unless asked."""
    base = Settings()
    notify.setdefault("lifecycle", False)
    return msgspec.structs.replace(base, notify=msgspec.structs.replace(base.notify, urls=urls, **notify))


class NotifierHarness:
    """A ``Notifier`` on its own bus and simulated clock."""

    def __init__(self, settings: Settings, environ: dict[str, str] | None = None) -> None:
        self.bus = Bus()
        self.clock = SimClock(T0)
        self.ctx = Context(bus=self.bus, settings=settings, clock=self.clock, run_id="test-run",
                           log=logger.bind(run_id="test-run"))
        self.notifier = Notifier(environ=environ or {})
        self.notifier.setup(self.ctx)

    async def start(self) -> None:
        await self.bus.start()
        await self.notifier.start()

    async def stop(self) -> None:
        await self.notifier.stop()
        await self.bus.stop()

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait (wall time) until the bus queues and every channel's outbox are empty."""
        deadline = time.monotonic() + timeout
        while True:
            await self.bus.drain()
            if not self.notifier.pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.notifier.pending} notifications still pending")
            await asyncio.sleep(0.005)


def run(coro: t.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
    return asyncio.run(coro)
