"""Backtest results do not depend on whether the strategies' compiled checks or their Python
reference implementations run."""

from __future__ import annotations

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
