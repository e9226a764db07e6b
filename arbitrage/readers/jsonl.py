"""JSON-lines recordings (plain or ``.zst``): the exact form decodes straight to events, the minimal
form (``ts`` in ms and any subset of fields) line by line. See ``docs/formats.md``.

msgspec decodes the lines; book sides of exact lines are kept as their JSON text and become
``RawLevels`` (``arbitrage.readers.levels``): checked at once, parsed past the best level only
when something reads deeper, which most books never need.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import typing as t
from pathlib import Path

import msgspec
from msgspec import Meta

from arbitrage.book import check_book
from arbitrage.errors import DataError
from arbitrage.events import BookUpdate, MarketsLoaded
from arbitrage.readers.contract import Item, Reader, Symbols, is_pair
from arbitrage.readers.levels import UnsortedLevels, ask_side, bid_side

CHUNK = 32 * 1024
"""Bytes decoded per step: small enough to stay in the CPU cache, large enough to amortise calls."""
BLOCK = 64 * 1024
"""Bytes read from the file (or the zstd stream) at a time."""

_Positive = t.Annotated[float, Meta(gt=0)]
Levels = tuple[tuple[_Positive, _Positive], ...]
"""Book levels as decoded: pairs of positive numbers (``check_book`` then rejects infinities and
levels out of order)."""
_Venue = t.Annotated[str, Meta(min_length=1)]
_Ns = t.Annotated[int, Meta(ge=0, le=2**63 - 1)]
"""A timestamp in ns since the epoch, as the events carry it (int64)."""
_MAX_MS = (2**63 - 1) // 1_000_000
"""The largest ``ts`` (ms) whose ns fit in int64."""


class BookLine(msgspec.Struct, tag="BookUpdate", frozen=True, gc=False):
    """A recorded ``BookUpdate`` line; its sides are checked when they are converted (``_side``)."""

    venue: _Venue
    symbol: str
    bids: msgspec.Raw
    asks: msgspec.Raw
    ts_event: _Ns
    ts_init: _Ns
    seq: int = 0


class _Loose(msgspec.Struct, frozen=True, gc=False):
    """The minimal line: ``ts`` in ms (int or float) and any subset of the exact fields."""

    venue: _Venue
    symbol: str
    bids: Levels = ()
    asks: Levels = ()
    ts: t.Annotated[int, Meta(ge=0, le=_MAX_MS)] | t.Annotated[float, Meta(ge=0, le=_MAX_MS)] | None = None
    ts_event: _Ns | None = None
    ts_init: _Ns | None = None
    type: str = "BookUpdate"


class _Key(msgspec.Struct, frozen=True, gc=False):
    """Only what the market pre-scan needs from a line (the rest is skipped, not converted)."""

    venue: str = ""
    symbol: str = ""
    type: str = "BookUpdate"


exact = msgspec.json.Decoder(BookLine | MarketsLoaded)
"""Decodes the exact form: a ``BookLine`` or a ``MarketsLoaded`` per line."""
_loose = msgspec.json.Decoder(_Loose)
_key = msgspec.json.Decoder(_Key)
DecodeErrors = (msgspec.ValidationError, msgspec.DecodeError)
"""What msgspec raises for a line that does not decode."""
_SideErrors = (ValueError, *DecodeErrors)
"""What ``_side`` raises for a malformed side (msgspec's errors are ValueErrors too)."""
_bids: c.Callable[[msgspec.Raw], t.Sequence[tuple[float, float]]] = bid_side
"""The bids of an exact line, checked: pairs of positive numbers, best first, prices falling;
raises ``UnsortedLevels`` for prices out of order, ``ValueError`` for anything else."""
_asks: c.Callable[[msgspec.Raw], t.Sequence[tuple[float, float]]] = ask_side
"""The asks, likewise (prices rising)."""


def decode_reason(error: Exception) -> str:
    """The ``FileStats`` reason of a line msgspec could not decode: not JSON, a level that is not a
    positive number pair, or another field off the schema."""
    if not isinstance(error, msgspec.ValidationError):  # ValidationError is a DecodeError too
        return "json"
    text = str(error)
    return "level" if "`$.bids" in text or "`$.asks" in text else "schema"


def side_reason(error: Exception) -> str:
    """The ``FileStats`` reason of a side ``_bids`` or ``_asks`` refused."""
    return "unsorted" if isinstance(error, UnsortedLevels) else "level"


def _ms_to_ns(ms: float) -> int:
    whole = int(ms)
    return whole * 1_000_000 + round((ms - whole) * 1_000_000)


def _from_exact(item: BookLine | MarketsLoaded) -> Item:
    """The event of an exact line. :raises ValueError: if a side is malformed."""
    if type(item) is BookLine:
        return BookUpdate(venue=item.venue, symbol=item.symbol, bids=_bids(item.bids), asks=_asks(item.asks),
                          ts_event=item.ts_event, ts_init=item.ts_init, seq=item.seq)
    return t.cast(MarketsLoaded, item)


class JsonLinesReader(Reader):
    """arb recordings; plain or zstd (``.zst``). Lines in the exact form decode straight to events."""

    format = "jsonl"

    def __init__(self, path: Path, size: int) -> None:
        super().__init__(path, size)
        self._symbols: dict[str, bool] = {}

    def symbol_ok(self, symbol: str) -> bool:
        """Whether ``symbol`` is ``BASE/QUOTE`` (remembered per name)."""
        ok = self._symbols.get(symbol)
        if ok is None:
            ok = self._symbols[symbol] = is_pair(symbol)
        return ok

    def chunks(self) -> c.Iterator[memoryview]:
        """Whole lines, about ``CHUNK`` bytes at a time, as views into ``BLOCK``-sized reads (no copy)."""
        with open(self.path, "rb") as raw:
            source: t.Any = raw
            if self.path.name.endswith(".zst"):
                import zstandard

                source = zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)
            try:
                rest = b""
                while True:
                    data = source.read(BLOCK)
                    if not data:
                        break
                    if rest:
                        data = rest + data
                    end = data.rfind(b"\n") + 1
                    rest = data[end:]
                    view = memoryview(data)
                    pos = 0
                    while pos < end:
                        cut = data.rfind(b"\n", pos, pos + CHUNK) + 1 or data.find(b"\n", pos) + 1
                        yield view[pos:cut]
                        pos = cut
                    self.stats.done = raw.tell()
                if rest.strip():
                    yield memoryview(rest + b"\n")
                self.stats.done = self.stats.size
            except _zstd_errors() as exc:
                raise DataError(f"{self.path}: corrupt zstd stream ({exc})") from exc
            finally:
                if source is not raw:
                    source.close()

    def symbols(self) -> Symbols | None:
        """None when the first line is a ``MarketsLoaded`` (an arb recording), else a pass over
        ``venue`` and ``symbol`` of every line (decoded without converting the levels)."""
        found: Symbols = {}
        first = True
        with contextlib.closing(self.chunks()) as chunks:
            for chunk in chunks:
                if first:
                    first = False
                    head = bytes(chunk[:400]).lstrip().split(b"\n", 1)[0].replace(b" ", b"")
                    if b'"type":"MarketsLoaded"' in head:
                        return None
                self._scan(chunk, found)
        self.stats.done = 0
        return found

    def _scan(self, chunk: memoryview, found: Symbols) -> None:
        try:
            keys = _key.decode_lines(chunk)
        except DecodeErrors:
            keys = []
            for line in bytes(chunk).split(b"\n"):
                try:
                    keys.append(_key.decode(line))
                except DecodeErrors:
                    continue
        for key in keys:
            if key.type == "BookUpdate" and key.venue and self.symbol_ok(key.symbol):
                found.setdefault(key.venue, set()).add(key.symbol)

    def convert(self, item: t.Any, line: int, out: list[Item]) -> None:
        """Append the event of one decoded line (exact or minimal form) to ``out``, or count it as
        malformed: the general path of ``decode``, for everything but plain two-sided books."""
        if type(item) is _Loose:
            if item.type != "BookUpdate":
                self.stats.bad(line, "type", f"not a book ({item.type})")
                return
            if item.ts_event is None and item.ts is None:
                self.stats.bad(line, "timestamp", "no timestamp (ts)")
                return
            problem = check_book(item.bids, item.asks)
            if problem is not None:
                self.stats.bad(line, problem)
                return
            ts_event = item.ts_event if item.ts_event is not None else _ms_to_ns(t.cast(float, item.ts))
            ts_init = item.ts_init if item.ts_init is not None else ts_event
            item = BookUpdate(venue=item.venue, symbol=item.symbol, bids=item.bids, asks=item.asks,
                              ts_event=ts_event, ts_init=ts_init)
        else:
            try:
                item = _from_exact(item)
            except _SideErrors as exc:
                self.stats.bad(line, side_reason(exc), str(exc))
                return
        if type(item) is BookUpdate:
            if not self.symbol_ok(item.symbol):
                self.stats.bad(line, "symbol", f"symbol {item.symbol!r} is not BASE/QUOTE")
                return
            if not item.bids and not item.asks:
                self.stats.bad(line, "empty")
                return
        out.append(item)

    def decode(self, chunk: memoryview, first_line: int) -> tuple[list[Item], int]:
        """Decode a chunk of whole lines: the whole chunk at once, else line by line.

        :returns: the events and the number of lines read (the whole-chunk decoder skips blank
            lines, so blank lines are not counted and later line numbers shift by them).
        """
        out: list[Item] = []
        try:
            items = exact.decode_lines(chunk)
        except DecodeErrors:
            pass
        else:
            symbol_ok = self.symbol_ok
            read_bids, read_asks = _bids, _asks
            for i, item in enumerate(items):
                if type(item) is BookLine and symbol_ok(item.symbol):
                    try:
                        bids = read_bids(item.bids)
                        asks = read_asks(item.asks)
                    except _SideErrors as exc:
                        self.stats.bad(first_line + i, side_reason(exc), str(exc))
                        continue
                    if bids and asks:
                        out.append(BookUpdate(venue=item.venue, symbol=item.symbol, bids=bids, asks=asks,
                                              ts_event=item.ts_event, ts_init=item.ts_init))
                        continue
                # rare: markets, one-sided or odd books (line number exact unless blank lines)
                self.convert(item, first_line + i, out)
            return out, len(items)
        lines = bytes(chunk).split(b"\n")
        if not lines[-1]:
            lines.pop()  # the chunk ends with a newline
        for number, line in enumerate(lines, first_line):
            if not line.strip():
                continue
            try:
                item: t.Any = exact.decode(line)
            except DecodeErrors:
                try:
                    item = _loose.decode(line)
                except DecodeErrors as exc:
                    self.stats.bad(number, decode_reason(exc), str(exc))
                    continue
            self.convert(item, number, out)
        return out, len(lines)

    def batches(self) -> c.Iterator[list[Item]]:
        """The events in file order, decoded in this process (``parallel.ParallelJsonLinesReader``
        hands a large file to a second one)."""
        stats = self.stats
        decode = self.decode
        line = 1
        for chunk in self.chunks():
            batch, count = decode(chunk, line)
            line += count
            stats.lines += count
            stats.events += len(batch)
            if batch:
                yield batch


def _zstd_errors() -> tuple[type[BaseException], ...]:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a dependency
        return ()
    return (zstandard.ZstdError,)
