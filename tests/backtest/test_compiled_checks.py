"""Backtest results do not depend on whether the strategies' compiled checks or their Python
reference implementations run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arbitrage.backtest.runner import run_backtest
from arbitrage.strategies import cross_check, cross_exchange
from tests.backtest._data import settings as backtest_settings


def test_backtest_results_do_not_depend_on_the_compiled_check(
        tmp_path: Path, sim_recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    monkeypatch.setattr(cross_exchange, "CrossCheck", cross_check.CrossCheck)
    reference = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    assert compiled["arbs_executed"] > 10
    assert compiled == reference


FALLBACK = """
import json, pathlib, sys
for name in ("arbitrage.strategies._cycle_check", "arbitrage.strategies._cross_check"):
    sys.modules[name] = None  # as if installed without a C compiler: importing them fails
from arbitrage.backtest.runner import run_backtest
from arbitrage.strategies import cross_exchange, triangular_detector
from tests.backtest._data import settings
result = run_backtest(settings(pathlib.Path(sys.argv[2])), [sys.argv[1]], storage=False)
checks = [triangular_detector.CycleCheck.__module__, cross_exchange.CrossCheck.__module__]
print(json.dumps({"checks": checks, "result": result}))
"""


def test_without_the_compiled_extensions_everything_runs_on_the_python_paths(
        tmp_path: Path, sim_recording: Path) -> None:
    done = subprocess.run([sys.executable, "-c", FALLBACK, str(sim_recording), str(tmp_path)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["checks"] == ["arbitrage.strategies.cycle_check", "arbitrage.strategies.cross_check"]
    compiled = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    assert out["result"] == json.loads(json.dumps(compiled))
