"""Decoding a JSON-lines recording in a second process, so that a replay uses two cores.

The replaying process spends about half of each book on reading and checking JSON. For a large
file a worker process (a fresh interpreter running this module) does that instead, with the same
``JsonLinesReader`` code, line numbers and malformed-line accounting, and sends the books in byte
messages (``_records.c``: ``pack_chunk`` / ``pack_lines`` / ``pack_book`` / ``unpack``): fields,
level counts, best levels and each side's checked JSON text, which becomes the ``RawLevels`` of the
rebuilt ``BookUpdate`` without being checked or parsed again. Anything else (announcements, books
of the minimal line form) travels msgpack-encoded. The events, their order and the statistics are
the same as decoding in process; the pipe's buffer keeps the worker at most a message or two
ahead, so memory stays flat.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import multiprocessing
import os
import pickle
import signal
import struct
import subprocess
import sys
import typing as t
from pathlib import Path

import msgspec

from arbitrage.backtest import _levels
from arbitrage.backtest._jsonl import JsonLinesReader, _Book, _DecodeErrors, _exact
from arbitrage.backtest._reader import FileStats, Item
from arbitrage.errors import DataError
from arbitrage.events import AnyEvent, BookUpdate, encode_hook

__all__ = ["MIN_BYTES", "batches", "worth_it"]

MIN_BYTES = 32 * 1024 * 1024
"""Smaller files are decoded in the replaying process: starting the worker (~0.2 s) costs more."""
MESSAGE_BYTES = 512 * 1024
"""A message is sent once it holds this much."""
_PROGRESS = struct.Struct("<qqqq")
"""Each message starts with the worker's bytes done, lines, events and malformed lines so far."""
_U32 = struct.Struct("<I")
"""Name ids and record lengths inside a message."""
_LENGTH64 = struct.Struct("<Q")
_DATA, _FINAL = b"D", b"F"
"""The first byte of a message: events (then ``_PROGRESS`` and records), or the final statistics."""
_encode = msgspec.msgpack.Encoder(enc_hook=encode_hook).encode
_decode = msgspec.msgpack.Decoder(AnyEvent).decode
_exact_lines = _exact.decode_lines


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
        while (message := _receive(fd, reader.path))[0] == _DATA[0]:
            stats.done, stats.lines, stats.events, stats.malformed = _PROGRESS.unpack_from(message, 1)
            events, others = _levels.unpack(message, 1 + _PROGRESS.size, names)
            if others:
                events = [_decode(e) if type(e) is bytes else e for e in events]
            if events:
                yield events
        final: dict[str, t.Any] = pickle.loads(message[1:])
        if "error" in final:
            raise DataError(final["error"])
        stats.done, stats.lines, stats.events = final["done"], final["lines"], final["events"]
        stats.malformed, stats.examples = final["malformed"], [tuple(e) for e in final["examples"]]
    finally:
        os.close(fd)
        if worker.poll() is None:
            worker.terminate()
        worker.wait()


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
    size = _LENGTH64.unpack(_read(fd, _LENGTH64.size, path))[0]
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


def _send(fd: int, kind: bytes, payload: bytes | bytearray) -> None:
    """Write one message: its length, its kind byte (data or final), its payload."""
    os.write(fd, _LENGTH64.pack(1 + len(payload)) + kind)
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


