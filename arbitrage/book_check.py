"""The one check every book passes before it enters the engine, and again before a strategy sizes
on it: positive finite levels, bids strictly falling, asks strictly rising.

Compiled by Cython where a compiler exists (pure-Python mode, listed in ``arbitrage.compiled``),
run as it is where not; the same file either way. It runs for every book a source reads and for
both books of every route that pays at top of book, where the level walk was a fifth of the
cross-exchange strategy's time interpreted. Each number is taken as ``number + 0.0``, so both ways
agree on what is not a float: a string, None or a Decimal is a type error, an int beyond float
range an overflow, each a malformed level.
"""

from __future__ import annotations

import math
import typing as t

import cython

from arbitrage.readers.levels import RawLevels

__all__ = ["BOOK_PROBLEMS", "check_book", "check_side"]

BOOK_PROBLEMS: dict[str, str] = {
    "level": "a level is not a [price, amount] pair of positive finite numbers",
    "unsorted": "levels out of order (bids must fall and asks rise, strictly)",
    "empty": "no level on either side",
}
"""What ``check_book`` rejects, by the reason key it returns."""

_INF = cython.declare(cython.double, math.inf)


def check_book(bids: t.Sequence[t.Any], asks: t.Sequence[t.Any]) -> str | None:
    """Why a book must not enter the engine (a key of ``BOOK_PROBLEMS``), or None if it may.

    The one check every market source applies where data comes in (readers of recordings and CSV,
    the simulator, the live source): each level a (price, amount) pair of positive finite
    numbers, bids strictly descending, asks strictly ascending, at least one level. Recordings'
    ``RawLevels`` sides make the same checks on the text as they are read (``readers.levels``).

    A crossed book (best bid at or above best ask) passes: it is the venue's state (some feeds
    show one for a moment), it replaces the book it supersedes so nothing trades on that one, and
    every consumer skips crossed books (``book.is_crossed``; the strategies count them).
    """
    if not bids and not asks:
        return "empty"
    return check_side(bids, True) or check_side(asks, False)


def check_side(levels: t.Sequence[t.Any], falling: cython.bint) -> str | None:
    """``check_book`` for one side (``falling`` for bids): "level", "unsorted" or None (empty passes).

    A recording's ``RawLevels`` side passed the same check on its text when it was made: it is not
    walked again, which would parse the levels its lazy form exists not to parse."""
    if type(levels) is RawLevels:
        return None
    last: cython.double = _INF if falling else 0.0
    price: cython.double
    amount: cython.double
    try:
        for p, a in levels:
            price = p + 0.0
            amount = a + 0.0
            if not (0.0 < price < _INF and 0.0 < amount < _INF):
                return "level"
            if (price >= last) if falling else (price <= last):
                return "unsorted"
            last = price
    except (TypeError, ValueError, OverflowError):  # not pairs, or not numbers
        return "level"
    return None
