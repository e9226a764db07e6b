"""RawLevels: one side of a recorded book, kept as its JSON text until something reads past the top.

A 20-level book side is 40 (price, amount) tuples and 80 floats; building and freeing them is
most of the cost of replaying a recording, yet a strategy reads only the best level of almost
every book. A ``RawLevels`` is checked when it is made (so a malformed line is still rejected at
read time), holds its best level parsed, and parses the rest on the first access beyond it
(iteration, an index > 0, a slice, comparison, hashing): from then on it behaves as the tuple of
(price, amount) tuples it stands for. It is a registered ``collections.abc.Sequence`` with that
ABC's whole interface; it pickles and encodes (``events.encode_hook``) as the plain tuple.

Accepted: JSON numbers of at most 400 characters that are > 0 and whose decimal magnitude is within
1e-300 .. 1e300 (so the parsed float is positive and finite), in pairs, best level first as
recorded. The check walks the text byte by byte (the one per-byte loop of reading a recording:
compiled by Cython, see ``arbitrage.compiled``); every float comes from msgspec, so the values
are exactly msgspec's decoding of the same text.

The decoding process (``arbitrage.readers.parallel``) checks each side once and sends the
replaying process ``BookRecord`` tuples: ``pack_lines``/``pack_book`` make them, ``unpack`` turns
them into ``BookUpdate`` events whose sides are ``RawLevels`` over the record's text, without
checking or parsing it again.
"""

from __future__ import annotations

import collections.abc as c
import sys
import typing as t

import cython
import msgspec

from arbitrage.events import BookUpdate, Level

__all__ = ["BookRecord", "RawLevels", "pack_book", "pack_lines", "unpack"]

MAX_NUMBER = 400
"""Longest number accepted, in characters: it bounds the digits an exponent is read against, so the
magnitude check holds (no market data comes near it)."""
MAX_MAGNITUDE = 300
"""Largest decimal exponent (either sign) of a number's first significant digit."""

_pairs = msgspec.json.Decoder(tuple[tuple[float, float], ...]).decode
_pair = msgspec.json.Decoder(tuple[float, float]).decode
_MALFORMED = "book levels must be a JSON array of [price, amount] pairs of positive numbers"

BookRecord = tuple[int, int, int, int, int, int, int, Level | None, Level | None, bytes]
"""A book as the decoding process sends it: venue id, symbol id, ts_event, ts_init, bid levels,
ask levels, length of the bids' text, best bid, best ask (None for an empty side), and the bids'
JSON text followed by the asks'."""


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _is_digit(ch: cython.uchar) -> cython.bint:
    return 48 <= ch <= 57  # '0'..'9'


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _skip_ws(p: cython.p_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t) -> cython.Py_ssize_t:
    while i < end and (p[i] == 32 or p[i] == 10 or p[i] == 13 or p[i] == 9):
        i += 1
    return i


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(start=cython.Py_ssize_t, whole=cython.Py_ssize_t, digits=cython.Py_ssize_t,
               lead=cython.Py_ssize_t, magnitude=cython.Py_ssize_t, value=cython.Py_ssize_t,
               nonzero=cython.bint, negative=cython.bint)
