"""Reference Binance books built from the recording alone, by Binance's documented rules.

Written apart from the emulator's ``Book`` and from ccxt so tests can hold either against it.
The rules (Binance spot "How to manage a local order book correctly"): start from the REST
snapshot's ``lastUpdateId``; drop every ``depthUpdate`` with ``u <= lastUpdateId``; the first one
applied must have ``U <= lastUpdateId + 1 <= u``; each later one must have ``U`` equal to the
previous ``u + 1``; a quantity is the level's new absolute quantity, ``0`` removes the level.
"""

from __future__ import annotations

import json
import typing as t
from decimal import Decimal

from tests.emulator.recordings import cryptofeed

__all__ = ["ReferenceBook", "reference_books"]


class ReferenceBook(t.NamedTuple):
    """One state of a book: after the diff ending at ``update_id``; levels best first."""

    update_id: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]

    def top(self, depth: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return self.bids[:depth], self.asks[:depth]


def _state(update_id: int, bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal]) -> ReferenceBook:
    return ReferenceBook(update_id, sorted(bids.items(), reverse=True), sorted(asks.items()))


def reference_books(market_id: str) -> dict[int, ReferenceBook]:
    """Every state of ``market_id``'s book (``"NKNUSDT"``) in the Binance recording, by update id:
    the snapshot's, then one per applied diff.

    :raises ValueError: when the recording breaks the sequencing rules (it does not).
    """
    snapshot: dict[str, t.Any] | None = None
    diffs: list[dict[str, t.Any]] = []
    for line in cryptofeed("BINANCE"):
        if line["t"] == "http" and f"/depth?symbol={market_id}&" in line["url"]:
            snapshot = json.loads(line["data"])
        elif line["t"] == "recv":
            frame = json.loads(line["data"])
            data = frame.get("data", frame)
            if data.get("e") == "depthUpdate" and data["s"] == market_id:
                diffs.append(data)
    if snapshot is None:
        raise ValueError(f"no depth snapshot of {market_id} in the recording")
    last = int(snapshot["lastUpdateId"])
    bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
    states = {last: _state(last, bids, asks)}
    first = True
    for diff in diffs:
        begin, end = int(diff["U"]), int(diff["u"])
        if end <= last:
            continue
        if (first and not begin <= last + 1 <= end) or (not first and begin != last + 1):
            raise ValueError(f"{market_id}: diff {begin}..{end} does not follow {last}")
        first = False
        for side, levels in ((bids, diff["b"]), (asks, diff["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)
        last = end
        states[last] = _state(last, bids, asks)
    return states
