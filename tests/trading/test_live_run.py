"""``arb run --source ccxt --live --yes`` end to end: two emulated exchanges in their own processes,
the real ccxt, a planted dislocation. The emulators' orders and balances show exactly the fills
``arb report`` shows; the same run without ``--live`` sends nothing; and the planted keys appear in
no output the run leaves (stdout, stderr, the log file, a dump of the database, ``arb report``).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from tests.emulator.processes import arb_env, binance_and_kraken, control, plant
from tests.emulator.recordings import DATA as DATA_DIR

pytestmark = pytest.mark.skipif(not (DATA_DIR / "ccxt").exists(), reason=f"no shared data at {DATA_DIR}")

BINANCE_KEY, BINANCE_SECRET = "PLANTEDbinanceKEY7f3a9c1e", "PLANTEDbinanceSECRETd41e8b"
KRAKEN_KEY = "PLANTEDkrakenKEY5b2e8d0a"
KRAKEN_SECRET_TEXT = "PLANTEDkrakenSECRET-1234567890abcdef"
KRAKEN_SECRET = base64.b64encode(KRAKEN_SECRET_TEXT.encode()).decode()
SECRETS = (BINANCE_KEY, BINANCE_SECRET, KRAKEN_KEY, KRAKEN_SECRET, KRAKEN_SECRET_TEXT)


def log_says(path: Path, *texts: str) -> bool:
    if not path.exists():
        return False
    content = path.read_text()
    return all(text in content for text in texts)


State = dict[str, t.Any]


@pytest.fixture(scope="module")
def exchanges() -> t.Iterator[tuple[str, str]]:
    """The Binance and Kraken emulators, each in its own process, for every run of this module."""
    with binance_and_kraken(BINANCE_KEY, BINANCE_SECRET, KRAKEN_KEY, KRAKEN_SECRET) as (binance, kraken):
        yield binance, kraken


def run_live(tmp: Path, urls: tuple[str, str], *,
             live: bool) -> tuple[subprocess.CompletedProcess[str], State, State]:
    """One ``arb run`` on both emulators, their balances and books planted first; the dislocation is
    planted once the run is trading (venues open, books subscribed), so it is seen whole. Returns
    the run and the emulators' final states."""
    binance, kraken = urls
    plant(binance, kraken)
    env = arb_env(BINANCE_KEY, BINANCE_SECRET, KRAKEN_KEY, KRAKEN_SECRET,
                  ARB_CCXT__MARKETS_CACHE=str(tmp / "markets"), ARB_LIVE__ORDER_DEADLINE_S="2",
                  ARB_LIVE__NOT_FOUND_AFTER_S="3", ARB_LIVE__LOOKUP_BACKOFF_S="0.05", ARB_LOG__LEVEL="DEBUG")
    command = [sys.executable, "-m", "arbitrage", "run", "--source", "ccxt",
               "--exchanges", "binance,kraken", "--symbols", "BTC/USDT",
               "--exchange-url", f"binance={binance}",
               "--exchange-url", f"kraken={kraken}", "--strategy", "cross_exchange", "--duration", "30",
               "--db", "arb.db", "--json", "--no-ui", *(["--live", "--yes"] if live else [])]
    process = subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    log = tmp / "logs" / "arb.log"
    ready = ("live venue binance open", "live venue kraken open") if live else (
        "paper venue kraken ready",)
    deadline = time.monotonic() + 30
    while not log_says(log, *ready) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the books' subscriptions are answered
    # the dislocation, one book changing: Kraken bids 110 for 1 BTC that Binance asks 100 for
    control(kraken, "book", {"symbol": "BTC/USDT", "bids": [["110", "1"]], "asks": [["111", "5"]]})
    deadline = time.monotonic() + 20  # the run's --duration is only a backstop
    while not log_says(log, '"arb ') and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the balance reads after the arbitrage
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # stops like Ctrl-C: plugins stop, summary printed
    stdout, stderr = process.communicate(timeout=60)
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    return done, control(binance, "state"), control(kraken, "state")