def _number(p: cython.p_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """Check one JSON number at ``i`` (positive, magnitude within +-300, at most 400 characters)
    without reading its value: the position after it, or -1."""
    start = i
    nonzero = False
    lead = 0  # zeros after the point before the first nonzero digit, when the integer part is 0
    if i >= end or not _is_digit(p[i]):
        return -1  # no sign allowed: prices and amounts are positive
    if p[i] == 48:
        i += 1
        if i < end and _is_digit(p[i]):
            return -1  # JSON forbids leading zeros
    else:
        while i < end and _is_digit(p[i]):
            i += 1
        nonzero = True
    whole = i
    if i < end and p[i] == 46:  # '.'
        i += 1
        digits = i
        if not nonzero:
            while i < end and p[i] == 48:
                i += 1
            lead = i - digits
        while i < end and _is_digit(p[i]):
            if p[i] != 48:
                nonzero = True
            i += 1
        if i == digits:
            return -1
    if not nonzero:
        return -1  # zero
    magnitude = whole - start - 1 if p[start] != 48 else -lead - 1
    if i < end and (p[i] == 101 or p[i] == 69):  # 'e', 'E'
        i += 1
        negative = False
        if i < end and (p[i] == 43 or p[i] == 45):  # '+', '-'
            negative = p[i] == 45
            i += 1
        digits = i
        value = 0
        while i < end and _is_digit(p[i]):
            if value < 100000:
                value = value * 10 + (p[i] - 48)
            i += 1
        if i == digits:
            return -1
        magnitude += -value if negative else value
    if magnitude < -MAX_MAGNITUDE or magnitude > MAX_MAGNITUDE or i - start > MAX_NUMBER:
        return -1
    return i


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, k=cython.int, close=cython.uchar)
def _count(p: cython.p_uchar, end: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """The levels of ``p[:end]`` if it is ``[[p, a], ...]`` and nothing else (whitespace aside), else -1."""
    n = 0
    i = _skip_ws(p, 0, end)
    if i >= end or p[i] != 91:  # '['
        return -1
    i = _skip_ws(p, i + 1, end)
    if i < end and p[i] == 93:  # ']'
        return 0 if _skip_ws(p, i + 1, end) == end else -1
    while True:
        if i >= end or p[i] != 91:
            return -1
        i += 1
        for k in range(2):
            i = _number(p, _skip_ws(p, i, end), end)
            if i < 0:
                return -1
            i = _skip_ws(p, i, end)
            close = 93 if k else 44  # ']' after the amount, ',' after the price
            if i >= end or p[i] != close:
                return -1
            i += 1
        n += 1
        i = _skip_ws(p, i, end)
        if i < end and p[i] == 44:  # ','
            i = _skip_ws(p, i + 1, end)
            continue
        if i >= end or p[i] != 93:
            return -1
        return n if _skip_ws(p, i + 1, end) == end else -1


@cython.cfunc
def _best(text: bytes) -> object:
    """The best level of a checked, non-empty side: its first ``[...]`` inside the outer one."""
    first: cython.Py_ssize_t = text.find(b"[", text.find(b"[") + 1)
    return _pair(text[first:text.find(b"]", first) + 1])


@cython.final
@cython.no_gc  # holds bytes and tuples of floats only: no reference cycle is possible
@cython.freelist(64)
@cython.cclass
class RawLevels:
    """One side of a recorded book as JSON text, parsed past the best level on demand.

    ``RawLevels(text)`` checks ``text`` (bytes or any buffer: a ``msgspec.Raw``) and keeps a copy.

    :raises ValueError: if it is not a JSON array of [price, amount] pairs of positive numbers.
    """

    _text: bytes
    _start: cython.Py_ssize_t
    _stop: cython.Py_ssize_t
    _count: cython.Py_ssize_t
    _top: object
    """(price, amount) of the best level, or None when empty."""
    _full: object
    """The tuple of every level once parsed, else None."""

    def __init__(self, data: t.Any) -> None:
        text: bytes = bytes(data)
        count: cython.Py_ssize_t = _count(text, len(text))
        if count < 0:
            raise ValueError(_MALFORMED)
        self._text = text
        self._start = 0
        self._stop = len(text)
        self._count = count
        self._top = _best(text) if count else None
        self._full = None

    @cython.cfunc
    def _levels(self) -> tuple:
        if self._full is None:
            self._full = _pairs(self._text[self._start:self._stop])
        return self._full

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, key: t.Any) -> t.Any:
        i: cython.Py_ssize_t
        if isinstance(key, int):
            i = key
            if i < 0:
                i += self._count
            if i == 0 and self._count:
                return self._top
            if i < 0 or i >= self._count:
                raise IndexError("book level index out of range")
            return self._levels()[i]
        return self._levels()[key]

    def __iter__(self) -> c.Iterator[Level]:
        return iter(self._levels())

    def __reversed__(self) -> c.Iterator[Level]:
        return reversed(self._levels())

    def __contains__(self, value: object) -> bool:
        return value in self._levels()

    def index(self, value: t.Any, start: int = 0, stop: int = sys.maxsize) -> int:
        return self._levels().index(value, start, stop)

    def count(self, value: t.Any) -> int:
        return self._levels().count(value)

    def __eq__(self, other: object) -> bool:
        same: RawLevels
        if isinstance(other, RawLevels):
            same = other
            other = same._levels()
        return self._levels() == other

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self._levels())

    def __repr__(self) -> str:
        return repr(self._levels())

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (tuple, (self._levels(),))


