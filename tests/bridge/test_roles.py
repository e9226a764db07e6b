"""Two collector processes and one engine process, connected only through Redis (real subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import redis

from arbitrage.events import BookUpdate
from arbitrage.readers.formats import open_reader
from tests.bridge.conftest import RedisServer

COLLECTOR = """
[log]
file = ""
[redis]
connect_timeout_s = 30.0  # a loaded CI host may stall a write past the default: a timed-out batch drops books
[sim]
dislocations_per_minute = 300.0
{venues}
"""
ENGINE = """
[log]
file = ""
[run]
plugins = ["trader", "storage"]
[strategy]
cooldown_ms = 0.0  # no rule on the clock: a live run and its replay agree to the nanosecond only on data
[trading]
max_exposure = {{ BTC = 0.0, ETH = 0.0, SOL = 0.0 }}  # every opportunity refused: no fill timing either
[storage]
path = "{db}"
[redis]
discover_s = 0.05
read_count = 1000000  # never "behind" on a loaded host: every book wanted (test_feed covers conflation)
"""


def arb(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "arbitrage", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def books(path: Path) -> list[BookUpdate]:
    return [e for batch in open_reader(path).batches() for e in batch if isinstance(e, BookUpdate)]


def by_feed(recorded: list[BookUpdate]) -> dict[tuple[str, str], list[tuple[object, ...]]]:
    out: dict[tuple[str, str], list[tuple[object, ...]]] = {}
    for b in recorded:
        out.setdefault((b.venue, b.symbol), []).append((list(b.bids), list(b.asks), b.ts_event))
    return out


def opportunities(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT strategy, quote, profit, profit_bps, notional, legs, book_ts, ts_event "
                            "FROM opportunities ORDER BY rowid").fetchall()


def test_two_collectors_feed_one_engine_which_sees_every_book_and_trades_as_its_replay_does(
        tmp_path: Path, redis_server: RedisServer) -> None:
    url = redis_server.url
    (tmp_path / "a.toml").write_text(COLLECTOR.format(venues='[[sim.venues]]\nname = "alpha"'))
    (tmp_path / "b.toml").write_text(COLLECTOR.format(
        venues='[[sim.venues]]\nname = "beta"\ntaker_fee = 0.0008\n[[sim.venues]]\nname = "gamma"'))
    (tmp_path / "e.toml").write_text(ENGINE.format(db=tmp_path / "engine.db"))
    engine = arb("run", "-c", "e.toml", "--redis", url, "--role", "engine", "--record", "engine.jsonl",
                 "--duration", "0", "--no-ui", "--json", cwd=tmp_path)
    client = redis.Redis.from_url(url)
    collectors: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 60
        while not any(c["name"].startswith("arb-feed-") for c in client.client_list()):
            assert engine.poll() is None, engine.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the engine did not connect"
            time.sleep(0.05)
        collectors = [arb("run", "-c", f"{name}.toml", "--seed", str(seed), "--redis", url, "--role",
                          "collector", "--record", f"{name}.jsonl", "--duration", "2", "--no-ui", "--json",
                          cwd=tmp_path)
                      for name, seed in (("a", 3), ("b", 4))]
        summaries = []
        for proc in collectors:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
            summaries.append(json.loads(out))
        for collector in summaries:  # what the collectors wrote is what the engine must see
            assert collector["plugins"]["redis"]["market_dropped"] == 0, collector["plugins"]["redis"]
        sent = books(tmp_path / "a.jsonl") + books(tmp_path / "b.jsonl")
        deadline = time.monotonic() + 60
        while (got := len(books(tmp_path / "engine.jsonl"))) < len(sent):  # the recorder writes every 0.25 s
            assert engine.poll() is None, engine.communicate()[1][-3000:]
            assert time.monotonic() < deadline, f"the engine recorded {got} of {len(sent)} books"
            time.sleep(0.1)
        engine.send_signal(signal.SIGINT)
        out, err = engine.communicate(timeout=60)
        assert engine.returncode == 130, err[-3000:]
    finally:
        for proc in (engine, *collectors):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        client.close()
    summary = json.loads(out)
    for collector in summaries:
        assert collector["strategy"] == "" and collector["orders"] == 0
        assert set(collector["plugins"]) == {"sim", "redis", "recorder"}
    feed = summary["plugins"]["redis_feed"]
    assert feed["venues"] == ["alpha", "beta", "gamma"]
    assert feed["conflated"] == feed["refused"] == feed["duplicates"] == 0
    received = books(tmp_path / "engine.jsonl")
    assert by_feed(received) == by_feed(sent)  # every book, in order per venue and symbol
    assert len(received) == len(sent) > 300
    lines = [line for line in (tmp_path / "engine.jsonl").read_text().splitlines() if '"BookUpdate"' in line]
    assert all('"origin":{"node":' in line for line in lines)  # kept in the recording (not read back)

    backtest = subprocess.run([sys.executable, "-m", "arbitrage", "backtest", "-c", "e.toml", "--data",
                               "engine.jsonl", "--db", "bt.db", "--json"], cwd=tmp_path, text=True,
                              capture_output=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert backtest.returncode == 0, backtest.stderr[-3000:]
    live = opportunities(tmp_path / "engine.db")
    assert len(live) == summary["opportunities"] > 0
    assert live == opportunities(tmp_path / "bt.db")
