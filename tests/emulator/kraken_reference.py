"""Reference books built straight from Kraken's recorded v1 frames, to judge what ccxt.pro ends with.

Independent of the emulator's path on purpose (`kraken_feed` re-encodes to v2, the emulator keeps
books, ccxt.pro applies v2 messages): this works on the recorded strings themselves, keyed by the
price text, and proves itself against Kraken: after every update its v1 checksum (CRC32 of the best
10 asks then bids, digits of the recorded strings without ``.`` and leading zeros) must equal the
``c`` Kraken sent. A v1 subscription at depth D is kept at D levels a side after each update, as
Kraken's book guide requires (levels pushed out are not deleted on the wire).
"""

from __future__ import annotations

import heapq
import json
import typing as t
import zlib
from decimal import Decimal

from tests.emulator.recordings import cryptofeed

__all__ = ["ReferenceBooks"]


class ReferenceBooks:
    """v1 books by v1 pair name (``"XBT/CHF"``), each side ``{price text: qty text}``."""

    def __init__(self, depth: int = 1000) -> None:
        self.depth = depth
        self.books: dict[str, dict[str, dict[str, str]]] = {}

    @staticmethod
    def messages() -> t.Iterator[list[t.Any]]:
        """The recorded v1 book messages (arrays whose channel name starts ``book-``), in order."""
        for item in cryptofeed("KRAKEN"):
            if item["t"] == "recv":
                message = json.loads(item["data"])
                if isinstance(message, list) and str(message[-2]).startswith("book-"):
                    yield message

    def apply(self, message: list[t.Any]) -> tuple[str, int | None]:
        """Apply one v1 message; return its pair and the checksum Kraken sent (None in a snapshot)."""
        pair, parts = message[-1], message[1:-2]
        if "as" in parts[0]:
            self.books[pair] = {"a": {p: q for p, q, *_ in parts[0]["as"]},
                                "b": {p: q for p, q, *_ in parts[0]["bs"]}}
            return pair, None
        book, sent = self.books[pair], None
        for part in parts:
            for side in ("a", "b"):
                for price, qty, *_ in part.get(side, ()):
                    if Decimal(qty) == 0:
                        book[side].pop(price, None)
                    else:
                        book[side][price] = qty
            sent = int(part["c"]) if "c" in part else sent
        for side, worst in (("a", max), ("b", min)):
            while len(book[side]) > self.depth:
                del book[side][worst(book[side], key=Decimal)]
        return pair, sent

    def top(self, pair: str, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Best ``n`` asks (ascending) and bids (descending) as recorded text."""
        book = self.books[pair]
        asks = heapq.nsmallest(n, book["a"].items(), key=lambda level: Decimal(level[0]))
        bids = heapq.nlargest(n, book["b"].items(), key=lambda level: Decimal(level[0]))
        return asks, bids

    def checksum(self, pair: str) -> int:
        """Kraken's v1 checksum of the book, from the recorded strings."""
        asks, bids = self.top(pair, 10)
        return zlib.crc32("".join(
            (p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")) for p, q in asks + bids
        ).encode())
