"""Decoding a JSON-lines recording in a second process, so that a replay uses two cores.

The replaying process spends about half of each book on reading and checking JSON. For a large
file a worker process (a fresh interpreter running this module) does that instead, with the same
``JsonLinesReader`` code, line numbers and malformed-line accounting, and sends the books as
msgpack messages (``Batch``): each book a ``levels.BookRecord`` (ids for venue and symbol, level
counts, best levels and each side's checked JSON text), which ``levels.unpack`` turns into a
``BookUpdate`` whose sides are ``RawLevels`` without checking or parsing them again. Anything else
(announcements, books of the minimal line form) travels as ``Other`` items at their place. The
events, their order and the statistics are the same as decoding in process; the pipe's buffer
keeps the worker at most a message or two ahead, so memory stays flat.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
import typing as t
from pathlib import Path

import msgspec

from arbitrage.errors import DataError
from arbitrage.events import BookUpdate, Level, MarketsLoaded
from arbitrage.readers import levels
from arbitrage.readers.contract import FileStats, Item
from arbitrage.readers.jsonl import BookLine, DecodeErrors, JsonLinesReader, exact

__all__ = ["MIN_BYTES", "ParallelJsonLinesReader", "batches", "worth_it"]

MIN_BYTES = 32 * 1024 * 1024
"""Smaller files are decoded in the replaying process: starting the worker (~0.2 s) costs more."""
MESSAGE_BOOKS = 512
"""A message is sent once it holds this many books (~0.5 MB of a 20-level recording)."""
MESSAGE_BYTES = 1024 * 1024
"""The pipe's buffer is widened to this where the OS allows it."""
_LENGTH = struct.Struct("<Q")
"""Each message is preceded by its length."""


class PlainBook(msgspec.Struct, tag=True, gc=False):
    """A book whose sides are tuples (a minimal-form line): sent as its levels."""

    venue: str
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event: int
    ts_init: int


Other = MarketsLoaded | PlainBook


class Batch(msgspec.Struct, tag=True, array_like=True, gc=False):
    """One message of events, with the worker's progress when it was sent."""

    done: int
    lines: int
    events: int
    malformed: int
    names: list[str]
    """Venue and symbol names this message defines: ids from the count defined before it on."""
    books: list[levels.BookRecord]
    others: list[tuple[int, Other]]
    """Other events and where each goes among the message's events (ascending)."""


class Final(msgspec.Struct, tag=True, array_like=True, gc=False):
    """The last message: the reader's final statistics, or why the worker failed."""

    error: str = ""
    done: int = 0
    lines: int = 0
    events: int = 0
    malformed: int = 0
    reasons: dict[str, int] = {}
    examples: list[tuple[int, str]] = []


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Batch | Final).decode


class ParallelJsonLinesReader(JsonLinesReader):
    """The JSON-lines reader replays use: a large file is decoded by a second process (``batches``),
    a small one in this process."""

    def batches(self) -> c.Iterator[list[Item]]:
        if worth_it(self):
            yield from batches(self)
        else:
            yield from super().batches()


def worth_it(reader: JsonLinesReader) -> bool:
    """Whether to decode ``reader``'s file in a worker process: a large file, a spare core, and
    not already in a worker process (``arb optimize --jobs`` spreads its backtests over the cores)."""
    return (reader.stats.size >= MIN_BYTES and (os.cpu_count() or 1) > 1
            and multiprocessing.parent_process() is None and hasattr(os, "readv"))  # POSIX pipes


def batches(reader: JsonLinesReader) -> c.Iterator[list[Item]]:
    """``reader.batches()``, decoded by a worker process; ``reader.stats`` follows the worker's.

    :raises DataError: if the worker fails (a corrupt compressed file, an unreadable file).
    """
    fd, sender = os.pipe()
    try:
        _widen(fd)
        # a fresh interpreter running this module (never a fork of a process that runs threads, and
        # unlike multiprocessing's spawn it does not import the caller's __main__ again), importing
        # the very package this process runs (-P: not one that the working directory holds)
        path = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
        worker = subprocess.Popen([sys.executable, "-P", "-m", __name__, str(reader.path),
                                   str(reader.stats.size), str(sender)], pass_fds=(sender,), env=env)
    except BaseException:
        os.close(fd)
        raise
    finally:
        os.close(sender)
    stats = reader.stats
    names: list[str] = []
    try:
        while type(message := _decode(_receive(fd, reader.path))) is Batch:
            stats.done, stats.lines, stats.events, stats.malformed = (
                message.done, message.lines, message.events, message.malformed)
            names += message.names
            events: list[Item] = levels.unpack(message.books, names)
            latest = levels.newest(message.books, -1)
            for at, other in message.others:
                event = _event(other) if type(other) is PlainBook else t.cast(MarketsLoaded, other)
                events.insert(at, event)
                latest = max(latest, event.ts_init)
            if events:
                stats.newest = latest
                yield events
        final = t.cast(Final, message)
        if final.error:
            raise DataError(final.error)
        stats.done, stats.lines, stats.events = final.done, final.lines, final.events
        stats.malformed, stats.examples = final.malformed, list(final.examples)
        stats.reasons = dict(final.reasons)
    finally:
        os.close(fd)
        if worker.poll() is None:
            worker.terminate()
        worker.wait()


def _event(book: PlainBook) -> BookUpdate:
    return BookUpdate(venue=book.venue, symbol=book.symbol, bids=book.bids, asks=book.asks,
                      ts_event=book.ts_event, ts_init=book.ts_init)


