"""The real recorded traffic the emulators replay: ``../shared/data`` (see its README for sources).

``cryptofeed/<EXCHANGE>.jsonl.zst`` (cryptofeed sample data, Bryant Moscon; licence in
``cryptofeed/LICENSE``): a header line, then one JSON object a line: ``{"t": "http", "url", "data"}``
replies (exchange info, REST depth snapshots) and websocket ``connect``/``send``/``recv`` frames
with ``ts`` (seconds). ``ccxt/markets/<exchange>.json`` (ccxt, MIT): unified markets with the raw
exchange entry in ``info``.
"""

from __future__ import annotations

import functools
import json
import typing as t
from pathlib import Path

import zstandard

__all__ = ["DATA", "ccxt_markets", "cryptofeed"]

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@functools.cache
def cryptofeed(exchange: str) -> tuple[dict[str, t.Any], ...]:
    """Every line of ``cryptofeed/<EXCHANGE>.jsonl.zst`` after the header, parsed, in order
    (``data`` left as the recorded string). Cached: tests share one read."""
    path = DATA / "cryptofeed" / f"{exchange.upper()}.jsonl.zst"
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        lines = reader.read().decode().splitlines()
    return tuple(json.loads(line) for line in lines[1:] if line.strip())


@functools.cache
def ccxt_markets(exchange: str) -> dict[str, dict[str, t.Any]]:
    """ccxt's unified markets of ``ccxt/markets/<exchange>.json`` by symbol (treat as read-only)."""
    return json.loads((DATA / "ccxt" / "markets" / f"{exchange}.json").read_text())