def report(tmp: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    done = subprocess.run([sys.executable, "-m", "arbitrage", "report", "--db", "arb.db", "--json"], cwd=tmp,
                          env=env, capture_output=True, text=True, timeout=60)
    return done, json.loads(done.stdout)


def db_rows(tmp: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(tmp / "arb.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_live_run_trades_the_dislocation_and_the_venues_show_what_arb_reports(
        tmp_path: Path, exchanges: tuple[str, str]) -> None:
    done, binance, kraken = run_live(tmp_path, exchanges, live=True)
    assert done.returncode == 143, done.stderr[-3000:]  # SIGTERM: 128 + 15 after the clean stop
    summary = json.loads(done.stdout)
    assert summary["arbs_executed"] >= 1, done.stderr[-3000:]
    # every order arb stored is on its venue, once, with the venue's fills
    orders = db_rows(tmp_path, "SELECT * FROM orders ORDER BY ts_submitted")
    emulated = {o["client_order_id"]: (name, o) for name, state in (("binance", binance), ("kraken", kraken))
                for o in state["orders"]}
    assert sorted(o["client_order_id"] for o in orders) == sorted(emulated)
    for order in orders:
        name, venue_order = emulated[order["client_order_id"]]
        assert (order["venue"], order["side"]) == (name, venue_order["side"])
        assert order["filled"] == pytest.approx(float(venue_order["filled"]))
        assert order["venue_order_id"] == venue_order["id"]
        assert order["status"] in ("filled", "partially_filled", "canceled")
    fills = db_rows(tmp_path, "SELECT venue, price, amount, fee, fee_currency FROM fills ORDER BY id")
    trades = sorted((name, float(tr["price"]), float(tr["amount"]), float(tr["fee"]), tr["fee_currency"])
                    for name, state in (("binance", binance), ("kraken", kraken)) for tr in state["trades"])
    assert sorted(tuple(f) for f in fills) == trades
    # by hand: Binance sells us 1 BTC at 100, fee 0.1 % of the BTC received: 0.999 BTC delivered,
    # which Kraken buys at 110, fee 0.26 % of 109.89 = 0.285714 USDT, rounded up to Kraken's 5
    # cost decimals: 0.28572
    assert trades == [("binance", 100.0, 1.0, 0.001, "BTC"), ("kraken", 110.0, 0.999, 0.28572, "USDT")]
    # the first arbitrage bought on Binance at 100 and sold on Kraken at 110
    first = [o for o in orders if o["purpose"] == "leg"][:2]
    assert {(o["venue"], o["side"], o["average_price"]) for o in first} == {
        ("binance", "buy", 100.0), ("kraken", "sell", 110.0)}
    # the balances: what the venues hold moved by exactly the stored fills
    moved: dict[tuple[str, str], float] = {}
    for venue, price, amount, fee, fee_currency, side in db_rows(
            tmp_path, "SELECT f.venue, f.price, f.amount, f.fee, f.fee_currency, f.side FROM fills f"):
        sign = 1.0 if side == "buy" else -1.0
        moved[(venue, "BTC")] = moved.get((venue, "BTC"), 0.0) + sign * amount
        moved[(venue, "USDT")] = moved.get((venue, "USDT"), 0.0) - sign * amount * price
        moved[(venue, fee_currency)] = moved.get((venue, fee_currency), 0.0) - fee
    start = {("binance", "USDT"): 1000.0, ("kraken", "BTC"): 1.0}
    for (venue, asset), delta in moved.items():
        state = binance if venue == "binance" else kraken
        held = float(state["balances"].get(asset, {}).get("free", 0) or 0) + float(
            state["balances"].get(asset, {}).get("used", 0) or 0)
        assert held == pytest.approx(start.get((venue, asset), 0.0) + delta, abs=1e-9), (venue, asset)
    # arb report shows the same run
    shown, data = report(tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert data["arbs_executed"] == summary["arbs_executed"]
    assert data["realized_pnl"] == pytest.approx(summary["realized_pnl"])
    # and no output of the run shows a key
    outputs = {"stdout": done.stdout, "stderr": done.stderr, "report": shown.stdout + shown.stderr,
               "log": (tmp_path / "logs" / "arb.log").read_text()}
    conn = sqlite3.connect(tmp_path / "arb.db")
    outputs["database"] = "\n".join(conn.iterdump())
    conn.close()
    assert "LIVE TRADING" in done.stderr
    for where, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} in {where}"


def test_the_same_run_without_live_paper_trades_the_live_books_and_sends_nothing(
        tmp_path: Path, exchanges: tuple[str, str]) -> None:
    before = [control(base, "state") for base in exchanges]
    done, binance, kraken = run_live(tmp_path, exchanges, live=False)
    assert done.returncode == 143, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["arbs_executed"] >= 1, done.stderr[-3000:]
    for earlier, state, endpoint in zip(before, (binance, kraken), ("/api/v3/order", "/0/private/AddOrder"),
                                        strict=True):
        assert (state["orders"], state["trades"]) == (earlier["orders"], earlier["trades"])
        new = state["requests"][len(earlier["requests"]):]
        assert new and not [r for r in new if r["path"] == endpoint]  # the run asked, it never ordered
    assert "LIVE TRADING" not in done.stderr