c.Sequence.register(RawLevels)


@cython.cfunc
def _trusted(text: bytes, start: cython.Py_ssize_t, stop: cython.Py_ssize_t, count: cython.Py_ssize_t,
             top: object) -> RawLevels:
    """A RawLevels over ``text[start:stop]``, checked already by the process that sent it."""
    side: RawLevels = RawLevels.__new__(RawLevels)
    side._text = text
    side._start = start
    side._stop = stop
    side._count = count
    side._top = top
    side._full = None
    return side


def pack_lines(out: list[BookRecord], venues: dict[str, int], symbols: dict[str, int], items: list[t.Any],
               start: cython.Py_ssize_t, line_type: t.Any) -> int:
    """Append a record to ``out`` for each item from ``start`` on while it is a ``line_type`` (a
    decoded line: venue, symbol, bids and asks as ``msgspec.Raw``, ts_event, ts_init) whose venue
    and symbol have ids and whose sides are both non-empty and well formed.

    :returns: the index of the first item left to the caller (announcements, new names, one-sided
        or malformed books), or ``len(items)``. The same checks as ``RawLevels``, without making
        the objects the decoding process would only take apart again.
    """
    i: cython.Py_ssize_t = start
    n: cython.Py_ssize_t = len(items)
    bid_count: cython.Py_ssize_t
    ask_count: cython.Py_ssize_t
    while i < n:
        item = items[i]
        if type(item) is not line_type:
            break
        venue = venues.get(item.venue)
        symbol = symbols.get(item.symbol)
        if venue is None or symbol is None:
            break
        bids: bytes = bytes(item.bids)
        bid_count = _count(bids, len(bids))
        if bid_count <= 0:
            break
        asks: bytes = bytes(item.asks)
        ask_count = _count(asks, len(asks))
        if ask_count <= 0:
            break
        out.append((venue, symbol, item.ts_event, item.ts_init, bid_count, ask_count, len(bids), _best(bids),
                    _best(asks), bids + asks))
        i += 1
    return i


def pack_book(out: list[BookRecord], venue: int, symbol: int, book: BookUpdate) -> bool:
    """Append a record for ``book`` if both its sides are ``RawLevels``; False (nothing appended) if not."""
    bids, asks = book.bids, book.asks
    if type(bids) is not RawLevels or type(asks) is not RawLevels:
        return False
    b: RawLevels = bids
    a: RawLevels = asks
    bid_text = b._text[b._start:b._stop]
    out.append((venue, symbol, book.ts_event, book.ts_init, b._count, a._count, len(bid_text), b._top, a._top,
                bid_text + a._text[a._start:a._stop]))
    return True


def unpack(records: list[BookRecord], names: list[str]) -> list[BookUpdate]:
    """``BookUpdate`` events of records, sides ``RawLevels`` over each record's text; ``names`` are
    the venue and symbol names by id.

    :raises ValueError: for a record that cannot have come from ``pack_lines`` or ``pack_book``.
    """
    out: list[BookUpdate] = []
    known: cython.Py_ssize_t = len(names)
    venue: cython.Py_ssize_t
    symbol: cython.Py_ssize_t
    split: cython.Py_ssize_t
    size: cython.Py_ssize_t
    record: tuple
    for record in records:
        venue, symbol, split = record[0], record[1], record[6]
        text: bytes = record[9]
        size = len(text)
        if not (0 <= venue < known and 0 <= symbol < known and 0 <= split <= size):
            raise ValueError("corrupt message from the decoding process")
        out.append(BookUpdate(venue=names[venue], symbol=names[symbol],
                              bids=_trusted(text, 0, split, record[4], record[7]),
                              asks=_trusted(text, split, size, record[5], record[8]),
                              ts_event=record[2], ts_init=record[3]))
    return out
