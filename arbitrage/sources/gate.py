"""The check a live market source applies to every book before it publishes it (``BookGate``).

Live sources (``ccxt``, ``redis_feed``) take books from outside the process; what comes in may be
broken. A book is rejected -- counted by reason, logged at most once per ``LOG_EVERY_S``, never
published -- when:

* it fails ``arbitrage.book.check_book`` (``level``, ``unsorted``, ``empty``), the one check of every
  source (readers, simulator);
* its exchange timestamp is more than ``FUTURE_NS`` ahead of our receive clock (``future``): the
  exchanges' and our clocks must agree within seconds anyway (Binance refuses signed requests 1 s
  ahead of it), and a book dated ahead would look fresh to every staleness check after its feed
  stopped;
* its exchange timestamp is older than the previous book of that venue and symbol (``older``): the
  book store keeps the latest book it is given, so an older state would replace a newer one. Equal
  timestamps pass (venues stamp in milliseconds; several states can share one). A book dated
  ahead within the tolerance holds the symbol's later books back until the clock reaches it: at
  most ``FUTURE_NS``, or until the feed resubscribes (``forget``).

A book the venue gave no timestamp for is dated with a receive time (``stamped`` False; ours, or a
collector's, which the ``future`` rule still holds to our clock): it is not compared with the
exchange's timestamps (a receive time is later than the exchange time of the
same state by the network's delay, so the next exchange-stamped book would look older).
"""

from __future__ import annotations

import time
import typing as t

from arbitrage.book_check import BOOK_PROBLEMS, check_book

if t.TYPE_CHECKING:
    import collections.abc as c

__all__ = ["FUTURE_NS", "GATE_PROBLEMS", "LOG_EVERY_S", "BookGate", "books_rejected"]

FUTURE_NS = 5 * 1_000_000_000
"""How far ahead of our receive clock a book's exchange timestamp may be."""
LOG_EVERY_S = 10.0
"""At most one log line about rejected books per this many seconds, per source."""

GATE_PROBLEMS: dict[str, str] = {
    **BOOK_PROBLEMS,
    "future": f"an exchange timestamp over {FUTURE_NS // 1_000_000_000} s ahead of our clock",
    "older": "an exchange timestamp older than the previous book of the venue and symbol",
    "timestamp": "a timestamp or sequence number that is not a non-negative integer",
    "schema": "not an order book (a field missing or of the wrong type)",
}
"""What ``BookGate`` rejects, by reason key."""


class BookGate:
    """Checks books (module doc), counts the rejected ones in ``rejected`` and logs them, rate-limited.

    :param log: the run's logger (``ctx.log``).
    :param where: who rejects, for the log line (``"binance feed"``).
    """

    def __init__(self, log: t.Any, where: str) -> None:
        self.log = log
        self.where = where
        self.rejected: dict[str, int] = {}
        """Rejected books per reason (a key of ``GATE_PROBLEMS``)."""
        self._newest: dict[tuple[str, str], int] = {}
        """(venue, symbol) -> the newest exchange timestamp passed."""
        self._next_log = 0.0
        self._unlogged = 0

    def check(self, venue: str, symbol: str, bids: c.Sequence[t.Any], asks: c.Sequence[t.Any],
              ts_event: int, now: int, stamped: bool = True) -> str | None:
        """Why this book must not be published (counted and logged), or None if it may.

        :param ts_event: the book's exchange time, ns; :param now: our receive time, ns.
        :param stamped: False when ``ts_event`` is our receive time (the venue gave none).
        """
        problem = check_book(bids, asks)
        if problem is None:
            if ts_event > now + FUTURE_NS:
                problem = "future"
            elif stamped:
                key = (venue, symbol)
                newest = self._newest.get(key)
                if newest is not None and ts_event < newest:
                    problem = "older"
                else:
                    self._newest[key] = ts_event
        if problem is not None:
            self.reject(venue, symbol, problem)
        return problem

    def forget(self, venue: str) -> None:
        """Forget ``venue``'s timestamps: its feed resubscribes and its books start afresh (the
        book store dropped its books meanwhile, so an older one cannot replace a newer)."""
        for key in [key for key in self._newest if key[0] == venue]:
            del self._newest[key]

    def reject(self, venue: str, symbol: str, reason: str, detail: str = "") -> None:
        """Count one rejected book under ``reason``; log it unless a line was logged less than
        ``LOG_EVERY_S`` ago (that one is then counted in the next line)."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        clock = time.monotonic()
        if clock < self._next_log:
            self._unlogged += 1
            return
        self._next_log = clock + LOG_EVERY_S
        more = f"; {self._unlogged} more rejected since the last line" if self._unlogged else ""
        self._unlogged = 0
        counts = ", ".join(f"{why} {n}" for why, n in sorted(self.rejected.items()))
        self.log.warning("{}: {} {}: book rejected: {} ({}){} (so far: {})", self.where, venue, symbol,
                         reason, detail or GATE_PROBLEMS[reason], more, counts)


def books_rejected(summary: c.Mapping[str, t.Any]) -> dict[str, int]:
    """A source plugin's rejected books per reason, from its summary: its own ``rejected`` (the
    Redis feed, the simulator) or the sum of its venues' (the ccxt source)."""
    parts = [summary] + [v for v in summary.values() if isinstance(v, dict)]
    out: dict[str, int] = {}
    for part in parts:
        rejected = part.get("rejected")
        if isinstance(rejected, dict):
            for reason, count in rejected.items():
                out[reason] = out.get(reason, 0) + count
    return dict(sorted(out.items()))
