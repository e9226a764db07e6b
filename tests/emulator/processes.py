"""Emulators in their own processes (``python -m tests.emulator VENUE ... --port 0``), for the tests
that run ``arb`` as a subprocess against them, and the control API those tests plant state through.

One place starts them, reads each base URL from its first line of stdout, and reaps them even when
the test fails (kill, then ``communicate``, which waits and closes the pipe): a process or pipe left
behind is a ResourceWarning, and under ``filterwarnings = error`` it fails a later, unrelated test.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import json
import os
import subprocess
import sys
import typing as t
import urllib.request
from pathlib import Path

__all__ = ["REPO", "arb_env", "binance_and_kraken", "control", "emulators", "plant", "quiet_books"]

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def emulators(*commands: c.Sequence[str]) -> t.Iterator[list[str]]:
    """``python -m tests.emulator ARGS --port 0`` for each command, each in its own process, started
    at once; yields their base URLs in command order.

    :raises RuntimeError: if an emulator exits before printing its URL (bad arguments).
    """
    processes: list[subprocess.Popen[str]] = []
    try:
        for args in commands:
            processes.append(subprocess.Popen([sys.executable, "-m", "tests.emulator", *args, "--port", "0"],
                                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                              text=True))
        urls = []
        for args, process in zip(commands, processes, strict=True):
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            if not url:
                raise RuntimeError(f"python -m tests.emulator {' '.join(args)} exited with "
                                   f"{process.wait(timeout=10)} before printing its URL")
            urls.append(url)
        yield urls
    finally:
        for process in processes:
            process.kill()
            process.communicate(timeout=10)


@contextlib.contextmanager
def binance_and_kraken(binance_key: str, binance_secret: str, kraken_key: str,
                       kraken_secret: str) -> t.Iterator[tuple[str, str]]:
    """The Binance emulator (scenario ``quiet``) and the Kraken one, each accepting its key pair;
    yields their base URLs. Nothing is planted (``plant``)."""
    with emulators(("binance", "--scenario", "quiet", "--api-key", binance_key, "--secret", binance_secret),
                   ("kraken", "--key", f"{kraken_key}={kraken_secret}")) as (binance, kraken):
        yield binance, kraken


def control(base: str, what: str, body: t.Any = None) -> t.Any:
    """``GET`` (no ``body``) or ``POST`` ``{base}/_emulator/{what}``; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/_emulator/{what}", data=data,
                                     method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def plant(binance: str, kraken: str) -> None:
    """Binance holds 1000 USDT and no BTC, Kraken 1 BTC and no USDT; their books do not cross
    (``quiet_books``)."""
    control(binance, "balances", {"USDT": "1000", "BTC": "0"})
    control(kraken, "balances", {"USDT": "0", "BTC": "1"})
    quiet_books(binance, kraken)


def quiet_books(binance: str, kraken: str) -> None:
    """BTC/USDT books with no arbitrage between them: Binance 99/100, Kraken 98/99 (Binance asks
    100 against Kraken's bid 98; Kraken asks 99 against Binance's bid 99)."""
    control(binance, "book", {"symbol": "BTC/USDT", "bids": [["99", "5"]], "asks": [["100", "1"]]})
    control(kraken, "book", {"symbol": "BTC/USDT", "bids": [["98", "5"]], "asks": [["99", "5"]]})


def arb_env(binance_key: str, binance_secret: str, kraken_key: str, kraken_secret: str,
            **settings: str) -> dict[str, str]:
    """The environment of an ``arb`` subprocess trading on these emulators: this process's, less
    any ``ARB_*`` variable, with the key pairs, ccxt's rate limiting off and 100 requests a second
    allowed (not the default 1/s), no halt file; ``settings`` (``ARB_*`` names) added last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    env.update({
        "ARB_BINANCE_API_KEY": binance_key, "ARB_BINANCE_SECRET": binance_secret,
        "ARB_KRAKEN_API_KEY": kraken_key, "ARB_KRAKEN_SECRET": kraken_secret,
        "ARB_CCXT__ENABLE_RATE_LIMIT": "false",
        "ARB_CCXT__RATE_LIMITS__BINANCE": "100", "ARB_CCXT__RATE_LIMITS__KRAKEN": "100",
        "ARB_MONITOR__HALT_FILE": "", **settings,
    })
    return env
