"""The whole product against two emulated venues, as an operator runs it: three processes.

A Binance and a Kraken emulator (``python -m tests.emulator``) serve a planted dislocation on
BTC/USDT; ``arb run --source ccxt --live --yes`` with the emulators' keys in the environment finds
it, sends both legs, and what the emulators booked (orders, client ids, trades, fees, balances) is
exactly what ``arb report --json`` and the run's database say. The same run without ``--live``
paper-trades the emulators' books and sends no order.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import typing as t
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("ccxt.pro")

REPO = Path(__file__).resolve().parents[2]
KEY = "arbTESTkey-0a1b2c3d4e5f"
SECRET = "YXJiLXRlc3Qtc2VjcmV0LWFyYi10ZXN0LXNlY3JldC1hcmItdGVzdC1zZWNyZXQtYXJiLXRlc3Qtc2VjcmV0LQ=="
"""One key pair for both venues; the secret is base64, as Kraken's are."""
SYMBOL = "BTC/USDT"
SETTINGS = """\
[ccxt]
enable_rate_limit = false
markets_cache = ""
[log]
file = ""
[live]
balance_refresh_s = 5.0
"""
ORDER_ENDPOINTS = {"POST /api/v3/order", "POST /0/private/AddOrder"}


@contextlib.contextmanager
def emulator(venue: str, *args: str) -> t.Iterator[str]:
    """One emulator in its own process; yields its base URL."""
    with subprocess.Popen([sys.executable, "-m", "tests.emulator", venue, "--port", "0", *args],
                          stdout=subprocess.PIPE, text=True, cwd=REPO) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.terminate()


def control(base: str, what: str, body: t.Any = None) -> t.Any:
    """The emulator's control API: ``GET state`` without a body, ``POST`` with one."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/_emulator/{what}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


@contextlib.contextmanager
def venues() -> t.Iterator[tuple[str, str]]:
    """Binance (quiet: no replay) holding 1000 USDT, Kraken holding 1 BTC, books that do not cross
    yet: Binance asks 112, Kraken bids 109."""
    with emulator("binance", "--scenario", "quiet", "--api-key", KEY, "--secret", SECRET,
                  "--balance", "USDT=1000") as binance, \
            emulator("kraken", "--key", f"{KEY}={SECRET}", "--balance", "BTC=1") as kraken:
        control(binance, "book", {"symbol": SYMBOL, "bids": [["99", "5"]], "asks": [["112", "5"]]})
        control(kraken, "book", {"symbol": SYMBOL, "bids": [["109", "1"]], "asks": [["111", "5"]]})
        yield binance, kraken


def dislocate(binance: str, kraken: str) -> None:
    """The dislocation, sent down both websockets: Kraken bids 110 for 1 BTC, then Binance asks 100
    for 1 BTC. Both books change, so neither is stale when the second arrives."""
    control(kraken, "book", {"symbol": SYMBOL, "bids": [["110", "1"]], "asks": [["111", "5"]]})
    control(binance, "book", {"symbol": SYMBOL, "bids": [["99", "5"]], "asks": [["100", "1"], ["112", "5"]]})


def subscribed(base: str) -> bool:
    """Whether a websocket client has sent the emulator a message (its subscription)."""
    return any(r["method"] == "WS<" for r in control(base, "state")["requests"])


def arb_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    for name in ("BINANCE", "KRAKEN"):
        env[f"ARB_{name}_API_KEY"], env[f"ARB_{name}_SECRET"] = KEY, SECRET
    return env


def arb_run(tmp_path: Path, binance: str, kraken: str, *extra: str, ready: t.Callable[[list[str]], bool],
            done: t.Callable[[], bool]) -> subprocess.CompletedProcess[str]:
    """``arb run`` on both emulators: the dislocation is planted once ``ready(stderr lines so far)``
    holds, and the run interrupted (Ctrl-C, a clean stop) once ``done()`` holds, at the latest after
    its ``--duration``."""
    (tmp_path / "settings.toml").write_text(SETTINGS)
    args = [sys.executable, "-m", "arbitrage", "run", "--config", str(tmp_path / "settings.toml"),
            "--source", "ccxt", "--exchanges", "binance,kraken", "--symbols", SYMBOL,
            "--exchange-url", f"binance={binance}", "--exchange-url", f"kraken={kraken}",
            "--duration", "60", "--no-ui", "--json", "--db", str(tmp_path / "arb.db"), *extra]
    lines: list[str] = []
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                          env=arb_env()) as proc:
        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        planted = False
        while proc.poll() is None and not (planted and done()):
            if not planted and ready(lines):
                dislocate(binance, kraken)
                planted = True
            time.sleep(0.2)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        stdout = proc.stdout.read() if proc.stdout else ""
        proc.wait(timeout=60)
        reader.join(timeout=10)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, "".join(lines))


def live_venues_open(lines: list[str]) -> bool:
    """Whether arb has opened both live venues (its log says so on stderr)."""
    text = "".join(lines)
    return "live venue binance open" in text and "live venue kraken open" in text


def report(tmp_path: Path) -> dict[str, t.Any]:
    done = subprocess.run([sys.executable, "-m", "arbitrage", "report", "--db", str(tmp_path / "arb.db"),
                           "--json"], capture_output=True, text=True, cwd=tmp_path, env=arb_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def stored(tmp_path: Path, table: str) -> list[dict[str, t.Any]]:
    with contextlib.closing(sqlite3.connect(tmp_path / "arb.db")) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(f"SELECT * FROM {table}")]


def arb_stored(tmp_path: Path) -> bool:
    """Whether the run's database holds an arbitrage result yet."""
    try:
        return bool(stored(tmp_path, "arb_results"))
    except sqlite3.Error:
        return False


