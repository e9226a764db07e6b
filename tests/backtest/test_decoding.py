"""A backtest's result does not depend on how its recording is decoded: sides parsed lazily or at
once, the decoding module compiled or interpreted (``make test`` also runs this whole file
interpreted); and the test recording gives the fingerprint it gave before the readers moved to
Cython (issue 10: behaviour stays the same)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from arbitrage import compiled
from arbitrage.backtest.runner import run_backtest
from arbitrage.readers import jsonl
from tests.backtest._data import settings as backtest_settings

SIM_FINGERPRINT = "37d9c345eee0d215b07782a2a4bfb3e8e4be752848b2ccbf3dfaf1b6b9a5c1c6"
"""``sim_recording`` backtested with ``tests.backtest._data.settings`` (618 arbitrages). The hand-written
C readers this code replaced gave 794fc46f... (345 arbitrages); since then the results' encoding
changed (``ArbResult`` carries positions and unrealized profit) and the trading rules did on
purpose (orders in flight hold their levels; sizing walks books net of our own orders; limits are
USDT amounts, so ETH/BTC trades are no longer capped at 1,000 BTC; reservations end with the legs;
round_down on the grid; positions re-marked once a second); then the legs carried labels beside
client order ids that became hashes of them (52818fe1... before; same 618 arbitrages), and the
fingerprint leaves those ids out (they hash the run id, which any new setting changes), 2b387768...;
then ``ArbResult`` gained ``run_id`` (empty within one run; set when start-up reconciliation
finishes an earlier run's arbitrage), which adds ``"run_id":""`` to every encoded result (same
618 arbitrages, found by bisecting to the arbstate14 merge). A change
of trading rules changes it on purpose; a change of how recordings are read must not."""


def test_backtest_results_do_not_depend_on_parsing_sides_lazily(
        tmp_path: Path, sim_recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lazy = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    monkeypatch.setattr(jsonl, "_bids", msgspec.json.Decoder(jsonl.Levels).decode)
    monkeypatch.setattr(jsonl, "_asks", msgspec.json.Decoder(jsonl.Levels).decode)
    eager = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    assert lazy["arbs_executed"] > 10
    assert lazy["fingerprint"] == eager["fingerprint"]
    assert lazy == eager


FINGERPRINT = """
import json, pathlib, sys
from arbitrage.backtest.runner import run_backtest
from tests.backtest._data import settings
result = run_backtest(settings(pathlib.Path(sys.argv[2])), [sys.argv[1]], storage=False)
print(json.dumps(result))
"""


def test_the_same_backtest_compiled_and_interpreted(tmp_path: Path, sim_recording: Path) -> None:
    """The interpreted module is the reference: running it instead changes nothing in the result."""
    results = []
    for interpreted in ("0", "1"):
        done = subprocess.run([sys.executable, "-c", FINGERPRINT, str(sim_recording), str(tmp_path)],
                              capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=300,
                              env={**os.environ, compiled.ENV: interpreted})
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert results[0]["arbs_executed"] > 10
    assert results[0]["fingerprint"] == results[1]["fingerprint"]
    assert results[0] == results[1]


def test_the_test_recording_gives_the_fingerprint_it_gave_before(tmp_path: Path, sim_recording: Path) -> None:
    result = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    assert (result["fingerprint"], result["arbs_executed"]) == (SIM_FINGERPRINT, 618)
