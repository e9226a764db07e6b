"""``arb check`` as a user runs it, against the Binance and Kraken emulators in subprocesses."""

from __future__ import annotations

import collections.abc as c
import json
import socket
from pathlib import Path

import pytest

from arbitrage.exchanges.check import classify
from tests.exchanges import emulated
from tests.exchanges.emulated import BINANCE_KEY, BINANCE_SECRET, KRAKEN_KEY, KRAKEN_SECRET, arb

WRONG_KEY, WRONG_SECRET = "wrong-KEY-x8Tq5ZrA", "wrong-SECRET-Ld73Vb0p"
SECRETS = (BINANCE_KEY, BINANCE_SECRET, KRAKEN_KEY, KRAKEN_SECRET, WRONG_KEY, WRONG_SECRET)


@pytest.fixture(scope="module")
def venues() -> c.Iterator[dict[str, str]]:
    with emulated.binance() as binance, emulated.kraken() as kraken:
        yield {"binance": binance, "kraken": kraken}


def urls(venues: dict[str, str]) -> list[str]:
    return [arg for name, base in venues.items() for arg in ("--exchange-url", f"{name}={base}")]


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_check_reports_markets_symbols_websockets_and_valid_keys(venues: dict[str, str],
                                                                 tmp_path: Path) -> None:
    env = {"ARB_BINANCE_API_KEY": BINANCE_KEY, "ARB_BINANCE_SECRET": BINANCE_SECRET,
           "ARB_KRAKEN_API_KEY": KRAKEN_KEY, "ARB_KRAKEN_SECRET": KRAKEN_SECRET}
    args = ("check", "--exchanges", "binance,kraken", *urls(venues), "--symbols", "BTC/USDT,XRP/USD,FOO/USDT")
    result = arb(*args, "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    binance, kraken = json.loads(result.stdout)
    # Binance: ccxt's 7 recorded spot markets and the recording's 4 (tests/emulator/binance.py).
    assert binance == {"exchange": "binance", "reachable": True, "error": "", "markets": 11, "spot": 11,
                       "websocket": True, "websocket_batch": True, "symbols_found": ["BTC/USDT"],
                       "symbols_missing": {"XRP/USD": "not listed", "FOO/USDT": "not listed"},
                       "keys": "valid", "keys_detail": "", "ok": True}
    # Kraken: ccxt's 8 recorded pairs and the 10 of the cryptofeed recording.
    assert (kraken["markets"], kraken["spot"], kraken["keys"], kraken["ok"]) == (18, 18, "valid", True)
    assert kraken["symbols_found"] == ["BTC/USDT", "XRP/USD"]
    assert kraken["symbols_missing"] == {"FOO/USDT": "not listed"}
    assert kraken["websocket"] is True
    human = arb(*args, cwd=tmp_path, env=env)
    assert human.returncode == 0, human.stderr
    assert "binance" in human.stdout and "valid" in human.stdout and "FOO/USDT" in human.stdout
    no_secret_in(result.stdout, result.stderr, human.stdout, human.stderr)


def test_wrong_keys_are_invalid_by_authentication_error_and_fail_the_check(venues: dict[str, str],
                                                                           tmp_path: Path) -> None:
    env = {"ARB_BINANCE_API_KEY": WRONG_KEY, "ARB_BINANCE_SECRET": WRONG_SECRET,
           "ARB_KRAKEN_API_KEY": KRAKEN_KEY}  # Kraken: a key without its secret
    result = arb("check", "--exchanges", "binance,kraken", *urls(venues), "--json", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    binance, kraken = json.loads(result.stdout)
    assert binance["reachable"] and binance["keys"] == "invalid" and not binance["ok"]
    assert binance["keys_detail"].startswith("AuthenticationError: ")  # Binance -2015, unknown key
    assert kraken["keys"] == "incomplete" and not kraken["ok"]
    assert kraken["keys_detail"] == ("set: ARB_KRAKEN_API_KEY; both ARB_KRAKEN_API_KEY and ARB_KRAKEN_SECRET"
                                     " are needed")
    human = arb("check", "--exchanges", "binance,kraken", *urls(venues), cwd=tmp_path, env=env)
    assert human.returncode == 1 and "invalid" in human.stdout
    no_secret_in(result.stdout, result.stderr, human.stdout, human.stderr)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: nothing listens there


def test_unreachable_exchanges_are_one_line_each_exit_1_no_traceback(tmp_path: Path) -> None:
    port = closed_port()
    env = {"ARB_BINANCE_API_KEY": BINANCE_KEY, "ARB_BINANCE_SECRET": BINANCE_SECRET}
    result = arb("check", "--exchanges", "binance,kraken", "--exchange-url", f"binance=http://127.0.0.1:{port}",
                 "--exchange-url", f"kraken=http://127.0.0.1:{port}", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("binance: unreachable: ExchangeNotAvailable: ")
    assert lines[1].startswith("kraken: unreachable: ExchangeNotAvailable: ")
    assert "Traceback" not in result.stderr
    no_secret_in(result.stdout, result.stderr)


@pytest.mark.parametrize(("args", "key"), [
    (("--exchanges", "nosuchexchange"), "ccxt.exchanges"),
    ((), "ccxt.exchanges"),
    (("--exchanges", "binance", "--exchange-url", "binance"), "--exchange-url"),
    (("--exchanges", "binance", "--timeout", "0"), "--timeout"),
])
def test_bad_settings_are_one_line_exit_2(args: tuple[str, ...], key: str, tmp_path: Path) -> None:
    result = arb("check", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"settings error: {key}: ")
    assert len(result.stderr.splitlines()) == 1


def test_classify_follows_ccxt_exception_classes() -> None:
    import ccxt

    assert classify(ccxt.RequestTimeout("x")) == "unreachable"
    assert classify(ccxt.ExchangeNotAvailable("x")) == "unreachable"
    assert classify(ccxt.DDoSProtection("x")) == "unreachable"
    assert classify(ccxt.RateLimitExceeded("x")) == "unreachable"
    assert classify(ccxt.InvalidNonce("x")) == "nonce refused"
    assert classify(ccxt.AuthenticationError("x")) == "keys invalid"
    assert classify(ccxt.PermissionDenied("x")) == "keys invalid"
    assert classify(ccxt.NotSupported("x")) == "not supported"
    assert classify(ccxt.BadSymbol("x")) == "exchange error"
    assert classify(ValueError("x")) == "failed"
