"""Builders for hand-made recordings and a quiet, storage-free backtest call."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import msgspec

from arbitrage.backtest.runner import run_backtest
from arbitrage.settings import Settings

T = 1_700_000_000_000
"""Start of the hand-made recordings, in ms since the epoch."""

FLAT_BIDS = [[99.9, 5.0]]
FLAT_ASKS = [[100.1, 5.0]]
"""A quiet book: nothing to arbitrage between two venues quoting it."""


def line(ms: int, venue: str, bids: t.Sequence[t.Sequence[float]], asks: t.Sequence[t.Sequence[float]],
         symbol: str = "BTC/USDT", **extra: t.Any) -> str:
    """One minimal recording line (``ts`` in ms) plus any extra fields."""
    return json.dumps({"ts": ms, "venue": venue, "symbol": symbol, "bids": bids, "asks": asks, **extra})


def write(path: Path, lines: t.Iterable[str]) -> Path:
    path.write_text("".join(f"{x}\n" for x in lines))
    return path


def settings(tmp_path: Path, **sections: dict[str, t.Any]) -> Settings:
    """Defaults (not ./settings.toml) with paper balances for 10 BTC, no log file, storage in tmp."""
    data: dict[str, t.Any] = {
        "paper": {"balances": {"USDT": 10_000.0, "BTC": 10.0, "ETH": 100.0, "SOL": 1000.0}},
        "log": {"file": ""},
        "storage": {"path": str(tmp_path / "run.db"), "backtest_path": str(tmp_path / "arb.db")},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return msgspec.convert(data, Settings)


def backtest(tmp_path: Path, lines: t.Iterable[str], **sections: dict[str, t.Any]) -> dict[str, t.Any]:
    """Write ``lines`` to a recording and backtest it without storage."""
    path = write(tmp_path / "rec.jsonl", lines)
    return run_backtest(settings(tmp_path, **sections), [path], storage=False)
