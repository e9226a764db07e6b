"""Kraken's recorded book traffic, re-encoded for the websocket v2 ``book`` channel ccxt.pro reads.

The recording (cryptofeed sample data, ``data/cryptofeed/KRAKEN.jsonl.zst``, Bryant Moscon, licence
in that folder) holds the AssetPairs reply and websocket **v1** frames: arrays such as
``[1360, {"a": [["0.000022910", "15283.79025460", "1618678132.136369"]], "c": "2559161870"},
"book-1000", "ADA/XBT"]``, string prices, ``XBT`` naming, a CRC32 ``c`` in updates only. ccxt.pro
4.5 speaks v2 only: ``{"channel": "book", "type": "snapshot"|"update", "data": [{"symbol": "ADA/BTC",
"bids": [{"price", "qty"}], "asks": [...], "checksum", "timestamp"}]}``.

Kraken's v2 checksum (docs.kraken.com, "Book checksum (WebSocket v2)") is the v1 one: CRC32 of the
top 10 asks (price ascending) then the top 10 bids (descending), each level written as its price
then its quantity with the ``.`` removed and leading zeros stripped, both printed at the full
precision Kraken sends them with. So a level's digits are part of its value here: this module keeps
each market's decimals (`Precision`) and prints every number with them, on the wire and in the
checksum. The digits of the recording are kept as they are (ADA/XBT prices have 9 decimals though
AssetPairs says ``pair_decimals`` 8: the feed's precision, not the pair's).

`load_recording` parses the file once; `BookFrame` is one recorded book message in v2 terms;
`encode_book` builds the v2 JSON text of a snapshot or an update.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import typing as t
import zlib
from dataclasses import dataclass
from decimal import Decimal

from tests.emulator.recordings import cryptofeed

__all__ = ["BookFrame", "Level", "Precision", "Recording", "checksum", "encode_book", "load_recording",
           "parse_recording", "v2_symbol"]

Level = tuple[Decimal, Decimal]
"""(price, quantity); quantity 0 deletes the level in an update."""

_V2_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}  # v2 uses the common names where v1 used Kraken's own


def v2_symbol(wsname: str) -> str:
    """The v2 (and ccxt unified) symbol of a v1 ``wsname``: ``"XBT/CHF"`` -> ``"BTC/CHF"``."""
    return "/".join(_V2_ASSETS.get(part, part) for part in wsname.split("/"))


@dataclass(frozen=True, slots=True)
class Precision:
    """Decimals a market's prices and quantities are printed with (wire and checksum alike)."""

    price: int
    qty: int

    def digits(self, price: Decimal, qty: Decimal) -> str:
        """The level as the checksum reads it: ``45285.2, 0.00100000`` -> ``"452852" + "100000"``."""
        return (_strip(f"{price:.{self.price}f}") + _strip(f"{qty:.{self.qty}f}"))


def _strip(number: str) -> str:
    return number.replace(".", "").lstrip("0")


def checksum(asks: t.Sequence[Level], bids: t.Sequence[Level], precision: Precision) -> int:
    """Kraken's book checksum over the best 10 ``asks`` (ascending) and ``bids`` (descending)."""
    text = "".join(precision.digits(p, q) for p, q in asks[:10]) + "".join(
        precision.digits(p, q) for p, q in bids[:10])
    return zlib.crc32(text.encode())


def _levels(levels: t.Iterable[Level], precision: Precision) -> str:
    # numbers written with their full decimals, as Kraken does (ccxt parses them as floats); a
    # deleted level's quantity is a bare 0, as in Kraken's own updates
    return "[" + ",".join(
        f'{{"price":{p:.{precision.price}f},"qty":{f"{q:.{precision.qty}f}" if q else "0"}}}'
        for p, q in levels) + "]"


def encode_book(kind: t.Literal["snapshot", "update"], symbol: str, asks: t.Sequence[Level],
                bids: t.Sequence[Level], check: int, ts: float, precision: Precision) -> str:
    """The v2 ``book`` message (JSON text) carrying ``asks``/``bids`` and the book's ``check``sum."""
    stamp = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":{json.dumps(symbol)},'
            f'"bids":{_levels(bids, precision)},"asks":{_levels(asks, precision)},'
            f'"checksum":{check},"timestamp":"{stamp}"}}]}}')


@dataclass(frozen=True, slots=True)
class BookFrame:
    """One recorded v1 book message: a snapshot or an update of one market.

    ``ts`` is the latest level timestamp in it (Kraken's time, seconds); ``recorded_checksum`` is
    the ``c`` Kraken sent with an update (None in snapshots), kept to check the books built here.
    """

    symbol: str
    snapshot: bool
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    ts: float
    recorded_checksum: int | None


@dataclass(frozen=True, slots=True)
class Recording:
    """The recorded AssetPairs entries (by pair id) and book frames, in recording order."""

    asset_pairs: dict[str, dict[str, t.Any]]
    frames: tuple[BookFrame, ...]
    precision: dict[str, Precision]
    """Per v2 symbol, the decimals of the recorded prices and quantities."""

    def symbols(self) -> list[str]:
        return sorted(self.precision)


def _decimals(number: str) -> int:
    return len(number.partition(".")[2])


def _frame(message: list[t.Any], precision: dict[str, Precision]) -> BookFrame:
    symbol = v2_symbol(message[-1])
    parts = message[1:-2]  # one dict, or an asks dict then a bids dict
    snapshot = "as" in parts[0] or "bs" in parts[0]
    sides: dict[str, list[Level]] = {"a": [], "b": []}
    stamps: list[float] = []
    recorded: int | None = None
    for part in parts:
        for key, side in (("as", "a"), ("bs", "b"), ("a", "a"), ("b", "b")):
            for level in part.get(key, ()):
                price, qty, stamp = level[0], level[1], level[2]
                if symbol not in precision:
                    precision[symbol] = Precision(_decimals(price), _decimals(qty))
                sides[side].append((Decimal(price), Decimal(qty)))
                stamps.append(float(stamp))
        if "c" in part:
            recorded = int(part["c"])
    return BookFrame(symbol, snapshot, tuple(sides["a"]), tuple(sides["b"]), max(stamps), recorded)


def parse_recording(lines: t.Iterable[dict[str, t.Any]]) -> Recording:
    """Parse the lines of the cryptofeed Kraken file (`recordings.cryptofeed`): its AssetPairs
    reply and every v1 book message. Trade and ticker channels, heartbeats and events are skipped."""
    pairs: dict[str, dict[str, t.Any]] = {}
    frames: list[BookFrame] = []
    precision: dict[str, Precision] = {}
    for item in lines:
        if item["t"] == "http" and item["url"].endswith("/0/public/AssetPairs"):
            pairs = json.loads(item["data"])["result"]
        elif item["t"] == "recv":
            message = json.loads(item["data"])
            if isinstance(message, list) and str(message[-2]).startswith("book-"):
                frames.append(_frame(message, precision))
    return Recording(pairs, tuple(frames), precision)


@functools.cache
def load_recording() -> Recording:
    """The cryptofeed Kraken recording, parsed once per process."""
    return parse_recording(cryptofeed("KRAKEN"))
