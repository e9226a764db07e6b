"""Restart scenarios: ``arb run --live --yes`` SIGKILLed mid-arbitrage, then started again.

Two emulators in their own processes (Binance: 1000 USDT; Kraken: 1 BTC), the real ccxt, a
planted dislocation (Binance asks 100 for 1 BTC, Kraken bids 110 for 1 BTC: buy 1 on Binance,
sell the 0.999 received on Kraken). Emulator-side faults place the kill deterministically: a
request held unprocessed (``timeout``: killed between the journal write and the send), processed
but never answered (``lost``: between send and answer, or with the hedge in flight). Each restart
must end with: no client order id twice at a venue, every order of the journal in the venue's
final state with the venue's fills, residual exposure below the market minimum (or an open
position with a critical alert), nothing unfinished in the journal, and a second restart that
sends nothing.
"""

from __future__ import annotations

import base64
import collections.abc as c
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
import typing as t
from collections import Counter
from pathlib import Path

import pytest

from arbitrage.events import OrderSubmitted
from arbitrage.storage.queries import arb_states, unfinished_arbitrages, unfinished_orders
from arbitrage.storage.writer import Writer
from arbitrage.trading.ids import client_order_id
from tests.emulator.processes import arb_env, binance_and_kraken, control, plant, quiet_books
from tests.emulator.recordings import DATA as DATA_DIR

pytestmark = pytest.mark.skipif(not (DATA_DIR / "ccxt").exists(), reason=f"no shared data at {DATA_DIR}")

BINANCE_KEY, BINANCE_SECRET = "RESTARTbinanceKEY7f3a9c1e", "RESTARTbinanceSECRETd41e8b"
KRAKEN_KEY = "RESTARTkrakenKEY5b2e8d0a"
KRAKEN_SECRET = base64.b64encode(b"RESTARTkrakenSECRET-1234567890abcdef").decode()
B_ORDER, K_ORDER = "POST /api/v3/order", "POST /0/private/AddOrder"
MIN_AMOUNT = 1e-5
"""BTC/USDT's minimum amount on both emulated venues: what is below it cannot be traded (dust)."""
State = dict[str, t.Any]


@pytest.fixture
def venues() -> t.Iterator[tuple[str, str]]:
    """Fresh Binance and Kraken emulators for one scenario, quiet books that do not cross."""
    with binance_and_kraken(BINANCE_KEY, BINANCE_SECRET, KRAKEN_KEY, KRAKEN_SECRET) as (binance, kraken):
        plant(binance, kraken)
        yield binance, kraken


def dislocate(kraken: str) -> None:
    control(kraken, "book", {"symbol": "BTC/USDT", "bids": [["110", "1"]], "asks": [["111", "5"]]})


def endpoints(base: str) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in control(base, "state")["requests"]]


class Arb:
    """``arb run --live --yes`` on both emulators in ``tmp`` (one database, a log file per run)."""

    def __init__(self, tmp: Path, urls: tuple[str, str], **settings: str) -> None:
        self.tmp, self.urls, self.runs = tmp, urls, 0
        self.env = arb_env(BINANCE_KEY, BINANCE_SECRET, KRAKEN_KEY, KRAKEN_SECRET, **{
            "ARB_CCXT__MARKETS_CACHE": "", "ARB_LIVE__NOT_FOUND_AFTER_S": "2.5",
            "ARB_LIVE__ORDER_DEADLINE_S": "2", "ARB_LIVE__LOOKUP_BACKOFF_S": "0.05",
            "ARB_LIVE__LOOKUP_RETRIES": "2", "ARB_LIVE__UNKNOWN_RETRY_S": "0.2", **settings})

    def start(self) -> tuple[subprocess.Popen[str], Path]:
        self.runs += 1
        log = self.tmp / "logs" / f"run{self.runs}.log"
        binance, kraken = self.urls
        command = [sys.executable, "-m", "arbitrage", "run", "--source", "ccxt",
                   "--exchanges", "binance,kraken", "--symbols", "BTC/USDT",
                   "--exchange-url", f"binance={binance}",
                   "--exchange-url", f"kraken={kraken}", "--strategy", "cross_exchange", "--duration", "40",
                   "--db", "arb.db", "--json", "--no-ui", "--live", "--yes"]
        env = {**self.env, "ARB_LOG__FILE": str(log)}
        return subprocess.Popen(command, cwd=self.tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True), log

    def killed_when(self, condition: c.Callable[[], bool]) -> None:
        """Run until the venues are open, plant the dislocation, SIGKILL once ``condition()``."""
        process, log = self.start()
        try:
            wait_for(lambda: says(log, "live venue binance open", "live venue kraken open"), process)
            time.sleep(0.5)  # the books' subscriptions are answered
            dislocate(self.urls[1])
            wait_for(condition, process)
            assert process.poll() is None, process.communicate()[1][-3000:]
        finally:
            process.kill()
            process.communicate(timeout=30)

    def restarted(self, until: str = "start-up reconciliation done", settle_s: float = 0.5) -> str:
        """Start again, wait until the log says ``until``, stop (SIGTERM); returns the log."""
        process, log = self.start()
        try:
            wait_for(lambda: says(log, until), process)
            time.sleep(settle_s)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        text = log.read_text() if log.exists() else ""
        assert until in text, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        return text

    def rows(self, sql: str) -> list[dict[str, t.Any]]:
        with contextlib.closing(sqlite3.connect(self.tmp / "arb.db")) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql)]


