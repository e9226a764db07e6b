"""Recordings: JSON lines of ``BookUpdate`` snapshots (and ``MarketsLoaded``), zstd when ``.zst``.

One line per event, in the order it was published (see ``docs/formats.md``)::

    {"ts":1700000000123,"type":"BookUpdate","venue":"alpha","symbol":"BTC/USDT",
     "bids":[[59985.3,0.49],...],"asks":[[59990.1,0.2],...],"ts_event":...,"ts_init":...}

``ts`` is the exchange time in whole milliseconds (what a reader needs at minimum); ``ts_event``
and ``ts_init`` keep the exact nanoseconds so a replay sees the same times the live run saw.
A ``MarketsLoaded`` line (fees, precision, minimums, staleness of one venue) comes before that
venue's first book. Files whose name ends in ``.zst`` are written through a zstandard stream
(level 3); anything else is plain text.
"""

from __future__ import annotations

import collections.abc as c
import io
import typing as t
from pathlib import Path

import msgspec

from arbitrage.errors import DataError
from arbitrage.events import BookUpdate, Event, MarketsLoaded, encode_hook

__all__ = ["RecordingWriter", "encode_line", "is_compressed"]

_encode = msgspec.json.Encoder(enc_hook=encode_hook).encode
ZSTD_LEVEL = 3


def is_compressed(path: str | Path) -> bool:
    """Whether a recording's name asks for zstandard compression (``.zst``)."""
    return str(path).endswith(".zst")


def encode_line(event: BookUpdate | MarketsLoaded) -> bytes:
    """One recording line, newline included: the tagged event with ``ts`` (ms) in front."""
    ts = event.ts_event if type(event) is BookUpdate else event.ts_init
    return b'{"ts":%d,%s\n' % (ts // 1_000_000, _encode(event)[1:])


class RecordingWriter:
    """Appends events to a recording file; ``close`` (or ``with``) finishes the zstd frame.

    Not thread-safe: one thread writes at a time (the recorder hands whole batches to a thread).
    """

    def __init__(self, path: str | Path) -> None:
        """Create (or truncate) ``path``, creating its folder.

        :raises DataError: if the file cannot be created.
        """
        self.path = Path(path)
        self.lines = 0
        """Lines written so far."""
        self.books = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._raw: t.BinaryIO = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        except OSError as exc:
            raise DataError(f"{self.path}: cannot create recording ({exc})") from exc
        self._out: t.Any = self._raw
        if is_compressed(self.path):
            import zstandard

            self._out = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(self._raw, closefd=False)
        self._closed = False

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def write(self, event: Event) -> None:
        """Write one ``BookUpdate`` or ``MarketsLoaded``; other event types are ignored."""
        self.write_many((event,))

    def write_many(self, events: c.Iterable[Event]) -> None:
        """Write events in order (``BookUpdate`` and ``MarketsLoaded``; others are ignored)."""
        buf = io.BytesIO()
        lines = books = 0
        for event in events:
            kind = type(event)
            if kind is BookUpdate:
                books += 1
            elif kind is not MarketsLoaded:
                continue
            buf.write(encode_line(event))  # type: ignore[arg-type]
            lines += 1
        if lines:
            self._out.write(buf.getbuffer())
            self.lines += lines
            self.books += books

    def flush(self) -> None:
        """Push buffered bytes to the file (a zstd block is ended so a reader sees them)."""
        if not self._closed:
            if self._out is not self._raw:
                import zstandard

                self._out.flush(zstandard.FLUSH_BLOCK)
            self._raw.flush()

    def close(self) -> None:
        """Finish the compressed frame and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._out is not self._raw:
                self._out.close()
        finally:
            self._raw.close()
