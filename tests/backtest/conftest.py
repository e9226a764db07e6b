"""Shared fixtures: a small simulated recording (written once per session)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from arbitrage.backtest.recording import RecordingWriter
from arbitrage.settings import Settings
from arbitrage.sources.sim import SimMarket

SIM_BOOKS = 20_000
SIM_START_NS = 1_700_000_000_000_000_000


@pytest.fixture(scope="session")
def sim_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 simulated books with frequent dislocations, markets first, as a plain recording."""
    base = Settings()
    sim = msgspec.structs.replace(base.sim, dislocations_per_minute=60.0)
    market = SimMarket(sim, 7)
    path = tmp_path_factory.mktemp("sim") / "sim.jsonl"
    with RecordingWriter(path) as writer:
        writer.write_many(market.markets_loaded(SIM_START_NS))
        writer.write_many(market.events(SIM_BOOKS, SIM_START_NS))
    return path
