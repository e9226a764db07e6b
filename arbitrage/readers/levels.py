"""RawLevels: one side of a recorded book, kept as its JSON text until something reads past the top.

A 20-level book side is 40 (price, amount) tuples and 80 floats; building and freeing them is
most of the cost of replaying a recording, yet a strategy reads only the best level of almost
every book. A ``RawLevels`` is checked when it is made (so a malformed line is still rejected at
read time), holds its best level parsed, and parses the rest on the first access beyond it
(iteration, an index > 0, a slice, comparison, hashing): from then on it behaves as the tuple of
(price, amount) tuples it stands for. It is a registered ``collections.abc.Sequence`` with that
ABC's whole interface; it pickles and encodes (``events.encode_hook``) as the plain tuple.

Accepted: JSON numbers of at most 400 characters that are > 0 and whose decimal magnitude is within
1e-300 .. 1e300 (so the parsed float is positive and finite), in pairs, best level first: bid
prices strictly falling, ask prices strictly rising, compared as the decimals the text spells
(magnitude, then digits: no float is made for it). The check walks the text byte by byte (the one
per-byte loop of reading a recording: compiled by Cython, see ``arbitrage.compiled``); every float
comes from msgspec, so the values are exactly msgspec's decoding of the same text.

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

__all__ = ["BookRecord", "RawLevels", "UnsortedLevels", "ask_side", "bid_side", "newest", "pack_book",
           "pack_chunk", "pack_lines", "unpack"]

MAX_NUMBER = cython.declare(cython.Py_ssize_t, 400)
"""Longest number accepted, in characters: it bounds the digits an exponent is read against, so the
magnitude check holds (no market data comes near it)."""
MAX_MAGNITUDE = cython.declare(cython.Py_ssize_t, 300)
"""Largest decimal exponent (either sign) of a number's first significant digit."""

_pairs = msgspec.json.Decoder(tuple[tuple[float, float], ...]).decode
_pair = msgspec.json.Decoder(tuple[float, float]).decode
_MALFORMED = "book levels must be a JSON array of [price, amount] pairs of positive numbers"
_OUT_OF_ORDER = "book levels out of order: bid prices must fall and ask prices rise, strictly"
UNSORTED = cython.declare(cython.Py_ssize_t, -2)
"""What the side check returns for a well-formed side whose prices are out of order."""


class UnsortedLevels(ValueError):
    """A book side whose prices are not strictly falling (bids) or rising (asks)."""

BookRecord = tuple[int, int, int, int, int, int, int, int, Level | None, Level | None, bytes]
"""A book as the decoding process sends it: venue id, symbol id, ts_event, ts_init, bid levels,
ask levels, where the bids' text ends and where the asks' starts in the text, best bid, best ask
(None for an empty side), and the text: the bids' JSON array, then the asks' (with what the line
had between them)."""


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


@cython.final
@cython.cclass
class _Found:
    """What the last ``_side``, ``_number`` or ``_int`` found."""

    count: cython.Py_ssize_t
    """Levels of the side."""
    best: cython.Py_ssize_t
    """Where the best level's ``[`` is."""
    best_stop: cython.Py_ssize_t
    """Just past the best level's ``]``."""
    value: cython.longlong
    """The integer read."""
    first: cython.Py_ssize_t
    """Where the number's first significant digit is."""
    stop: cython.Py_ssize_t
    """Where its significant part ends (its exponent or its end)."""
    magnitude: cython.Py_ssize_t
    """The decimal exponent of its first significant digit."""
    point: cython.Py_ssize_t
    """Where its decimal point is (or would be) from its first significant digit; -1 below 1."""


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(start=cython.Py_ssize_t, whole=cython.Py_ssize_t, digits=cython.Py_ssize_t,
               lead=cython.Py_ssize_t, magnitude=cython.Py_ssize_t, value=cython.Py_ssize_t,
               nonzero=cython.bint, negative=cython.bint, mantissa=cython.Py_ssize_t)
