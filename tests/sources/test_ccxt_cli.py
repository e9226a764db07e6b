"""``arb run --source ccxt`` as a user runs it: two processes, the emulator and arb, over 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import typing as t
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("ccxt.pro")

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def emulator_process(*args: str) -> t.Iterator[str]:
    with subprocess.Popen([sys.executable, "-m", "tests.emulator", "binance", "--port", "0", *args],
                          stdout=subprocess.PIPE, text=True, cwd=REPO) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.terminate()


def arb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARB_CCXT__ENABLE_RATE_LIMIT": "false", "ARB_LOG__FILE": '""'}
    return subprocess.run([sys.executable, "-m", "arbitrage", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_arb_run_source_ccxt_watches_the_emulator_and_reports_the_venue(tmp_path: Path) -> None:
    with emulator_process("--pace", "0.01") as base:
        done = arb("run", "--source", "ccxt", "--exchanges", "binance", "--symbols", "NKN/USDT,NOPE/USDT",
                   "--exchange-url", f"binance={base}", "--duration", "3", "--no-ui", "--json", cwd=tmp_path)
        state = json.loads(urllib.request.urlopen(f"{base}/_emulator/state", timeout=10).read())
    assert done.returncode == 0, done.stderr
    venue = json.loads(done.stdout)["plugins"]["ccxt"]["binance"]
    assert venue["books"] > 0 and venue["symbols"] == ["NKN/USDT"]
    assert venue["missing"] == {"NOPE/USDT": "not listed"}
    assert venue["status"] == "connected" and "NOPE/USDT is not watched there" in done.stderr
    endpoints = [f"{r['method']} {r['path']}" for r in state["requests"]]
    assert endpoints.count("GET /api/v3/exchangeInfo") == 1
    assert len(list((tmp_path / "data" / "markets").glob("binance-*.json"))) == 1  # the default cache


@pytest.mark.parametrize(("args", "needle"), [
    (["--exchanges", "binanse", "--symbols", "BTC/USDT"], "ccxt.exchanges[0]: unknown exchange 'binanse'"),
    (["--exchanges", "binance", "--symbols", "BTCUSDT"], "ccxt.symbols[0]: symbol must look like BASE/QUOTE"),
    (["--exchanges", "binance", "--symbols", "BTC/USDT", "--exchange-url", "binance"], "--exchange-url"),
    (["--symbols", "BTC/USDT"], "ccxt.exchanges: --source ccxt needs at least one exchange"),
])
def test_bad_ccxt_flags_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    done = arb("run", "--source", "ccxt", "--no-ui", "--duration", "1", *args, cwd=tmp_path)
    assert done.returncode == 2 and needle in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
