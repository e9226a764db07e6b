"""The backtest result: deterministic, fingerprinted, stored once per backtest, with its figures."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec
import pytest

from arbitrage.backtest.runner import run_backtest
from arbitrage.errors import DataError
from tests.backtest._data import settings

REQUIRED_ARB_KEYS = {"ts", "strategy", "buy_venue", "sell_venue", "amount", "expected_profit",
                     "realized_profit", "fees"}


def test_two_runs_give_the_same_fingerprint_and_identical_json(tmp_path: Path, sim_recording: Path) -> None:
    first = run_backtest(settings(tmp_path), [sim_recording], storage=False)
    second = run_backtest(settings(tmp_path), [sim_recording], storage=False)
    assert first["arbs_executed"] > 10  # enough trading for the comparison to mean something
    assert first["fingerprint"] == second["fingerprint"]
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_fingerprint_changes_with_a_setting_that_changes_trades(tmp_path: Path, sim_recording: Path) -> None:
    base = run_backtest(settings(tmp_path), [sim_recording], storage=False)
    strict = settings(tmp_path, strategy={"min_profit_bps": 20.0})
    other = run_backtest(strict, [sim_recording], storage=False)
    assert other["arbs_executed"] < base["arbs_executed"]
    assert other["fingerprint"] != base["fingerprint"]


def test_result_json_has_the_documented_keys(tmp_path: Path, sim_recording: Path) -> None:
    result = run_backtest(settings(tmp_path), [sim_recording], storage=False)
    for key in ("events", "opportunities", "arbs", "realized_pnl", "fingerprint", "malformed", "fill_ratio",
                "gross_pnl", "fees", "max_drawdown", "best", "worst", "by_venue_pair", "by_symbol"):
        assert key in result, key
    assert result["events"] == 20_000
    assert result["malformed"]["total"] == 0
    for arb in result["arbs"]:
        assert set(arb) >= REQUIRED_ARB_KEYS
        assert "symbol" in arb or "symbols" in arb
        assert not arb["id"].startswith(result["run_id"])  # ids are free of the run id
    total = sum(a["realized_profit"] for a in result["arbs"] if a["quote"] == "USDT")
    assert result["realized_pnl"]["USDT"] == pytest.approx(total, abs=1e-6)
    assert sum(row["arbs"] for row in result["by_venue_pair"]) == result["arbs_executed"]
    assert sum(row["arbs"] for row in result["by_symbol"]) == result["arbs_executed"]
    msgspec.json.encode(result)  # plain builtins only


def test_rerunning_a_backtest_replaces_its_rows_in_the_database(tmp_path: Path, sim_recording: Path) -> None:
    first = run_backtest(settings(tmp_path), [sim_recording])
    second = run_backtest(settings(tmp_path), [sim_recording])
    assert first["run_id"] == second["run_id"] and first["run_id"].startswith("bt-")
    # storage writes in threads, yet trading does not depend on it: same trades as without storage
    assert first["fingerprint"] == second["fingerprint"]
    without = run_backtest(settings(tmp_path), [sim_recording], storage=False)
    assert first["fingerprint"] == without["fingerprint"]
    conn = sqlite3.connect(tmp_path / "arb.db")
    try:
        arbs = conn.execute("SELECT COUNT(*) FROM arb_results WHERE run_id = ?",
                            (first["run_id"],)).fetchone()
        fills = conn.execute("SELECT COUNT(DISTINCT client_order_id || price), COUNT(*) "
                             "FROM fills").fetchone()
        runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
    finally:
        conn.close()
    assert arbs[0] == second["arbs_executed"]
    assert fills[0] == fills[1]  # no fill stored twice
    assert runs[0] == 1


def test_missing_data_file_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such data file"):
        run_backtest(settings(tmp_path), [tmp_path / "nope.jsonl"], storage=False)


def test_plot_writes_a_png(tmp_path: Path, sim_recording: Path) -> None:
    png = tmp_path / "out" / "bt.png"
    run_backtest(settings(tmp_path), [sim_recording], storage=False, plot=png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