def _widen(fd: int) -> None:
    """Let the pipe hold a whole message where Linux allows it (the default 64 KiB makes the two
    processes take turns for every 64 KiB)."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), MESSAGE_BYTES)
    except (ImportError, OSError):  # another OS, or a lower limit: the default works, slower
        pass


def _receive(fd: int, path: Path) -> bytearray:
    """The next message, read straight into a buffer of its size."""
    size = _LENGTH.unpack(_read(fd, _LENGTH.size, path))[0]
    return _read(fd, size, path)


def _read(fd: int, size: int, path: Path) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if not n:
            raise DataError(f"{path}: the decoding process ended unexpectedly")
        got += n
    return buffer


def _send(fd: int, message: Batch | Final) -> None:
    """Write one message, preceded by its length."""
    data = _encode(message)
    os.write(fd, _LENGTH.pack(len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Packer:
    """The worker's side: the message being filled and the names it has defined."""

    def __init__(self, reader: JsonLinesReader) -> None:
        self.reader = reader
        self.stats = reader.stats
        self.venues: dict[str, int] = {}
        self.symbols: dict[str, int] = {}
        """Ids of the names defined so far (one numbering): a symbol only once it passed the
        reader's BASE/QUOTE check, so ``levels.pack_lines`` never takes a line the reader rejects."""
        self.names: list[str] = []
        self.books: list[levels.BookRecord] = []
        self.others: list[tuple[int, Other]] = []

    def chunk(self, chunk: memoryview, line: int) -> int:
        """Pack one chunk of whole lines; returns the lines read (as the reader counts them).

        Lines all in the recorder's own layout are read by ``levels.pack_chunk`` in one pass;
        otherwise msgspec decodes the chunk, ``levels.pack_lines`` packs the exact book lines it
        can, and the reader's own code does the rest (announcements, the first line of a new venue
        or symbol, one-sided or malformed books; a chunk that does not decode whole goes line by line).
        """
        stats, books, reader = self.stats, self.books, self.reader
        count = levels.pack_chunk(books, self.venues, self.symbols, chunk)
        if count >= 0:
            stats.events += count
            return count
        try:
            items = exact.decode_lines(chunk)
        except DecodeErrors:
            events, count = reader.decode(chunk, line)
            self.put(events)
            return count
        count, i = len(items), 0
        while (done := levels.pack_lines(books, self.venues, self.symbols, items, i, BookLine)) < count:
            stats.events += done - i
            item = items[done]
            if type(item) is BookLine and reader.symbol_ok(item.symbol):
                self.name_id(self.venues, item.venue)
                self.name_id(self.symbols, item.symbol)
                packed = levels.pack_lines(books, self.venues, self.symbols, items, done, BookLine)
                if packed > done:  # it was the first of a new venue or symbol
                    stats.events += packed - done
                    i = packed
                    continue
            converted: list[Item] = []
            reader.convert(item, line + done, converted)
            self.put(converted)
            i = done + 1
        stats.events += count - i
        return count

    def name_id(self, ids: dict[str, int], name: str) -> int:
        """The id of ``name`` in ``ids``, defined (sent in ``Batch.names``) the first time."""
        found = ids.get(name)
        if found is None:
            found = ids[name] = len(self.venues) + len(self.symbols)
            self.names.append(name)
        return found

    def put(self, events: list[Item]) -> None:
        """Append events the reader made, as book records where it can, else as ``Other`` items."""
        self.stats.events += len(events)
        for event in events:
            if type(event) is BookUpdate:
                book = t.cast(BookUpdate, event)
                venue = self.name_id(self.venues, book.venue)
                if levels.pack_book(self.books, venue, self.name_id(self.symbols, book.symbol), book):
                    continue
                event = PlainBook(venue=book.venue, symbol=book.symbol, bids=tuple(book.bids),
                                  asks=tuple(book.asks), ts_event=book.ts_event, ts_init=book.ts_init)
            self.others.append((len(self.books) + len(self.others), t.cast(Other, event)))

    def full(self) -> bool:
        return len(self.books) >= MESSAGE_BOOKS

    def send(self, fd: int) -> None:
        """Send what is packed, with the progress so far, and start a new message."""
        stats = self.stats
        if not (self.books or self.others or self.names):
            return
        _send(fd, Batch(done=stats.done, lines=stats.lines, events=stats.events, malformed=stats.malformed,
                        names=self.names, books=self.books, others=self.others))
        self.names, self.books, self.others = [], [], []


def _work(path: str, size: int, fd: int) -> None:
    """The worker: decode ``path`` as ``JsonLinesReader`` does and send the events to ``fd``; any
    failure is sent as the final message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the replaying process's to handle
    reader = JsonLinesReader(Path(path), size)
    packer = _Packer(reader)
    try:
        line = 1
        for chunk in reader.chunks():
            count = packer.chunk(chunk, line)
            line += count
            reader.stats.lines += count
            if packer.full():
                packer.send(fd)
        packer.send(fd)
        _send(fd, _final(reader.stats))
    except BaseException as exc:  # the replaying process reports it
        error = str(exc) if isinstance(exc, DataError) else f"{path}: decoding failed: {exc!r}"
        with contextlib.suppress(OSError):  # unless it is gone already
            _send(fd, Final(error=error))
    finally:
        os.close(fd)


def _final(stats: FileStats) -> Final:
    return Final(done=stats.size, lines=stats.lines, events=stats.events, malformed=stats.malformed,
                 reasons=dict(stats.reasons), examples=list(stats.examples))


if __name__ == "__main__":  # the worker: python -m arbitrage.readers.parallel PATH SIZE FD
    _work(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