def says(log: Path, *texts: str) -> bool:
    return log.exists() and all(text in log.read_text() for text in texts)


def wait_for(condition: c.Callable[[], bool], process: subprocess.Popen[str],
             timeout_s: float = 30.0) -> None:
    """Until ``condition()`` or the process ends; a process still running after ``timeout_s``
    without it fails the test (a wait on a line never logged must not pass slowly)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and process.poll() is None:
        assert time.monotonic() < deadline, f"still waiting after {timeout_s} s"
        time.sleep(0.05)


def check_journal_matches_venues(arb: Arb) -> tuple[State, State]:
    """The end-state invariants every restart scenario shares (module doc); returns the states."""
    states = [control(u, "state") for u in arb.urls]
    orders = {o["client_order_id"]: o for o in arb.rows("SELECT * FROM orders")}
    fills = Counter[str]()
    for f in arb.rows("SELECT * FROM fills"):
        fills[f["client_order_id"]] += f["amount"]
    for state in states:
        ids = Counter(o["client_order_id"] for o in state["orders"])
        assert all(n == 1 for n in ids.values()), ids  # never sent twice
        for o in state["orders"]:
            row = orders[o["client_order_id"]]  # every order at the venue is in the journal
            assert row["filled"] == pytest.approx(float(o["filled"]), abs=1e-12), (row, o)
            assert fills[o["client_order_id"]] == pytest.approx(float(o["filled"]), abs=1e-12)
            assert row["status"] == {"closed": "filled", "canceled": "canceled", "expired": "canceled"}.get(
                o["status"], row["status"]) or float(o["filled"]) > 0, (row, o)
    at_venues = {o["client_order_id"] for s in states for o in s["orders"]}
    for cid, row in orders.items():  # what no venue has was never placed, and says so
        if cid not in at_venues:
            assert row["status"] == "rejected" and row["filled"] == 0, row
    assert unfinished_orders(arb.tmp / "arb.db") == []
    assert unfinished_arbitrages(arb.tmp / "arb.db") == []
    with contextlib.closing(sqlite3.connect(arb.tmp / "arb.db")) as db:  # every arbitrage ended
        assert {s["state"] for s in arb_states(db)} <= {"done"}, arb_states(db)
    return states[0], states[1]


def residual_of(arb: Arb, opportunity_id: str) -> dict[str, float]:
    [result] = arb.rows(f"SELECT * FROM arb_results WHERE opportunity_id = '{opportunity_id}'")
    return json.loads(result["residual"])


def restart_twice_sends_nothing(arb: Arb) -> None:
    """Scenario 6: a further restart finds nothing unfinished and no venue sees a new order."""
    before = [Counter(endpoints(u))[e] for u, e in zip(arb.urls, (B_ORDER, K_ORDER), strict=True)]
    orders_before = arb.rows("SELECT client_order_id, status, filled FROM orders ORDER BY client_order_id")
    log = arb.restarted(until="live venue kraken open", settle_s=1.0)
    assert "reconcil" not in log
    after = [Counter(endpoints(u))[e] for u, e in zip(arb.urls, (B_ORDER, K_ORDER), strict=True)]
    assert after == before
    assert arb.rows("SELECT client_order_id, status, filled FROM orders ORDER BY client_order_id") == \
        orders_before


def test_killed_between_send_and_answer_the_restart_records_the_fill_and_finishes_the_arbitrage(
        tmp_path: Path, venues: tuple[str, str]) -> None:
    binance, kraken = venues
    # Kraken places and fills the sell, then never answers: the process dies waiting
    control(kraken, "faults", [{"kind": "lost", "endpoint": K_ORDER, "delay": 3600}])
    arb = Arb(tmp_path, venues)
    arb.killed_when(lambda: bool(control(kraken, "state")["orders"])
                    and bool(control(binance, "state")["orders"]))
    quiet_books(binance, kraken)
    [sell] = [o for o in arb.rows("SELECT * FROM orders") if o["venue"] == "kraken"]
    assert sell["status"] == "submitted"  # the journal knew it was sent, not what became of it
    log = arb.restarted()
    assert f"reconciled leg {sell['label']} ({sell['client_order_id']})" in log
    _, k_state = check_journal_matches_venues(arb)
    [k_order] = k_state["orders"]
    assert (k_order["status"], k_order["filled"]) == ("closed", "0.999")
    row = {o["venue"]: o for o in arb.rows("SELECT * FROM orders")}["kraken"]
    assert (row["run_id"], row["status"], row["filled"], row["average_price"]) == \
        (sell["run_id"], "filled", 0.999, 110.0)  # the first run's row, brought up to date
    [result] = arb.rows("SELECT * FROM arb_results")
    assert result["status"] == "complete" and json.loads(result["residual"]) == {"BTC": 0.0}
    restart_twice_sends_nothing(arb)


def test_killed_between_journal_write_and_send_the_order_counts_as_never_placed_and_the_leg_is_hedged(
        tmp_path: Path, venues: tuple[str, str]) -> None:
    binance, kraken = venues
    # Kraken holds the sell unprocessed: it never reaches the book (the process dies first)
    control(kraken, "faults", [{"kind": "timeout", "endpoint": K_ORDER, "delay": 3600}])
    arb = Arb(tmp_path, venues)
    arb.killed_when(lambda: K_ORDER in endpoints(kraken) and bool(control(binance, "state")["orders"]))
    assert control(kraken, "state")["orders"] == []
    # Kraken still bids 110 for 1 BTC: the 0.999 BTC bought on Binance can be sold there; Binance,
    # whose ask the buy took, asks 112 again (no new arbitrage)
    control(binance, "book", {"symbol": "BTC/USDT", "bids": [["99", "5"]], "asks": [["112", "5"]]})
    log = arb.restarted()
    assert "not placed" in log
    b_state, k_state = check_journal_matches_venues(arb)
    [buy] = b_state["orders"]
    assert (buy["status"], buy["filled"]) == ("closed", "1")
    [hedge] = k_state["orders"]  # the hedge, under its own id: the lost leg's id was never sent
    legs = {o["label"][-2:]: o for o in arb.rows("SELECT * FROM orders")}
    assert hedge["client_order_id"] == legs["H0"]["client_order_id"] == client_order_id(legs["H0"]["label"])
    assert legs["L1"]["status"] == "rejected" and "not placed" in legs["L1"]["reason"]
    assert (hedge["side"], hedge["status"], hedge["filled"]) == ("sell", "closed", "0.999")
    residual = residual_of(arb, legs["L0"]["opportunity_id"])
    assert all(abs(v) < MIN_AMOUNT for v in residual.values()), residual
    quiet_books(binance, kraken)
    restart_twice_sends_nothing(arb)


def test_killed_during_hedging_the_restart_finds_the_hedge_filled_and_sends_no_other(
        tmp_path: Path, venues: tuple[str, str]) -> None:
    binance, kraken = venues
    # Binance refuses the buy; Kraken sells 0.999 BTC after a second; the hedge (a buy on Binance)
    # is placed and filled but never answered: the process dies with it in flight
    control(binance, "faults", [{"kind": "reject", "endpoint": B_ORDER}])
    control(kraken, "faults", [{"kind": "delay", "endpoint": K_ORDER, "delay": 1.5}])
    arb = Arb(tmp_path, venues)

    def hedge_in_flight() -> bool:
        sent = Counter(endpoints(binance))[B_ORDER]
        if sent == 1 and not getattr(hedge_in_flight, "armed", False):
            control(binance, "faults", [{"kind": "lost", "endpoint": B_ORDER, "delay": 3600}])
            hedge_in_flight.armed = True  # type: ignore[attr-defined]
        return sent >= 2 and bool(control(binance, "state")["orders"])

    arb.killed_when(hedge_in_flight)
    quiet_books(binance, kraken)
    log = arb.restarted()
    assert "reconciled hedge" in log
    b_state, k_state = check_journal_matches_venues(arb)
    [hedge] = b_state["orders"]
    [sell] = k_state["orders"]
    assert (hedge["side"], hedge["status"], sell["status"]) == ("buy", "closed", "closed")
    rows = {o["label"][-2:]: o for o in arb.rows("SELECT * FROM orders")}
    assert set(rows) == {"L0", "L1", "H0"} and rows["L0"]["status"] == "rejected"
    residual = residual_of(arb, rows["L0"]["opportunity_id"])
    assert all(abs(v) < MIN_AMOUNT for v in residual.values()), residual
    restart_twice_sends_nothing(arb)


def journal_order(tmp: Path, label: str, price: float) -> str:
    """A live run's journal holding one submitted Binance buy of 0.5 BTC (its process died)."""
    with Writer(tmp / "arb.db", "dead-run") as writer:
        writer.start_run(source="ccxt", strategy="cross_exchange", settings={}, live=True)
        cid = client_order_id(label)
        writer.write_order_submitted(OrderSubmitted(
            client_order_id=cid, opportunity_id=label.rpartition("-")[0], venue="binance", symbol="BTC/USDT",
            side="buy", amount=0.5, price=price, label=label, ts_init=time.time_ns()))
    return cid


