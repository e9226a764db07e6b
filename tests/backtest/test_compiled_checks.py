"""Backtest results do not depend on whether the compiled modules run compiled or interpreted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from arbitrage import compiled
from arbitrage.backtest.runner import run_backtest
from tests.backtest._data import settings as backtest_settings

FALLBACK = """
import json, pathlib, sys
from arbitrage import compiled
from arbitrage.backtest.runner import run_backtest
from tests.backtest._data import settings
result = run_backtest(settings(pathlib.Path(sys.argv[2])), [sys.argv[1]], storage=False)
print(json.dumps({"modules": compiled.status(), "result": result}))
"""


def test_without_the_compiled_extensions_everything_runs_on_the_python_paths(
        tmp_path: Path, sim_recording: Path) -> None:
    done = subprocess.run([sys.executable, "-c", FALLBACK, str(sim_recording), str(tmp_path)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=120,
                          env={**os.environ, compiled.ENV: "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["modules"] == dict.fromkeys(compiled.MODULES, "interpreted")
    compiled_run = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    assert compiled_run["arbs_executed"] > 10
    assert out["result"] == json.loads(json.dumps(compiled_run))