def _number(p: cython.p_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t, found: _Found,
            keyed: cython.bint) -> cython.Py_ssize_t:
    """Check one JSON number at ``i`` (positive, magnitude within +-300, at most 400 characters)
    without reading its value: the position after it, or -1. If ``keyed``, ``found`` gets its
    magnitude and where its significant digits and its point are: what ``_side`` orders prices by
    (amounts need none of it)."""
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
    mantissa = i
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
    if keyed:
        if p[start] != 48:
            found.first = start
            found.point = whole - start
        else:
            found.first = whole + 1 + lead
            found.point = -1
        found.stop = mantissa
        found.magnitude = magnitude
    return i


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(i=cython.Py_ssize_t, j=cython.Py_ssize_t)
def _compare(p: cython.p_uchar, a: cython.Py_ssize_t, a_stop: cython.Py_ssize_t, a_mag: cython.Py_ssize_t,
             b: cython.Py_ssize_t, b_stop: cython.Py_ssize_t, b_mag: cython.Py_ssize_t) -> cython.int:
    """-1, 0 or 1 as the positive number whose significant digits are ``p[a:a_stop]`` (a '.' among
    them skipped) and whose first one has decimal exponent ``a_mag`` is below, equal to or above
    the number ``b``: the decimal values compared exactly, without converting either."""
    if a_mag != b_mag:
        return 1 if a_mag > b_mag else -1
    i = a
    j = b
    while True:
        if i < a_stop and p[i] == 46:  # '.'
            i += 1
        if j < b_stop and p[j] == 46:
            j += 1
        if i >= a_stop or j >= b_stop:
            break
        if p[i] != p[j]:
            return 1 if p[i] > p[j] else -1
        i += 1
        j += 1
    while i < a_stop:  # digits only one of them has: any nonzero one makes it the larger
        if 49 <= p[i] <= 57:
            return 1
        i += 1
    while j < b_stop:
        if 49 <= p[j] <= 57:
            return -1
        j += 1
    return 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.locals(j=cython.Py_ssize_t, n=cython.Py_ssize_t, size=cython.Py_ssize_t, last_size=cython.Py_ssize_t)
def _order(p: cython.p_uchar, found: _Found, first: cython.Py_ssize_t, stop: cython.Py_ssize_t,
           magnitude: cython.Py_ssize_t, point: cython.Py_ssize_t) -> cython.int:
    """-1, 0 or 1 as the number ``found`` describes is below, equal to or above the one the other
    arguments describe (``_Found``'s fields), exactly: by magnitude, then, when their points line
    up (the usual case), by their significant characters as they stand; else digit by digit."""
    if found.magnitude != magnitude:
        return 1 if found.magnitude > magnitude else -1
    if found.point != point:
        return _compare(p, found.first, found.stop, found.magnitude, first, stop, magnitude)
    size = found.stop - found.first
    last_size = stop - first
    n = size if size < last_size else last_size
    j = 0
    while j < n and p[found.first + j] == p[first + j]:
        j += 1
    if j < n:
        return 1 if p[found.first + j] > p[first + j] else -1
    while j < size:  # one is longer: it is larger if a digit it has beyond is not 0
        if 49 <= p[found.first + j] <= 57:
            return 1
        j += 1
    while j < last_size:
        if 49 <= p[first + j] <= 57:
            return -1
        j += 1
    return 0


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(n=cython.Py_ssize_t, k=cython.int, close=cython.uchar, order=cython.int,
               first=cython.Py_ssize_t, stop=cython.Py_ssize_t, magnitude=cython.Py_ssize_t,
               point=cython.Py_ssize_t)
def _side(p: cython.p_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t, found: _Found,
          falling: cython.bint) -> cython.Py_ssize_t:
    """Check ``[[p, a], ...]`` at ``i`` (after any whitespace), prices strictly falling (bids) or
    rising (asks): the position just past its closing bracket, -1 if it is malformed or
    ``UNSORTED`` if it is out of order; ``found`` gets its level count and where its best level is."""
    n = 0
    first = stop = magnitude = point = 0  # the previous price, as ``_number`` described it
    i = _skip_ws(p, i, end)
    if i >= end or p[i] != 91:  # '['
        return -1
    i = _skip_ws(p, i + 1, end)
    if i < end and p[i] == 93:  # ']'
        found.count = 0
        return i + 1
    while True:
        if i >= end or p[i] != 91:
            return -1
        if n == 0:
            found.best = i
        i += 1
        for k in range(2):
            i = _number(p, _skip_ws(p, i, end), end, found, k == 0)
            if i < 0:
                return -1
            if k == 0:
                if n:
                    order = _order(p, found, first, stop, magnitude, point)
                    if order >= 0 if falling else order <= 0:
                        return UNSORTED
                first, stop, magnitude, point = found.first, found.stop, found.magnitude, found.point
            i = _skip_ws(p, i, end)
            close = 93 if k else 44  # ']' after the amount, ',' after the price
            if i >= end or p[i] != close:
                return -1
            i += 1
        if n == 0:
            found.best_stop = i
        n += 1
        i = _skip_ws(p, i, end)
        if i < end and p[i] == 44:  # ','
            i = _skip_ws(p, i + 1, end)
            continue
        if i >= end or p[i] != 93:
            return -1
        found.count = n
        return i + 1