class _Packer:
    """The worker's side: the message being filled and the names it has defined."""

    def __init__(self, reader: JsonLinesReader) -> None:
        self.reader = reader
        self.stats = reader.stats
        self.out = bytearray(_PROGRESS.size)
        self.venues: dict[str, int] = {}
        self.symbols: dict[str, int] = {}
        """Ids of the names defined so far (one numbering): a symbol only once it passed the
        reader's BASE/QUOTE check, so the compiled packers never take a line the reader rejects."""

    def chunk(self, chunk: memoryview, line: int) -> int:
        """Pack one chunk of whole lines; returns the lines read (as the reader counts them).

        Lines all in the recorder's own layout are read by ``pack_chunk`` in one pass; otherwise
        msgspec decodes the chunk, ``pack_lines`` packs the exact book lines it can, and the
        reader's own code does the rest (announcements, the first line of a new venue or symbol,
        one-sided or malformed books; a chunk that does not decode whole goes line by line).
        """
        stats, out = self.stats, self.out
        count = _levels.pack_chunk(out, self.venues, self.symbols, chunk)
        if count >= 0:
            stats.events += count
            return count
        try:
            items = _exact_lines(chunk)
        except _DecodeErrors:
            events, count = self.reader._decode(chunk, line)
            self.put(events)
            return count
        count, i = len(items), 0
        while (done := _levels.pack_lines(out, self.venues, self.symbols, items, i, _Book)) < count:
            stats.events += done - i
            item = items[done]
            if type(item) is _Book and self.reader._symbol_ok(item.symbol):
                self.name_id(self.venues, item.venue)
                self.name_id(self.symbols, item.symbol)
                packed = _levels.pack_lines(out, self.venues, self.symbols, items, done, _Book)
                if packed > done:  # it was the first of a new venue or symbol
                    stats.events += packed - done
                    i = packed
                    continue
            converted: list[Item] = []
            self.reader._convert(item, line + done, converted)
            self.put(converted)
            i = done + 1
        stats.events += count - i
        return count

    def name_id(self, ids: dict[str, int], name: str) -> int:
        """The id of ``name`` in ``ids``, defined (an 'N' record) the first time."""
        found = ids.get(name)
        if found is None:
            found = ids[name] = len(self.venues) + len(self.symbols)
            data = name.encode()
            self.out.extend(b"N" + _U32.pack(found) + _U32.pack(len(data)) + data)
        return found

    def put(self, events: list[Item]) -> None:
        """Append events the reader made, as book records where it can, else msgpack."""
        self.stats.events += len(events)
        for event in events:
            if type(event) is BookUpdate:
                venue = self.name_id(self.venues, event.venue)
                if _levels.pack_book(self.out, venue, self.name_id(self.symbols, event.symbol), event):
                    continue
            data = _encode(event)
            self.out.extend(b"E" + _U32.pack(len(data)) + data)

    def send(self, fd: int) -> None:
        """Send what is packed, with the progress so far, and start a new message."""
        stats = self.stats
        _PROGRESS.pack_into(self.out, 0, stats.done, stats.lines, stats.events, stats.malformed)
        _send(fd, _DATA, self.out)
        del self.out[_PROGRESS.size:]


def _work(path: str, size: int, fd: int) -> None:
    """The worker: decode ``path`` as ``JsonLinesReader`` does and send the events to ``fd``; any
    failure is sent as the final message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the replaying process's to handle
    reader = JsonLinesReader(Path(path), size)
    packer = _Packer(reader)
    try:
        line = 1
        for chunk in reader._chunks():
            count = packer.chunk(chunk, line)
            line += count
            reader.stats.lines += count
            if len(packer.out) >= MESSAGE_BYTES:
                packer.send(fd)
        if len(packer.out) > _PROGRESS.size:
            packer.send(fd)
        _send(fd, _FINAL, pickle.dumps(_final(reader.stats)))
    except BaseException as exc:  # the replaying process reports it
        error = str(exc) if isinstance(exc, DataError) else f"{path}: decoding failed: {exc!r}"
        with contextlib.suppress(OSError):  # unless it is gone already
            _send(fd, _FINAL, pickle.dumps({"error": error}))
    finally:
        os.close(fd)


def _final(stats: FileStats) -> dict[str, t.Any]:
    return {"done": stats.size, "lines": stats.lines, "events": stats.events, "malformed": stats.malformed,
            "examples": stats.examples}


if __name__ == "__main__":  # the worker: python -m arbitrage.backtest._parallel PATH SIZE FD
    _work(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
