"""The reader contract shared by every replay format: batches of events, stats, a market pre-scan."""

from __future__ import annotations

import abc
import collections.abc as c
import typing as t
from pathlib import Path

from arbitrage.events import BookUpdate, MarketsLoaded

Item = BookUpdate | MarketsLoaded
BATCH = 1024
"""Events per batch handed to the replay (row formats)."""
MAX_EXAMPLES = 5
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "JPY", "TRY", "BRL", "AUD",
          "BTC", "ETH", "BNB")
"""Quote currencies recognised at the end of an exchange symbol without separator (``BTCUSDT``)."""

Symbols = dict[str, set[str]]
"""venue -> symbols (``BASE/QUOTE``)."""


REASONS: dict[str, str] = {
    "json": "not JSON (a truncated or garbled line)",
    "schema": "a field missing, of the wrong type or out of range (venue, timestamps)",
    "type": "an event of another type than a book",
    "symbol": "a symbol that is not BASE/QUOTE",
    "timestamp": "no timestamp",
    "level": "a level that is not a [price, amount] pair of positive finite numbers",
    "unsorted": "levels out of order (bids must fall and asks rise, strictly)",
    "empty": "no level on either side",
    "future": "a receive time far ahead of the books around it (the replay skips it)",
    "unreadable": "the rest of the file cannot be read (CSV or compression error)",
}
"""Why a record was skipped: the keys ``FileStats.reasons`` counts, with what each means."""


class FileStats:
    """What one reader read: lines, events, and the malformed records it skipped, by reason."""

    def __init__(self, path: str, format: str, size: int) -> None:
        self.path = path
        self.format = format
        self.size = size
        """Total work units (bytes, or rows for SQLite), for progress."""
        self.done = 0
        self.lines = 0
        self.events = 0
        self.malformed = 0
        self.reasons: dict[str, int] = {}
        """Skipped records per reason (a key of ``REASONS``)."""
        self.newest: int | None = None
        """The latest ``ts_init`` of the batch just yielded, where the reader knows it without a pass
        over the events (the decoding process's batches); None: whoever needs it computes it."""
        self.examples: list[tuple[int, str]] = []
        """(line number, reason and detail) of the first skipped records; line 0 = not known (the
        replay skipped the event after reading it)."""

    def bad(self, line: int, reason: str, detail: str = "") -> None:
        """Count one skipped record under ``reason`` (a key of ``REASONS``); the first
        ``MAX_EXAMPLES`` keep their line number, reason and detail."""
        assert reason in REASONS, reason
        self.malformed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self.examples) < MAX_EXAMPLES:
            text = detail.splitlines()[0][:200] if detail else REASONS[reason]
            self.examples.append((line, f"{reason}: {text}"))

    def to_dict(self, extra: FileStats | None = None) -> dict[str, t.Any]:
        """The figures as builtins; ``extra``'s skipped records (the replay's own) added in."""
        malformed, reasons, examples = self.malformed, dict(self.reasons), list(self.examples)
        if extra is not None:
            malformed += extra.malformed
            for reason, count in extra.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
            examples = sorted(examples + extra.examples)[:MAX_EXAMPLES]
        return {"path": self.path, "format": self.format, "lines": self.lines, "events": self.events,
                "malformed": malformed, "reasons": dict(sorted(reasons.items())),
                "examples": [{"line": n, "reason": why} for n, why in examples]}


def split_symbol(symbol: str) -> tuple[str, str] | None:
    """``BTC/USDT``, ``BTC-USDT``, ``btc_usdt`` or ``BTCUSDT`` -> ``("BTC", "USDT")``; None if unknown."""
    s = symbol.strip().upper()
    for sep in ("/", "-", "_"):
        if sep in s:
            parts = s.split(sep)
            return (parts[0], parts[1]) if len(parts) == 2 and parts[0] and parts[1] else None
    for quote in QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)], quote
    return None


def is_pair(symbol: str) -> bool:
    """Whether ``symbol`` is ``BASE/QUOTE`` with both parts present."""
    base, sep, quote = symbol.partition("/")
    return bool(sep and base and quote and "/" not in quote)


class Reader(abc.ABC):
    """One file of one format; ``batches`` yields lists of events in file order, then closes it."""

    format: t.ClassVar[str]

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.stats = FileStats(str(path), self.format, size)

    @abc.abstractmethod
    def batches(self) -> c.Iterator[list[Item]]:
        """Events in file order, a batch at a time (a generator: close it to release the file)."""

    def check(self) -> None:
        """Read as much of the file as it takes to tell that it is of this format (a header).

        :raises DataError: if it is not, so that a bad file fails before anything runs.
        """
        return  # a format without a header has nothing to check up front

    @abc.abstractmethod
    def symbols(self) -> Symbols | None:
        """Every venue and valid symbol the file has books for, from a quick pass over it (no stats
        counted); None when the file announces its own markets (``MarketsLoaded`` lines first)."""