@cython.cfunc
def _checked(text: bytes, found: _Found, falling: cython.bint) -> cython.Py_ssize_t:
    """0 if the whole of ``text`` is one side (whitespace around it aside), else -1 (malformed) or
    ``UNSORTED``."""
    end: cython.Py_ssize_t = len(text)
    stop: cython.Py_ssize_t = _side(text, 0, end, found, falling)
    if stop < 0:
        return stop
    return 0 if _skip_ws(text, stop, end) == end else -1


@cython.cfunc
def _best(text: bytes, found: _Found, offset: cython.Py_ssize_t) -> object:
    """The best level of a side ``_side`` found in ``text``, which starts ``offset`` bytes into what
    was scanned; None when the side is empty."""
    if found.count == 0:
        return None
    return _pair(text[found.best - offset:found.best_stop - offset])


@cython.final
@cython.no_gc  # holds bytes and tuples of floats only: no reference cycle is possible
@cython.freelist(64)
@cython.cclass
class RawLevels:
    """One side of a recorded book as JSON text, parsed past the best level on demand.

    ``RawLevels(text, bids)`` checks ``text`` (bytes or any buffer: a ``msgspec.Raw``) and keeps a
    copy; ``bids`` says which side it is: bid prices must fall, ask prices rise, strictly (compared
    as the decimal numbers the text spells).

    :raises UnsortedLevels: if the prices are out of order.
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

    def __init__(self, data: t.Any, bids: cython.bint) -> None:
        self._check(bytes(data), bids)

    @cython.cfunc
    def _check(self, text: bytes, falling: cython.bint) -> cython.void:
        found = _Found()
        checked: cython.Py_ssize_t = _checked(text, found, falling)
        if checked < 0:
            raise UnsortedLevels(_OUT_OF_ORDER) if checked == UNSORTED else ValueError(_MALFORMED)
        self._text = text
        self._start = 0
        self._stop = len(text)
        self._count = found.count
        self._top = _best(text, found, 0)
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


def bid_side(data: t.Any) -> RawLevels:
    """``RawLevels(data, True)``, without the constructor's argument parsing (the reader's hot path).

    :raises UnsortedLevels: if the prices do not fall strictly. :raises ValueError: if malformed.
    """
    side: RawLevels = RawLevels.__new__(RawLevels)
    side._check(bytes(data), True)
    return side


def ask_side(data: t.Any) -> RawLevels:
    """``RawLevels(data, False)``: see ``bid_side``."""
    side: RawLevels = RawLevels.__new__(RawLevels)
    side._check(bytes(data), False)
    return side


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
    and symbol have ids and whose sides are both non-empty, well formed and in order.

    :returns: the index of the first item left to the caller (announcements, new names, one-sided
        or malformed books), or ``len(items)``. The same checks as ``RawLevels``, without making
        the objects the decoding process would only take apart again.
    """
    i: cython.Py_ssize_t = start
    n: cython.Py_ssize_t = len(items)
    bid_count: cython.Py_ssize_t
    found = _Found()
    while i < n:
        item = items[i]
        if type(item) is not line_type:
            break
        venue = venues.get(item.venue)
        symbol = symbols.get(item.symbol)
        if venue is None or symbol is None:
            break
        bids: bytes = bytes(item.bids)
        if _checked(bids, found, True) < 0 or found.count == 0:
            break
        bid_count = found.count
        best_bid = _best(bids, found, 0)
        asks: bytes = bytes(item.asks)
        if _checked(asks, found, False) < 0 or found.count == 0:
            break
        out.append((venue, symbol, item.ts_event, item.ts_init, bid_count, found.count, len(bids), len(bids),
                    best_bid, _best(asks, found, 0), bids + asks))
        i += 1
    return i


