"""`arb record`, `arb backtest` and `arb optimize` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ARB = [sys.executable, "-m", "arbitrage"]


def arb(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    full_env.update(env or {})
    return subprocess.run([*ARB, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`arb record` of the simulated market for 2 s, with frequent dislocations."""
    cwd = tmp_path_factory.mktemp("record")
    done = arb("record", "--source", "sim", "--duration", "2", "--seed", "3", "--out", "rec.jsonl.zst",
               cwd=cwd, env={"ARB_SIM__DISLOCATIONS_PER_MINUTE": "600"})
    assert done.returncode == 0, done.stderr
    return cwd, done.stdout


def test_record_then_backtest_round_trip(recorded: tuple[Path, str]) -> None:
    cwd, message = recorded
    assert "recorded" in message and "rec.jsonl.zst" in message
    books = int(message.split()[1].replace(",", ""))
    assert books > 100
    first = arb("backtest", "--data", "rec.jsonl.zst", "--json", "--db", "bt.db", cwd=cwd)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["events"] == books
    assert result["malformed"]["total"] == 0
    assert result["opportunities"] > 0 and result["arbs_executed"] > 0
    again = arb("backtest", "--data", "rec.jsonl.zst", "--json", "--db", "bt.db", cwd=cwd)
    assert again.stdout == first.stdout  # byte-identical
    report = json.loads(arb("report", "--db", "bt.db", "--run", result["run_id"], "--json", cwd=cwd).stdout)
    assert report["arbs_executed"] == result["arbs_executed"]
    for key in ("realized_pnl", "unrealized_pnl", "net_pnl"):
        assert set(report[key]) == set(result[key]), key
        for quote, pnl in result[key].items():
            assert report[key][quote] == pytest.approx(pnl, abs=1e-9), (key, quote)


def test_backtest_flags_reach_the_settings(recorded: tuple[Path, str]) -> None:
    cwd, _ = recorded
    done = arb("backtest", "--data", "rec.jsonl.zst", "--json", "--fee", "0.0005", "--min-profit-bps", "3",
               "--max-notional", "500", "--latency-ms", "5", "--param", "cooldown_ms=0",
               "--paper-balance", "BTC=1", "--plot", "bt.png", "--db", "bt.db", cwd=cwd)
    assert done.returncode == 0, done.stderr
    params = json.loads(done.stdout)["params"]
    assert params == {"strategy": "cross_exchange", "fee": 0.0005, "min_profit_bps": 3.0,
                      "max_notional": 500.0, "cooldown_ms": 0.0, "latency_ms": 5.0}
    assert (cwd / "bt.png").read_bytes()[:4] == b"\x89PNG"


def test_backtest_human_report_shows_the_tables(recorded: tuple[Path, str]) -> None:
    cwd, _ = recorded
    done = arb("backtest", "--data", "rec.jsonl.zst", "--db", "bt.db", cwd=cwd)
    assert done.returncode == 0, done.stderr
    for text in ("books replayed", "fill ratio", "net PnL (USDT)", "max drawdown", "per venue pair",
                 "per symbol", "fingerprint"):
        assert text in done.stdout


def test_optimize_saves_a_profile_that_backtest_loads(recorded: tuple[Path, str]) -> None:
    cwd, _ = recorded
    done = arb("optimize", "--data", "rec.jsonl.zst", "--grid", "min_profit_bps=4,400",
               "--latency-ms", "10", "--jobs", "2", "--save", "best", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert "rank" in done.stdout and "profiles/best.toml" in done.stdout
    profile = tomllib.loads((cwd / "profiles" / "best.toml").read_text())
    assert profile["strategy"]["min_profit_bps"] == 4  # 400 bps never trades: 4 wins on net PnL
    assert "latency_ms" not in profile.get("trading", {})  # the market's, not the strategy's
    loaded = arb("backtest", "--data", "rec.jsonl.zst", "--profile", "best", "--json", "--db", "bt.db",
                 cwd=cwd)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["params"]["latency_ms"] == 25.0  # the default, not the search's
    run = arb("run", "--profile", "best", "--duration", "0.5", "--no-ui", "--json", "--db", "run.db", cwd=cwd)
    assert run.returncode == 0, run.stderr
    conn = sqlite3.connect(cwd / "run.db")
    try:
        stored = json.loads(conn.execute("SELECT settings FROM runs").fetchone()[0])
    finally:
        conn.close()
    assert (stored["strategy"]["min_profit_bps"], stored["trading"]["latency_ms"]) == (4.0, 25.0)


@pytest.mark.parametrize(("args", "needle"), [
    (["record", "--source", "nosuch", "--duration", "1", "--out", "x.jsonl"],
     "no plugin named 'nosuch'"),
    (["backtest", "--data", "missing.jsonl"], "missing.jsonl: no such data file"),
    (["backtest", "--data", "x.jsonl", "--param", "nope=1"], "settings error: nope: unknown setting"),
    (["backtest", "--data", "x.jsonl", "--profile", "absent"], "no profile 'absent'"),
    (["optimize", "--data", "x.jsonl", "--grid", "min_profit_bps"], "--grid: expected KEY=VALUE"),
])
def test_errors_are_one_line_with_exit_code(tmp_path: Path, args: list[str], needle: str) -> None:
    done = arb(*args, cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


def test_run_record_writes_a_recording_while_trading(tmp_path: Path) -> None:
    done = arb("run", "--duration", "1.5", "--no-ui", "--json", "--record", "live.jsonl", "--db", "arb.db",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "live.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["type"] == "MarketsLoaded"
    assert sum('"type":"BookUpdate"' in x for x in lines) == json.loads(done.stdout)["events_processed"]


def test_help_lists_the_commands_without_loading_heavy_modules(tmp_path: Path) -> None:
    code = ("import sys; from typer.testing import CliRunner; from arbitrage.cli import app; "
            "out = CliRunner().invoke(app, ['--help']).output; "
            "print(all(c in out for c in ('record', 'backtest', 'optimize')), "
            "[m for m in ('ccxt', 'arbitrage.backtest.runner', 'matplotlib', 'arbitrage.engine') "
            "if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "True []"


@pytest.mark.parametrize("command", [["backtest"], ["optimize", "--grid", "min_profit_bps=2,5"]])
def test_backtests_pass_the_one_live_gate(recorded: tuple[Path, str], command: list[str]) -> None:
    cwd, _ = recorded
    for env, args in (({"ARB_RUN__LIVE": "true"}, []), ({}, ["--param", "run.live=true"])):
        done = arb(*command, "--data", "rec.jsonl.zst", *args, cwd=cwd,
                   env={"ARB_STORAGE__PATH": "live.db", **env})
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == ("settings error: --live: backtests and optimizations trade on paper "
                                       "only; real orders need `arb run --source ccxt --live`")
    assert not (cwd / "live.db").exists()


def test_a_backtest_keeps_its_own_database_so_report_still_shows_the_last_run(
        recorded: tuple[Path, str], tmp_path: Path) -> None:
    cwd, _ = recorded
    run = arb("run", "--source", "sim", "--duration", "1", "--json", "--no-ui", cwd=cwd)
    assert run.returncode == 0, run.stderr
    run_id = json.loads(run.stdout)["run_id"]
    done = arb("backtest", "--data", "rec.jsonl.zst", "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    backtest_id = json.loads(done.stdout)["run_id"]
    assert json.loads(arb("report", "--json", cwd=cwd).stdout)["run_id"] == run_id  # data/arb.db
    stored = json.loads(arb("report", "--db", "data/backtest.db", "--json", cwd=cwd).stdout)
    assert stored["run_id"] == backtest_id
