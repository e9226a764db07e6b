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


class FileStats:
    """What one reader read: lines, events, and the malformed lines it skipped."""

    def __init__(self, path: str, format: str, size: int) -> None:
        self.path = path
        self.format = format
        self.size = size
        """Total work units (bytes, or rows for SQLite), for progress."""
        self.done = 0
        self.lines = 0
        self.events = 0
        self.malformed = 0
        self.examples: list[tuple[int, str]] = []
        """(line number, reason) of the first malformed lines."""

    def bad(self, line: int, reason: str) -> None:
        """Count one malformed line (the first ``MAX_EXAMPLES`` keep their number and reason)."""
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((line, reason.splitlines()[0][:200] if reason else "malformed"))

    def to_dict(self) -> dict[str, t.Any]:
        return {"path": self.path, "format": self.format, "lines": self.lines, "events": self.events,
                "malformed": self.malformed,
                "examples": [{"line": n, "reason": why} for n, why in self.examples]}


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

    @abc.abstractmethod
    def symbols(self) -> Symbols | None:
        """Every venue and valid symbol the file has books for, from a quick pass over it (no stats
        counted); None when the file announces its own markets (``MarketsLoaded`` lines first)."""