# -- the recorder's own line layout, without msgspec ---------------------------------------------
#
# ``arb record`` writes every book line with the same keys in the same order and no whitespace:
# {"ts":1,"type":"BookUpdate","venue":"v","symbol":"A/B","bids":[...],"asks":[...],"ts_event":1,"ts_init":1}
# (``ts`` optional). ``pack_chunk`` reads such lines in one pass: the per-byte work of finding the
# fields is the side check's anyway, so msgspec's own pass over the same bytes is saved. A chunk
# with any other line (announcements, another layout, escapes in a name, a new venue or symbol, a
# one-sided or malformed book, a blank line) is left whole to msgspec, so counts and line numbers
# are exactly the general path's.

_TS = cython.declare(bytes, b'{"ts":')
_HEAD = cython.declare(bytes, b'"type":"BookUpdate","venue":"')
_SYMBOL = cython.declare(bytes, b',"symbol":"')
_BIDS = cython.declare(bytes, b',"bids":')
_ASKS = cython.declare(bytes, b',"asks":')
_TS_EVENT = cython.declare(bytes, b',"ts_event":')
_TS_INIT = cython.declare(bytes, b',"ts_init":')
_END = cython.declare(bytes, b"}\n")
_INT64_MAX = cython.declare(cython.ulonglong, 9223372036854775807)


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(q=cython.p_uchar, n=cython.Py_ssize_t, k=cython.Py_ssize_t)
def _expect(p: cython.p_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t,
            literal: bytes) -> cython.Py_ssize_t:
    """The position after ``literal`` if the text at ``i`` starts with it, else -1."""
    q = literal
    n = len(literal)
    if i < 0 or end - i < n:
        return -1
    for k in range(n):
        if p[i + k] != q[k]:
            return -1
    return i + n


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(start=cython.Py_ssize_t, v=cython.ulonglong, negative=cython.bint)
def _int(p: cython.p_uchar, i: cython.Py_ssize_t, end: cython.Py_ssize_t, signed: cython.bint,
         found: _Found) -> cython.Py_ssize_t:
    """A JSON integer at ``i`` that fits int64 (and is not negative unless ``signed``) into
    ``found.value``: the position after it, or -1."""
    if i < 0:
        return -1
    negative = i < end and p[i] == 45
    if negative and not signed:
        return -1
    i += negative
    start = i
    v = 0
    while i < end and _is_digit(p[i]) and i - start < 19:
        v = v * 10 + (p[i] - 48)
        i += 1
    if i == start or (i < end and _is_digit(p[i])) or (p[start] == 48 and i - start > 1) or v > _INT64_MAX:
        return -1
    found.value = -cython.cast(cython.longlong, v) if negative else cython.cast(cython.longlong, v)
    return i


@cython.cfunc
@cython.locals(start=cython.Py_ssize_t)
def _name(data: bytes, i: cython.Py_ssize_t, end: cython.Py_ssize_t, ids: dict, found: _Found) -> object:
    """The id of the name (a JSON string without escapes, ending at the next quote) at ``i`` if
    ``ids`` has it, else None; ``found.value`` gets the position after its closing quote."""
    p: cython.p_uchar = data
    start = i
    while i < end and p[i] != 34:  # '"'
        if p[i] == 92 or p[i] < 32:  # an escape or a control character: msgspec decides
            return None
        i += 1
    if i >= end:
        return None
    try:
        name = data[start:i].decode()
    except UnicodeDecodeError:  # msgspec reports it
        return None
    found.value = i + 1
    return ids.get(name)


@cython.cfunc
@cython.locals(i=cython.Py_ssize_t, bids=cython.Py_ssize_t, bids_stop=cython.Py_ssize_t,
               asks=cython.Py_ssize_t, bid_count=cython.Py_ssize_t, ask_count=cython.Py_ssize_t,
               best=cython.Py_ssize_t, best_stop=cython.Py_ssize_t, ts_event=cython.longlong)