def test_a_live_run_trades_the_dislocation_and_the_venues_book_what_arb_reports(tmp_path: Path) -> None:
    with venues() as (binance, kraken):
        done = arb_run(tmp_path, binance, kraken, "--live", "--yes", ready=live_venues_open,
                       done=lambda: arb_stored(tmp_path))
        b_state, k_state = control(binance, "state"), control(kraken, "state")
    assert done.returncode == 130, done.stderr  # stopped with SIGINT after a clean stop
    summary = json.loads(done.stdout)
    assert summary["arbs_executed"] == 1 and summary["orders"] == 2
    assert KEY not in done.stderr and SECRET not in done.stderr

    # Each venue booked one order under the client id arb gave it, filled whole at the planted price.
    orders = {o["venue"]: o for o in stored(tmp_path, "orders")}
    [b_order], [k_order] = b_state["orders"], k_state["orders"]
    assert (b_order["client_order_id"], b_order["side"], b_order["status"]) == \
        (orders["binance"]["client_order_id"], "buy", "closed")
    assert (k_order["client_order_id"], k_order["side"], k_order["status"]) == \
        (orders["kraken"]["client_order_id"], "sell", "closed")
    [b_trade], [k_trade] = b_state["trades"], k_state["trades"]
    # By hand. Binance: buy 1 BTC @ 100 = 100 USDT (all the ask holds); the fee, 0.1 % of what a buy
    # receives, is 0.001 BTC, so 0.999 BTC arrive. Kraken: sell those 0.999 BTC @ 110 = 109.89 USDT;
    # the fee, 0.26 % in quote, is 0.285714, rounded up to BTC/USDT's 5 cost decimals: 0.28572.
    expected = {"binance": ("buy", "100", "1", "0.001", "BTC"),
                "kraken": ("sell", "110", "0.999", "0.28572", "USDT")}
    for trade in (b_trade, k_trade):
        assert (trade["side"], trade["price"], trade["amount"], trade["fee"], trade["fee_currency"]) == \
            expected["binance" if trade is b_trade else "kraken"], trade
    fills = {f["venue"]: f for f in stored(tmp_path, "fills")}
    for venue, (side, price, amount, fee, currency) in expected.items():
        fill = fills[venue]
        assert (fill["side"], fill["price"], fill["amount"], fill["fee_currency"]) == \
            (side, float(price), float(amount), currency)
        assert fill["fee"] == pytest.approx(float(fee), abs=1e-12)
        assert fill["client_order_id"] == orders[venue]["client_order_id"]
        # its time is the venue's (Binance's order reply lists fills without one: the order's)
        assert abs(fill["ts_event"] - fill["ts_init"]) < 60e9, fill
    # Balances: Binance 1000 - 100 = 900 USDT and 0.999 BTC; Kraken 1 - 0.999 = 0.001 BTC and
    # 109.89 - 0.28572 = 109.60428 USDT. Nothing is used by an open order.
    b_bal = {a: (b["free"], b["used"]) for a, b in b_state["balances"].items()}
    k_bal = {a: (b["free"], b["used"]) for a, b in k_state["balances"].items()}
    assert {a: Decimal(f) for a, (f, _) in b_bal.items()} == {"USDT": 900, "BTC": Decimal("0.999")}
    assert {a: Decimal(f) for a, (f, _) in k_bal.items()} == \
        {"BTC": Decimal("0.001"), "USDT": Decimal("109.60428")}
    assert all(Decimal(u) == 0 for _, u in [*b_bal.values(), *k_bal.values()])

    # The report says the same: one complete arbitrage of two orders; realized 109.60428 - 100 =
    # 9.60428 USDT; fees 0.28572 USDT + 0.001 BTC valued at the 100 it was bought at = 0.38572 USDT;
    # no residual (the 0.999 BTC received are the 0.999 BTC sold).
    result = report(tmp_path)
    assert result["live"] is True and result["arbs_executed"] == 1 and result["orders"] == 2
    assert result["arbs_by_status"] == {"complete": 1}
    assert result["realized_pnl"] == {"USDT": pytest.approx(9.60428, abs=1e-9)}
    assert result["fees"] == {"USDT": pytest.approx(0.38572, abs=1e-9)}
    assert result["residual"] == {}
    endpoints = {f"{r['method']} {r['path']}" for r in b_state["requests"] + k_state["requests"]}
    assert endpoints >= ORDER_ENDPOINTS


def test_without_live_the_run_paper_trades_the_venues_books_and_sends_no_order(tmp_path: Path) -> None:
    with venues() as (binance, kraken):
        done = arb_run(tmp_path, binance, kraken, ready=lambda _: subscribed(binance) and subscribed(kraken),
                       done=lambda: arb_stored(tmp_path))
        b_state, k_state = control(binance, "state"), control(kraken, "state")
    assert done.returncode == 130, done.stderr
    summary = json.loads(done.stdout)
    assert summary["arbs_executed"] >= 1 and summary["orders"] >= 2
    assert report(tmp_path)["live"] is False
    assert b_state["orders"] == [] and k_state["orders"] == []
    endpoints = {f"{r['method']} {r['path']}" for r in b_state["requests"] + k_state["requests"]}
    assert not endpoints & ORDER_ENDPOINTS
    assert not [e for e in endpoints if "private" in e or "account" in e or "order" in e.lower()]
    # The emulators' books are untouched: paper fills never reach a venue.
    assert {"GET /api/v3/depth", "WS /ws"} & endpoints
