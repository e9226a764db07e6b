"""Emulators in subprocesses and ``arb`` as a user runs it, for the ``arb check`` / ``arb scan
--exchange`` tests: the real CLI and the real ccxt against ``python -m tests.emulator``."""

from __future__ import annotations

import base64
import collections.abc as c
import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BINANCE_KEY = "bnc-KEY-q7Zx31vLmT"
BINANCE_SECRET = "bnc-SECRET-w9Rk2pXs84"
KRAKEN_KEY = "krk-KEY-h3Jd82nQpV"
KRAKEN_SECRET = base64.b64encode(b"krk-SECRET-" + bytes(range(53))).decode()
"""Distinctive values: a test searches every output for them."""

SETTINGS = """\
[ccxt]
markets_cache = ""
enable_rate_limit = false
"""


@contextlib.contextmanager
def emulator(venue: str, *args: str) -> c.Iterator[str]:
    """``python -m tests.emulator VENUE --port 0 ARGS`` running; yields its base URL."""
    process = subprocess.Popen([sys.executable, "-m", "tests.emulator", venue, "--port", "0", *args],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), f"{venue} emulator did not start: {base!r}"
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def binance() -> contextlib.AbstractContextManager[str]:
    return emulator("binance", "--scenario", "quiet", "--api-key", BINANCE_KEY, "--secret", BINANCE_SECRET)


def kraken() -> contextlib.AbstractContextManager[str]:
    return emulator("kraken", "--key", f"{KRAKEN_KEY}={KRAKEN_SECRET}")


def plant(base: str, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
    """Replace the emulator's book of ``symbol`` (its control API)."""
    body = json.dumps({"symbol": symbol, "bids": bids, "asks": asks}).encode()
    request = urllib.request.Request(f"{base}/_emulator/book", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert json.load(reply) == {"ok": True}


def arb(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m arbitrage ARGS`` in ``cwd`` (a settings file with no markets cache and no
    throttle is written there), with no ARB_ variable but ``env``'s."""
    (cwd / "settings.toml").write_text(SETTINGS)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "arbitrage", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)