def _line(out: list, venues: dict, symbols: dict, data: bytes, at: cython.Py_ssize_t, end: cython.Py_ssize_t,
          found: _Found) -> cython.Py_ssize_t:
    """Read one line of the recorder's layout at ``at`` and append its record: the position after
    it, or -1 if it is not that layout (nothing appended)."""
    p: cython.p_uchar = data
    i = _expect(p, at, end, _TS)
    i = _expect(p, _int(p, i, end, True, found), end, b",") if i >= 0 else _expect(p, at, end, b"{")
    i = _expect(p, i, end, _HEAD)
    if i < 0:
        return -1
    venue = _name(data, i, end, venues, found)
    if venue is None:
        return -1
    i = _expect(p, found.value, end, _SYMBOL)
    if i < 0:
        return -1
    symbol = _name(data, i, end, symbols, found)
    if symbol is None:
        return -1
    i = _expect(p, found.value, end, _BIDS)
    if i < 0:
        return -1
    bids = i
    bids_stop = _side(p, i, end, found, True)
    if bids_stop < 0 or found.count == 0:
        return -1
    bid_count = found.count
    best = found.best - bids
    best_stop = found.best_stop - bids
    asks = _expect(p, bids_stop, end, _ASKS)
    if asks < 0:
        return -1
    i = _side(p, asks, end, found, False)
    if i < 0 or found.count == 0:
        return -1
    text: bytes = data[bids:i]
    best_bid = _pair(text[best:best_stop])
    best_ask = _best(text, found, bids)
    ask_count = found.count
    i = _int(p, _expect(p, i, end, _TS_EVENT), end, False, found)
    ts_event = found.value
    i = _expect(p, _int(p, _expect(p, i, end, _TS_INIT), end, False, found), end, _END)
    if i < 0:
        return -1
    out.append((venue, symbol, ts_event, found.value, bid_count, ask_count, bids_stop - bids, asks - bids,
                best_bid, best_ask, text))
    return i


def pack_chunk(out: list[BookRecord], venues: dict[str, int], symbols: dict[str, int], chunk: t.Any) -> int:
    """Lines packed when every line of ``chunk`` (whole lines) has the recorder's layout and known
    names, else -1 with ``out`` as it was."""
    data: bytes = bytes(chunk)
    end: cython.Py_ssize_t = len(data)
    before: cython.Py_ssize_t = len(out)
    at: cython.Py_ssize_t = 0
    lines: cython.Py_ssize_t = 0
    found = _Found()
    while at < end:
        at = _line(out, venues, symbols, data, at, end, found)
        if at < 0:
            del out[before:]
            return -1
        lines += 1
    return lines


def pack_book(out: list[BookRecord], venue: int, symbol: int, book: BookUpdate) -> bool:
    """Append a record for ``book`` if both its sides are ``RawLevels``; False (nothing appended) if not."""
    bids, asks = book.bids, book.asks
    if type(bids) is not RawLevels or type(asks) is not RawLevels:
        return False
    b: RawLevels = bids
    a: RawLevels = asks
    split: cython.Py_ssize_t = b._stop - b._start
    out.append((venue, symbol, book.ts_event, book.ts_init, b._count, a._count, split, split, b._top, a._top,
                b._text[b._start:b._stop] + a._text[a._start:a._stop]))
    return True


def newest(records: list[BookRecord], start: cython.longlong) -> int:
    """The latest receive time (``ts_init``) among ``records`` and ``start``: what the replay needs
    of a batch to see that no book in it jumps ahead, without touching the events."""
    best: cython.longlong = start
    ts: cython.longlong
    record: tuple
    for record in records:
        ts = record[3]
        if ts > best:
            best = ts
    return best


def unpack(records: list[BookRecord], names: list[str]) -> list[BookUpdate]:
    """``BookUpdate`` events of records, sides ``RawLevels`` over each record's text; ``names`` are
    the venue and symbol names by id.

    :raises ValueError: for a record that cannot have come from ``pack_lines`` or ``pack_book``.
    """
    out: list[BookUpdate] = []
    known: cython.Py_ssize_t = len(names)
    venue: cython.Py_ssize_t
    symbol: cython.Py_ssize_t
    bids_stop: cython.Py_ssize_t
    asks: cython.Py_ssize_t
    size: cython.Py_ssize_t
    record: tuple
    for record in records:
        venue, symbol, bids_stop, asks = record[0], record[1], record[6], record[7]
        text: bytes = record[10]
        size = len(text)
        if not (0 <= venue < known and 0 <= symbol < known and 0 <= bids_stop <= asks <= size):
            raise ValueError("corrupt message from the decoding process")
        out.append(BookUpdate(venue=names[venue], symbol=names[symbol],
                              bids=_trusted(text, 0, bids_stop, record[4], record[8]),
                              asks=_trusted(text, asks, size, record[5], record[9]),
                              ts_event=record[2], ts_init=record[3]))
    return out
