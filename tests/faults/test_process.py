"""The same end-state rules through the product as an operator runs it: ``arb run --source ccxt
--live --yes`` in its own process against a Binance and a Kraken emulator in theirs (one pair for
the module, faults injected through their control API), then stopped like Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from tests.emulator.processes import control, emulators
from tests.faults.harness import (
    DISLOCATED,
    ORDER_ENDPOINT,
    QUIET,
    START,
    SYMBOL,
    B,
    K,
    Ledger,
    Outcome,
    assert_end_state,
)
from tests.trading.live_helpers import KEY, SECRET
from tests.trading.test_live_run import log_says

pytest.importorskip("ccxt.pro")

ENDED = ("arb complete", "arb partial", "arb failed")
"""What the executor logs when an arbitrage is accounted for (after its hedges and balance reads)."""


@pytest.fixture(scope="module")
def pair() -> t.Iterator[dict[str, str]]:
    with emulators(("binance", "--scenario", "quiet", "--api-key", KEY, "--secret", SECRET),
                   ("kraken", "--key", f"{KEY}={SECRET}")) as (binance, kraken):
        yield {B: binance, K: kraken}


def plant(urls: dict[str, str], books: dict[str, t.Any], *venues: str) -> None:
    for venue in venues or (K, B):
        bids, asks = books[venue]
        control(urls[venue], "book", {"symbol": SYMBOL, "bids": [list(b) for b in bids],
                                      "asks": [list(a) for a in asks]})


def arb_run(tmp_path: Path, urls: dict[str, str], faults: dict[str, list[dict[str, t.Any]]]) -> Outcome:
    """One live run: balances and quiet books planted, the faults injected and the dislocation
    planted once both venues are open and subscribed, stopped (SIGTERM) once the arbitrage ended."""
    for venue, url in urls.items():
        control(url, "balances", {asset: str(amount) for asset, amount in START[venue].items()})
    plant(urls, QUIET)
    before = {venue: control(url, "state") for venue, url in urls.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    env.update({"ARB_BINANCE_API_KEY": KEY, "ARB_BINANCE_SECRET": SECRET, "ARB_KRAKEN_API_KEY": KEY,
                "ARB_KRAKEN_SECRET": SECRET, "ARB_CCXT__ENABLE_RATE_LIMIT": "false",
                "ARB_CCXT__MARKETS_CACHE": "",
                "ARB_CCXT__TIMEOUT_MS": "1000", "ARB_LIVE__NOT_FOUND_AFTER_S": "2.5",
                "ARB_LIVE__ORDER_DEADLINE_S": "2",
                "ARB_LIVE__LOOKUP_BACKOFF_S": "0.02", "ARB_LIVE__UNKNOWN_RETRY_S": "0.05",
                "ARB_TRADING__HEDGE_MAX_LOSS_BPS": "10000", "ARB_MONITOR__HALT_FILE": "",
                "ARB_CCXT__RATE_LIMITS__BINANCE": "1000", "ARB_CCXT__RATE_LIMITS__KRAKEN": "1000"})
    command = [sys.executable, "-m", "arbitrage", "run", "--source", "ccxt", "--exchanges", "binance,kraken",
               "--symbols", SYMBOL, "--exchange-url", f"binance={urls[B]}", "--exchange-url",
               f"kraken={urls[K]}", "--strategy", "cross_exchange", "--duration", "40", "--db", "arb.db",
               "--json", "--no-ui", "--live", "--yes"]
    log = tmp_path / "logs" / "arb.log"
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        def subscribed(venue: str) -> bool:
            return any(r["method"] == "WS<" for r in control(urls[venue], "state")["requests"]
                       [len(before[venue]["requests"]):])

        deadline = time.monotonic() + 30  # backstops, never timing assertions
        while process.poll() is None and time.monotonic() < deadline and not (
                log_says(log, "live venue binance open", "live venue kraken open")
                and subscribed(B) and subscribed(K)):
            time.sleep(0.05)
        time.sleep(0.3)  # the subscriptions' snapshots are in
        for venue, listed in faults.items():
            control(urls[venue], "faults", listed)
        plant(urls, DISLOCATED)
        while process.poll() is None and time.monotonic() < deadline + 20 and not any(
                log_says(log, ended) for ended in ENDED):
            time.sleep(0.05)
        stopped = process.poll() is None
        if stopped:
            process.send_signal(signal.SIGTERM)  # a clean stop, then exit 128 + 15 as shells expect
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == (128 + signal.SIGTERM if stopped else 0), stderr[-3000:]
    after = {venue: control(url, "state") for venue, url in urls.items()}
    summary = json.loads(stdout)
    return Outcome(Ledger.between(before[B], after[B]), Ledger.between(before[K], after[K]), [],
                   tmp_path / "arb.db", summary)


def legs(outcome: Outcome) -> list[tuple[str, str, str, str]]:
    [row] = outcome.rows("SELECT legs FROM arb_results")
    return [(leg["venue"], leg["side"], leg["purpose"], leg["status"]) for leg in json.loads(row["legs"])]


def test_a_live_process_looks_a_lost_answer_up_and_never_resends_it(tmp_path: Path,
                                                                     pair: dict[str, str]) -> None:
    outcome = arb_run(tmp_path, pair, {B: [{"kind": "lost", "endpoint": ORDER_ENDPOINT[B]}]})
    assert_end_state(outcome)
    assert legs(outcome) == [(B, "buy", "leg", "filled"), (K, "sell", "leg", "filled")]
    [order] = outcome.orders(B)
    assert outcome.sent(B) == [order.client_order_id]
    asked = [r.params.get("origClientOrderId") for r in outcome.binance.requests
             if r.endpoint == "GET /api/v3/order"]
    assert order.client_order_id in asked
    assert outcome.summary["arbs_by_status"] == {"complete": 1}


def test_a_live_process_hedges_the_buy_when_kraken_rejects_the_sell(tmp_path: Path,
                                                                     pair: dict[str, str]) -> None:
    reject = {"kind": "reject", "symbol": SYMBOL, "reason": "insufficient_funds"}
    outcome = arb_run(tmp_path, pair, {K: [reject]})
    assert_end_state(outcome)
    assert legs(outcome) == [(B, "buy", "leg", "filled"), (K, "sell", "leg", "rejected"),
                             (K, "sell", "hedge", "filled")]  # Kraken's 110 bid is the best
    assert outcome.summary["arbs_by_status"] == {"partial": 1}
