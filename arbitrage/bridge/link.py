"""One plugin's connection to Redis: open it, notice it break, win it back with backoff, say so.

redis-py's own retries are switched off: a broken connection surfaces at once as one of
``REDIS_ERRORS``, the plugin calls ``lost`` (an error ``Alert`` keyed ``redis.down:<plugin>``, once
per outage) and ``restore``, which pings with tenacity's exponential backoff and jitter (at most
``redis.retry_max_s`` between attempts, no limit on their number) and then publishes the alert's
recovery. The URL is shown only redacted (``arbitrage.redact``): never its password.
"""

from __future__ import annotations

import asyncio
import time
import typing as t

import redis.asyncio as aioredis
import tenacity
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arbitrage.errors import PluginError
from arbitrage.events import Alert
from arbitrage.redact import redact_text
from arbitrage.settings import RedisSettings

if t.TYPE_CHECKING:
    from arbitrage.plugin import Context

__all__ = ["REDIS_ERRORS", "Link", "end_task", "open_client"]

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a lost or unreachable server raises (redis-py wraps most socket errors; OSError the rest)."""


def open_client(settings: RedisSettings, name: str, *, read_timeout_s: float | None = None) -> aioredis.Redis:
    """A client for ``settings.url`` without redis-py's retries (the caller decides what is safe).

    :param name: ``CLIENT SETNAME`` of its connections (shown by ``CLIENT LIST``).
    :param read_timeout_s: longest wait for an answer (default ``connect_timeout_s``).
    """
    return aioredis.from_url(
        settings.url, socket_connect_timeout=settings.connect_timeout_s,
        socket_timeout=read_timeout_s or settings.connect_timeout_s, retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False, client_name=name)


class Link:
    """The client of one plugin, whether it is up, and its outages.

    :param label: the plugin, in the alert key ``redis.down:<label>`` and the log.
    """

    def __init__(self, ctx: Context, settings: RedisSettings, label: str, *,
                 read_timeout_s: float | None = None) -> None:
        self.ctx = ctx
        self.settings = settings
        self.label = label
        self.shown = redact_text(settings.url)
        """The URL as logs and alerts show it."""
        self.client = open_client(settings, f"arb-{label}-{ctx.run_id}", read_timeout_s=read_timeout_s)
        self.up = False
        self.outages = 0
        self.reconnects = 0
        self.down_s = 0.0
        """Seconds spent down, outages that ended."""
        self._down_since = 0.0
        self.key = f"redis.down:{label}"

    async def open(self) -> None:
        """Connect once.

        :raises PluginError: if Redis cannot be reached or refuses the credentials (redacted).
        """
        try:
            await self.client.ping()
        except Exception as exc:
            raise PluginError(f"cannot reach Redis at {self.shown}: {redact_text(str(exc))}") from None
        self.up = True
        self.ctx.log.info("redis {}: connected to {}", self.label, self.shown)

    def lost(self, exc: BaseException) -> None:
        """The connection broke: alert once per outage."""
        if not self.up:
            return
        self.up = False
        self.outages += 1
        self._down_since = time.monotonic()
        reason = redact_text(str(exc)) or type(exc).__name__
        message = f"Redis bridge ({self.label}) lost {self.shown}: {reason}"
        self.ctx.log.warning("{}; reconnecting", message)
        self.ctx.bus.publish(Alert(key=self.key, level="error", message=message,
                                   ts_init=self.ctx.clock.time_ns()))

    async def restore(self, note: t.Callable[[], str] | None = None) -> None:
        """Ping with backoff until Redis answers, then publish the recovery.

        :param note: adds to the recovery's message (e.g. what was dropped meanwhile).
        """
        retrying = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=0.05, max=self.settings.retry_max_s)
            + tenacity.wait_random(0, 0.05),
            retry=tenacity.retry_if_exception_type(REDIS_ERRORS), reraise=True)
        async for attempt in retrying:
            with attempt:
                await self.client.ping()
        self.up = True
        self.reconnects += 1
        down = time.monotonic() - self._down_since
        self.down_s += down
        extra = f"; {note()}" if note is not None else ""
        message = f"Redis bridge ({self.label}) back on {self.shown} after {down:.1f} s{extra}"
        self.ctx.log.info("{}", message)
        self.ctx.bus.publish(Alert(key=self.key, level="error", message=message, recovered=True,
                                   ts_init=self.ctx.clock.time_ns()))

    async def close(self) -> None:
        await self.client.aclose()


async def end_task(task: asyncio.Task[None], grace_s: float) -> None:
    """Let a task that was told to stop finish, cancel it after ``grace_s``, never hang on it.

    A cancellation that lands inside a redis-py call can be absorbed there (the call tears its
    connection down and the loop goes on), so a plain ``cancel(); await task`` could wait forever.
    """
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
    if done and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
