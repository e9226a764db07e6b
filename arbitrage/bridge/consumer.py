"""A consumer group reader of the bridge's streams: every entry handled once per group, crashes included.

For consumers that must not miss trading events (``arb redis tail --stream T --group G`` is one).
Each consumer of a group reads with ``XREADGROUP``; an entry counts as handled only once the
handler returned, and is then acknowledged (``XACK``) in the same transaction that records its key
in the group's sorted set ``<prefix>done:<group>`` (score: when, in ms; pruned after
``retain_s``). So:

* a consumer that crashes leaves its unacknowledged entries pending: restarted under the same
  name it reads them first (its pending list, ``XREADGROUP ... 0``); any other consumer of the
  group reclaims them once they have been idle ``claim_idle_ms`` (``XAUTOCLAIM``);
* a redelivered entry, or the same event written twice (a writer's resend: the same ``run:seq``
  under a new entry id), whose key is already recorded is acknowledged without calling the
  handler again: handling is idempotent by the entry's ``run:seq``.

What remains is the usual at-least-once window: a consumer killed after its handler returned and
before the transaction reached Redis gets that one entry again (``Delivery.redelivered`` is True).
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import time
import typing as t

from arbitrage.bridge.names import Names
from arbitrage.events import Event, decode_json

if t.TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["Delivery", "StreamConsumer", "entry_key"]


class Delivery(t.NamedTuple):
    """One entry handed to a consumer's handler."""

    stream: str
    entry_id: str
    key: str
    """``run:seq`` of the writer (``stream/entry_id`` for an entry without them): stable across
    redeliveries and resends."""
    event: Event | None
    """The decoded event, or None if the entry's ``event`` is not a known event."""
    payload: bytes
    redelivered: bool
    """Read from a pending list or reclaimed: an earlier delivery was not acknowledged."""


def entry_key(stream: str, entry_id: str, fields: c.Mapping[bytes, bytes]) -> str:
    run, seq = fields.get(b"run"), fields.get(b"seq")
    if run and seq:
        return f"{run.decode()}:{seq.decode()}"
    return f"{stream}/{entry_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class StreamConsumer:
    """One consumer of a group over some streams.

    :param start: where a group created now begins: ``0`` (all the stream holds) or ``$`` (new only).
    :param claim_idle_ms: reclaim other consumers' entries pending this long (a crashed consumer's).
    """

    def __init__(self, client: aioredis.Redis, names: Names, streams: c.Sequence[str], group: str,
                 consumer: str, *, start: str = "0", count: int = 100, block_ms: int = 1000,
                 claim_idle_ms: int = 30_000, retain_s: float = 86_400.0) -> None:
        self.client = client
        self.streams = list(streams)
        self.group = group
        self.consumer = consumer
        self.start = start
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.retain_ms = int(retain_s * 1000)
        self.done_key = names.done(group)
        self.handled = 0
        self.skipped = 0
        """Entries acknowledged without the handler: their key was handled already."""
        self.reclaimed = 0
        self._stop: asyncio.Event | None = None

    async def ensure_groups(self) -> None:
        """Create the group on every stream (and the stream) unless it exists."""
        from redis.exceptions import ResponseError

        for stream in self.streams:
            try:
                await self.client.xgroup_create(stream, self.group, id=self.start, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, handler: c.Callable[[Delivery], c.Awaitable[object]], *,
                  stop: asyncio.Event | None = None) -> None:
        """Handle this consumer's pending entries, then everything new, reclaiming stranded
        entries every ``claim_idle_ms``, until ``stop`` is set (checked between reads).

        :raises: whatever the handler raises (the entry stays pending, for a later delivery).
        """
        self._stop = stop
        await self.ensure_groups()
        for stream in self.streams:
            while stop is None or not stop.is_set():
                reply = await self.client.xreadgroup(self.group, self.consumer, {stream: "0"},
                                                     count=self.count)
                entries = reply[0][1] if reply else []
                if not entries:
                    break
                await self._handle_all(stream, entries, redelivered=True, handler=handler)
        next_claim = 0.0
        while stop is None or not stop.is_set():
            if time.monotonic() >= next_claim:
                next_claim = time.monotonic() + self.claim_idle_ms / 1000
                await self._claim(handler)
            reply = await self.client.xreadgroup(self.group, self.consumer, dict.fromkeys(self.streams, ">"),
                                                 count=self.count, block=self.block_ms)
            for stream, entries in reply or ():
                await self._handle_all(_text(stream), entries, redelivered=False, handler=handler)

    async def _claim(self, handler: c.Callable[[Delivery], c.Awaitable[object]]) -> None:
        for stream in self.streams:
            cursor: bytes | str = "0-0"
            while True:
                reply = await self.client.xautoclaim(stream, self.group, self.consumer, self.claim_idle_ms,
                                                     start_id=cursor, count=self.count)
                cursor, entries = reply[0], [e for e in reply[1] if e and e[1] is not None]
                self.reclaimed += len(entries)
                await self._handle_all(stream, entries, redelivered=True, handler=handler)
                if _text(cursor) == "0-0":
                    break

    async def _handle_all(self, stream: str, entries: list[t.Any], *, redelivered: bool,
                          handler: c.Callable[[Delivery], c.Awaitable[object]]) -> None:
        if not entries:
            return
        keys = [entry_key(stream, _text(entry_id), fields) for entry_id, fields in entries]
        seen = await self.client.zmscore(self.done_key, keys)
        done_here: set[str] = set()
        for (entry_id, fields), key, score in zip(entries, keys, seen, strict=True):
            if self._stop is not None and self._stop.is_set():
                return  # the rest stays pending for this consumer
            entry_id = _text(entry_id)
            if score is None and key not in done_here:  # a resend may follow its original in one batch
                done_here.add(key)
                payload = fields.get(b"event", b"")
                try:
                    event: Event | None = decode_json(payload)
                except ValueError:  # msgspec's errors are ValueErrors
                    event = None
                await handler(Delivery(stream, entry_id, key, event, payload, redelivered))
                self.handled += 1
            else:
                self.skipped += 1
            now_ms = int(time.time() * 1000)
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(self.done_key, {key: now_ms})
            pipe.xack(stream, self.group, entry_id)
            if (self.handled + self.skipped) % 1000 == 0:
                pipe.zremrangebyscore(self.done_key, "-inf", now_ms - self.retain_ms)
            await pipe.execute()
