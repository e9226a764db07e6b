"""``MAXLEN ~`` trimming of the mirror's streams, on a server whose stream nodes hold 10 entries.

Redis stores a stream as a radix tree of macro nodes; a new node is started when the last one
holds ``stream-node-max-entries`` entries (or ``stream-node-max-bytes``: 0 here, so never for size).
``XADD ... MAXLEN ~ N`` adds the entry, then removes whole nodes from the oldest end while the
stream would still hold at least ``N`` without them. So, after ``T >= N`` entries of which whole
nodes of ``NODE`` were trimmed, the length ``L`` is ``N <= L < N + NODE`` and ``L = T (mod NODE)``:
exactly ``N + (T - N) % NODE``. Exact trimming (``MAXLEN N``) would give ``N``; none, ``T``.
"""

from __future__ import annotations

import asyncio
import typing as t
from pathlib import Path

import msgspec
import redis.asyncio as aioredis

from arbitrage.bridge.mirror import RedisBridge
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import BookUpdate, Fill
from arbitrage.plugin import Context
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import numbered_book, numbered_fill, settings, wait_for

NODE = 10
"""``stream-node-max-entries`` of the test's server."""


def approx_len(maxlen: int, total: int) -> int:
    """The length of a stream of ``total`` entries after ``MAXLEN ~ maxlen`` (module docstring)."""
    return maxlen + (total - maxlen) % NODE


def test_maxlen_approx_keeps_each_stream_near_its_bound_with_the_newest_entries(
        tmp_path: Path, redis_factory: t.Callable[..., RedisServer]) -> None:
    """537 fills into ``arb:stream:Fill`` (``maxlen`` 50), 404 books into a collector's feed (30)."""
    server = redis_factory("--stream-node-max-entries", str(NODE), "--stream-node-max-bytes", "0")
    maxlen, feed_maxlen, n_fills, n_books = 50, 30, 537, 404
    cfg = settings(tmp_path, server.url, redis={"role": "collector", "events": ["Fill"], "pubsub": False,
                                                "maxlen": maxlen, "feed_maxlen": feed_maxlen,
                                                "batch_size": 64})
    bus = Bus()
    ctx = Context(bus=bus, settings=cfg, clock=Clock(), run_id="trim-run")
    mirror = RedisBridge()

    async def scenario() -> tuple[list[t.Any], list[t.Any]]:
        client = aioredis.from_url(server.url)
        try:
            mirror.setup(ctx)
            await bus.start()
            await mirror.start()
            for n in range(max(n_fills, n_books)):
                if n < n_fills:
                    bus.publish(numbered_fill(n))
                if n < n_books:
                    bus.publish(numbered_book(n), "alpha")
            await bus.drain()
            await wait_for(lambda: mirror.written == n_fills + n_books and not mirror.outbox,
                           what="every event written")
            await mirror.stop()
            await bus.stop()
            return await client.xrange("arb:stream:Fill"), await client.xrange("arb:feed:alpha")
        finally:
            await client.aclose()

    fills, books = asyncio.run(scenario())
    assert mirror.errors == 0
    assert len(fills) == approx_len(maxlen, n_fills) == 57
    assert len(books) == approx_len(feed_maxlen, n_books) == 34
    # what is left is the newest, in publish order: the last 57 fills, the last 34 books
    kept_fills = [msgspec.json.decode(f[b"event"], type=Fill).client_order_id for _, f in fills]
    assert kept_fills == [f"c{n}" for n in range(n_fills - 57, n_fills)]
    kept_books = [msgspec.json.decode(f[b"event"], type=BookUpdate).ts_event for _, f in books]
    assert kept_books == list(range(n_books - 34, n_books))
    # one sequence per run over fills and books together: increasing in each stream, the last fill last
    for entries in (fills, books):
        seqs = [int(f[b"seq"]) for _, f in entries]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert int(fills[-1][1][b"seq"]) == n_fills + n_books
