"""What waits to be written to Redis: publish order kept, market data dropped oldest first.

Two bounded queues share one sequence: *lossy* entries (books, opportunities, heartbeats) and
*kept* ones (everything else, trading events first of all). ``take`` merges their heads by sequence,
so a batch goes out in publish order. A full lossy queue drops its oldest entry; a full kept queue
drops its oldest too (``redis.trading_buffer`` is the bound a run accepts) and counts it apart, so
the loss is visible and alerted. A batch that failed is handed back: its kept entries go back to the
front, marked ``unsure`` (they may have been written before the connection broke: the writer looks
before writing them again), its lossy entries are dropped and counted.
"""

from __future__ import annotations

import collections
import typing as t

__all__ = ["Entry", "Outbox"]


class Entry:
    """One event's commands: ``PUBLISH`` and/or ``XADD`` (and ``SET`` for market lists)."""

    __slots__ = ("commands", "lossy", "queued_ns", "seq", "unsure")

    def __init__(self, seq: int, commands: list[tuple[t.Any, ...]], lossy: bool, queued_ns: int) -> None:
        self.seq = seq
        self.commands = commands
        self.lossy = lossy
        self.queued_ns = queued_ns
        """When it was queued (monotonic ns): the mirror's lag is the oldest entry's age."""
        self.unsure = False
        """A write of it failed midway: it may be in Redis already."""


class Outbox:
    """The two queues and their drop counts."""

    def __init__(self, lossy_max: int, kept_max: int) -> None:
        self.lossy: collections.deque[Entry] = collections.deque()
        self.kept: collections.deque[Entry] = collections.deque()
        self.lossy_max = lossy_max
        self.kept_max = kept_max
        self.dropped_full = 0
        """Lossy entries dropped because the queue was full (Redis slow or down)."""
        self.dropped_down = 0
        """Lossy entries of a batch whose write failed (not retried: a newer one follows)."""
        self.overflow = 0
        """Kept entries dropped because ``kept_max`` were waiting."""

    def __len__(self) -> int:
        return len(self.lossy) + len(self.kept)

    def put(self, entry: Entry) -> None:
        if entry.lossy:
            if len(self.lossy) >= self.lossy_max:
                self.lossy.popleft()
                self.dropped_full += 1
            self.lossy.append(entry)
        else:
            if len(self.kept) >= self.kept_max:
                self.kept.popleft()
                self.overflow += 1
            self.kept.append(entry)

    def take(self, n: int) -> list[Entry]:
        """Up to ``n`` entries, oldest first by sequence."""
        lossy, kept = self.lossy, self.kept
        out: list[Entry] = []
        while len(out) < n and (lossy or kept):
            if not kept or (lossy and lossy[0].seq < kept[0].seq):
                out.append(lossy.popleft())
            else:
                out.append(kept.popleft())
        return out

    def put_back(self, batch: list[Entry]) -> None:
        """A failed batch: kept entries back to the front (``unsure``), lossy ones dropped."""
        kept = [e for e in batch if not e.lossy]
        self.dropped_down += len(batch) - len(kept)
        for entry in reversed(kept):
            entry.unsure = True
            self.kept.appendleft(entry)
        while len(self.kept) > self.kept_max:
            self.kept.popleft()
            self.overflow += 1

    def oldest_ns(self) -> int | None:
        """``queued_ns`` of the oldest waiting entry, or None when empty."""
        heads = [q[0].queued_ns for q in (self.lossy, self.kept) if q]
        return min(heads) if heads else None
