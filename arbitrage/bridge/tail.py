"""``arb redis tail``: print mirrored events as they arrive, for people debugging a deployment.

Channels are Pub/Sub (``--channel Fill``; no option at all: every ``<prefix>*`` channel), streams
are read from now on (``--stream Fill``, ``--stream feed:alpha``; ``--from-start`` for what they
hold), or as one consumer of a consumer group (``--group G``: ``bridge.consumer``, acknowledged,
each entry once per group). One line per event: time received, where from, entry id, the
writer's ``run:seq``, the event type and its JSON; ``--json`` prints one JSON object per line
instead (``source``, ``id``, ``key``, ``event``).
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import contextlib
import time
import typing as t

import msgspec

from arbitrage.bridge.consumer import Delivery, StreamConsumer, entry_key
from arbitrage.bridge.link import open_client
from arbitrage.bridge.names import Names
from arbitrage.settings import RedisSettings

__all__ = ["tail"]

_line = msgspec.json.Encoder()


class _Out:
    """Formats and counts what is printed; sets ``done`` after ``limit`` events."""

    def __init__(self, write: c.Callable[[str], None], as_json: bool, limit: int | None) -> None:
        self.write = write
        self.as_json = as_json
        self.limit = limit
        self.count = 0
        self.done = asyncio.Event()

    def show(self, source: str, entry_id: str | None, key: str | None, payload: bytes) -> None:
        if self.done.is_set():
            return
        if self.as_json:
            self.write(_line.encode({"source": source, "id": entry_id, "key": key,
                                     "event": msgspec.Raw(payload)}).decode())
        else:
            try:
                kind = msgspec.json.decode(payload).get("type", "?")
            except (ValueError, AttributeError):
                kind = "?"
            stamp = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
            where = f"{source} {entry_id}" if entry_id else source
            self.write(f"{stamp} {where} {key or '-'} {kind} {payload.decode(errors='replace')}")
        self.count += 1
        if self.limit is not None and self.count >= self.limit:
            self.done.set()


async def tail(settings: RedisSettings, *, channels: c.Sequence[str] = (), streams: c.Sequence[str] = (),
               group: str | None = None, consumer: str = "tail", from_start: bool = False,
               limit: int | None = None, duration: float | None = None,
               write: c.Callable[[str], None] = print, as_json: bool = False) -> int:
    """Print events from ``channels`` and ``streams`` until ``limit`` events, ``duration`` seconds
    or cancellation; returns how many were printed.

    :raises PluginError: if Redis cannot be reached (the URL redacted).
    """
    from arbitrage.bridge.link import REDIS_ERRORS
    from arbitrage.errors import PluginError
    from arbitrage.redact import redact_text

    names = Names(settings.prefix)
    out = _Out(write, as_json, limit)
    client = open_client(settings, "arb-tail", read_timeout_s=settings.connect_timeout_s + 1.0)
    jobs: list[c.Coroutine[t.Any, t.Any, None]] = []
    if channels or not streams:
        jobs.append(_channels(client, names, channels, out))
    if streams:
        keys = [names.resolve_stream(s) for s in streams]
        if group:
            jobs.append(_group(client, names, keys, group, consumer, from_start, out))
        else:
            jobs.append(_streams(client, keys, from_start, out))
    tasks = [asyncio.ensure_future(job) for job in jobs]
    waiter = asyncio.ensure_future(out.done.wait())
    try:
        finished, _ = await asyncio.wait([*tasks, waiter], timeout=duration,
                                         return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    except REDIS_ERRORS as exc:
        raise PluginError(f"Redis at {redact_text(settings.url)}: {redact_text(str(exc))}") from None
    finally:
        for task in [*tasks, waiter]:
            task.cancel()
        for task in [*tasks, waiter]:
            with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                await asyncio.wait_for(task, 2.0)
        with contextlib.suppress(*REDIS_ERRORS):
            await client.aclose()
    return out.count


async def _channels(client: t.Any, names: Names, channels: c.Sequence[str], out: _Out) -> None:
    pubsub = client.pubsub()
    if channels:
        await pubsub.subscribe(*(names.channel(ch) for ch in channels))
    else:
        await pubsub.psubscribe(f"{names.prefix}*")
    try:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message["type"] in ("message", "pmessage"):
                out.show(message["channel"].decode(), None, None, message["data"])
    finally:
        await pubsub.aclose()


async def _streams(client: t.Any, keys: list[str], from_start: bool, out: _Out) -> None:
    if from_start:
        positions: dict[str, bytes | str] = dict.fromkeys(keys, "0-0")
    else:
        seconds, micros = await client.time()
        positions = dict.fromkeys(keys, f"{seconds * 1000 + micros // 1000 - 1}-{2**64 - 1}")
    while True:
        reply = await client.xread(positions, count=500, block=1000)
        for key, entries in reply or ():
            name = key.decode()
            for entry_id, fields in entries:
                positions[name] = entry_id
                eid = entry_id.decode()
                out.show(name, eid, entry_key(name, eid, fields), fields.get(b"event", b""))


async def _group(client: t.Any, names: Names, keys: list[str], group: str, consumer: str, from_start: bool,
                 out: _Out) -> None:
    reader = StreamConsumer(client, names, keys, group, consumer, start="0" if from_start else "$")

    async def show(delivery: Delivery) -> None:
        out.show(delivery.stream, delivery.entry_id, delivery.key, delivery.payload)

    await reader.run(show, stop=out.done)