def resting_order(base: str, cid: str, price: float) -> t.Any:
    """Place our order ``cid`` on the Binance emulator as a resting (GTC) limit buy of 0.5 BTC."""
    import ccxt

    from arbitrage.exchanges.urls import rewrite_urls

    client = ccxt.binance({"apiKey": BINANCE_KEY, "secret": BINANCE_SECRET, "enableRateLimit": False,
                           "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                                       "fetchMargins": False}})
    client.urls["api"] = rewrite_urls(client.urls["api"], base)
    client.load_markets()
    client.create_order("BTC/USDT", "limit", "buy", 0.5, price, {"clientOrderId": cid})
    return client


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
def test_an_order_left_open_on_the_venue_is_cancelled_or_adopted_by_policy(
        tmp_path: Path, venues: tuple[str, str], policy: str) -> None:
    binance, _ = venues
    cid = journal_order(tmp_path, "dead-run-1-L0", 90.0)
    client = resting_order(binance, cid, 90.0)
    arb = Arb(tmp_path, venues, ARB_LIVE__ON_RESTART_OPEN_ORDERS=policy)
    if policy == "cancel":
        log = arb.restarted()
        assert f"cancelled open order {cid}" in log
    else:
        process, log_path = arb.start()
        try:
            wait_for(lambda: says(log_path, "adopted open order"), process)
            time.sleep(0.5)
            [order] = control(binance, "state")["orders"]
            assert order["status"] == "open"  # adopted: left to the venue, followed
            assert arb.rows("SELECT status FROM orders") == [{"status": "open"}]
            client.cancel_order(order["id"], "BTC/USDT")  # it ends on the venue: the run records it
            wait_for(lambda: says(log_path, "start-up reconciliation done"), process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
        log = log_path.read_text()
        assert "start-up reconciliation done" in log
    [order] = control(binance, "state")["orders"]
    assert order["status"] == "canceled"
    assert arb.rows("SELECT run_id, status, filled FROM orders") == \
        [{"run_id": "dead-run", "status": "canceled", "filled": 0.0}]
    check_journal_matches_venues(arb)


def test_a_lookup_failing_at_start_keeps_trading_halted_and_says_why(
        tmp_path: Path, venues: tuple[str, str]) -> None:
    binance, kraken = venues
    journal_order(tmp_path, "dead-run-1-L0", 90.0)
    control(binance, "faults", [{"kind": "status", "status": 503, "endpoint": "GET /api/v3/openOrders",
                                 "times": 1000}])
    arb = Arb(tmp_path, venues)
    process, log_path = arb.start()
    try:
        wait_for(lambda: says(log_path, "live venue kraken open", "cannot complete, nothing trades"), process)
        dislocate(kraken)
        time.sleep(1.5)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    log = log_path.read_text()
    assert "start-up reconciliation of binance cannot complete, nothing trades: reading open orders on " \
           "BTC/USDT failed (ExchangeNotAvailable" in log
    assert "start-up reconciliation done" not in log
    assert B_ORDER not in endpoints(binance) and K_ORDER not in endpoints(kraken)  # nothing traded
    alerts = arb.rows("SELECT key, level FROM alerts WHERE key = 'reconcile:binance'")
    assert alerts == [{"key": "reconcile:binance", "level": "critical"}]
    assert [o["status"] for o in unfinished_orders(tmp_path / "arb.db")] == ["submitted"]
    assert "reconciling" in stderr or "reconcil" in log
