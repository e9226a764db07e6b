"""Secrets planted everywhere at once never reach anything a run leaves behind.

One ``arb run --live`` against the Binance and Kraken emulators (the real ccxt) with distinctive
secrets in every place a user puts them: exchange keys in ``ARB_<EXCHANGE>_API_KEY/_SECRET``, a
Redis URL with a user and password (a real ``redis-server`` requiring them), two Apprise
``json://`` URLs with a password and a token in the path (one to a local endpoint, one to a closed
port: a failed send), and an exchange error that echoes the key and secret (Kraken rejects the
arbitrage's leg with them in its message; the Binance leg is then hedged). Then every artifact is
searched for every secret, in full and by its first ``HEAD`` characters (a truncated message):
stdout and stderr, every file the run wrote (log, database, its WAL and shared memory, also as
copied mid-run, markets cache), every row of every table, every Redis key (strings, hashes, sets,
sorted sets, lists, streams) and every Pub/Sub message mirrored during the run, ``arb report``
(text and ``--json``), and the bodies the notification endpoint received. (The endpoint's request
path and Authorization header carry the token and password by design: that is how they are sent.)
"""

from __future__ import annotations

import base64
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
from pathlib import Path

import pytest

pytest.importorskip("ccxt.pro")
redis = pytest.importorskip("redis")

from tests.bridge.conftest import BINARY, RedisServer  # noqa: E402
from tests.emulator.processes import arb_env, binance_and_kraken, control, plant  # noqa: E402
from tests.emulator.recordings import DATA as DATA_DIR  # noqa: E402
from tests.notify.helpers import Sink, closed_port  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not (DATA_DIR / "ccxt").exists(), reason=f"no shared data at {DATA_DIR}"),
    pytest.mark.skipif(BINARY is None, reason="redis-server is not installed (apt-get install redis-server)"),
]

KRAKEN_SECRET_TEXT = "SwKrSecretText7c1d9e5f3a2b"
SECRETS = {
    "binance api key": "SwBnKey4q8z1m6x3v9",
    "binance secret": "SwBnSecret2k7j5h0g8f",
    "kraken api key": "SwKrKey6t3y9u1i4o",
    "kraken secret": base64.b64encode(KRAKEN_SECRET_TEXT.encode()).decode(),
    "kraken secret (decoded)": KRAKEN_SECRET_TEXT,
    "redis password": "SwRedisPw5n2b8c4d1e",
    "notification password": "SwHookPw3r6e9w2q",
    "notification token": "SwHookToken8p5o2i7u",
}
HEAD = 9
"""Also searched: each secret's first characters, so a secret cut short is still found."""
KEY, SECRET = SECRETS["binance api key"], SECRETS["binance secret"]
K_KEY, K_SECRET = SECRETS["kraken api key"], SECRETS["kraken secret"]
REDIS_USER, REDIS_PW = "sweeper", SECRETS["redis password"]
HOOK_PW, HOOK_TOKEN = SECRETS["notification password"], SECRETS["notification token"]


@contextlib.contextmanager
def emulators() -> t.Iterator[tuple[str, str]]:
    """Binance (holding 1000 USDT) and Kraken (1 BTC), each in its own process, with the keys."""
    with binance_and_kraken(KEY, SECRET, K_KEY, K_SECRET) as (binance, kraken):
        plant(binance, kraken)
        yield binance, kraken


@contextlib.contextmanager
def redis_with_password(directory: Path) -> t.Iterator[tuple[RedisServer, t.Any]]:
    """A redis-server only a user with the planted password may use; yields it and an admin client."""
    server = RedisServer(directory, "--requirepass", "sweep-admin-only")
    server.start()
    admin = redis.Redis(port=server.port, password="sweep-admin-only")
    try:
        admin.execute_command("ACL", "SETUSER", REDIS_USER, "on", f">{REDIS_PW}", "~*", "&*", "+@all")
        yield server, admin
    finally:
        admin.close()
        server.kill()


class PubSubTap:
    """Every Pub/Sub message published while it listens (a plain redis-py pattern subscription)."""

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(port=port, password="sweep-admin-only")
        self.pubsub = self.client.pubsub()
        self.pubsub.psubscribe("*")
        self.messages: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self.stop.is_set():
            message = self.pubsub.get_message(timeout=0.05)
            if message is not None and message["type"] == "pmessage":
                self.messages.append(message["channel"] + b" " + message["data"])

    def close(self) -> list[bytes]:
        self.stop.set()
        self.thread.join(5)
        self.pubsub.close()
        self.client.close()
        return self.messages


def redis_dump(admin: t.Any) -> dict[str, bytes]:
    """Every key's value, by key, whatever its type."""
    out: dict[str, bytes] = {}
    for key in admin.scan_iter(count=1000):
        kind = admin.type(key).decode()
        if kind == "string":
            value: t.Any = admin.get(key)
        elif kind == "hash":
            value = admin.hgetall(key)
        elif kind == "set":
            value = sorted(admin.smembers(key))
        elif kind == "zset":
            value = admin.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = admin.lrange(key, 0, -1)
        elif kind == "stream":
            value = admin.xrange(key)
        else:
            value = f"<{kind}>"
        out[f"redis {kind} {key.decode(errors='replace')}"] = key + b" " + repr(value).encode()
    return out


def database_rows(path: Path) -> dict[str, bytes]:
    """Every row of every table, as text, by table."""
    out: dict[str, bytes] = {}
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.text_factory = bytes
        tables = [r[0].decode() for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            out[f"database table {table}"] = repr(rows).encode()
    return out


def files(root: Path, label: str) -> dict[str, bytes]:
    return {f"{label} {p.relative_to(root)}": p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def log_says(path: Path, *texts: str) -> bool:
    return path.exists() and all(text in path.read_text() for text in texts)


def leaks(artifacts: dict[str, bytes]) -> list[str]:
    found = []
    for where, data in artifacts.items():
        for name, secret in SECRETS.items():
            if secret.encode() in data:
                found.append(f"the {name} in {where}")
            elif secret[:HEAD].encode() in data:
                found.append(f"the start of the {name} ({secret[:HEAD]}...) in {where}")
    return found


def test_planted_secrets_are_in_no_artifact_of_a_live_run(tmp_path: Path) -> None:
    run_dir, config = tmp_path / "run", tmp_path / "config"
    run_dir.mkdir()
    config.mkdir()
    with redis_with_password(config) as (server, admin), Sink() as sink, emulators() as (binance, kraken):
        redis_url = f"redis://{REDIS_USER}:{REDIS_PW}@127.0.0.1:{server.port}/0"
        hook = f"json://arb:{HOOK_PW}@127.0.0.1:{sink.port}/hook/{HOOK_TOKEN}"
        dead_hook = f"json://arb:{HOOK_PW}@127.0.0.1:{closed_port()}/hook/{HOOK_TOKEN}"
        settings = config / "settings.toml"  # outside the run's folder: it holds the secrets
        settings.write_text(f'[notify]\nurls = ["{hook}"]\narbs = "each"\nalert_level = "info"\n'
                            'timeout_s = 2.0\n[redis]\nbooks = true\n'
                            'streams = ["Opportunity", "FeedStatus", "BookUpdate"]\n')
        # Kraken refuses the arbitrage's leg with the key and the secret in its message, the secret
        # where arb cuts a long exchange message short (200 characters: it is cut in the middle)
        control(kraken, "faults", [{"kind": "reject", "reason": "invalid_order", "message": (
            f"EOrder:Invalid order: key {K_KEY} {'x' * 114} secret {K_SECRET} refused")}])
        env = arb_env(KEY, SECRET, K_KEY, K_SECRET, ARB_CCXT__MARKETS_CACHE=str(run_dir / "markets"),
                      ARB_LOG__LEVEL="DEBUG")
        command = [sys.executable, "-m", "arbitrage", "run", "--config", str(settings), "--source", "ccxt",
                   "--exchanges", "binance,kraken", "--symbols", "BTC/USDT",
                   "--exchange-url", f"binance={binance}", "--exchange-url", f"kraken={kraken}",
                   "--redis", redis_url, "--notify", dead_hook, "--duration", "30", "--db", "arb.db",
                   "--json", "--no-ui", "--live", "--yes"]
        tap = PubSubTap(server.port)
        process = subprocess.Popen(command, cwd=run_dir, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            log = run_dir / "logs" / "arb.log"
            deadline = time.monotonic() + 30
            while not log_says(log, "live venue binance open", "live venue kraken open") and \
                    process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the books' subscriptions are answered
            control(kraken, "book", {"symbol": "BTC/USDT", "bids": [["110", "1"]], "asks": [["111", "5"]]})
            deadline = time.monotonic() + 20
            while not log_says(log, '"arb ') and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # the hedge, the notifications and the mirror's writes
            mid_run = {f"mid-run copy of {p.name}": p.read_bytes()
                       for p in run_dir.glob("arb.db*") if p.is_file()}
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # Ctrl-C: the clean stop, then exit 130
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
            pubsub = tap.close()
        stored_in_redis = redis_dump(admin)
        posts = [json.dumps(p.payload).encode() for p in sink.posts]
    assert process.returncode == 130 and json.loads(stdout)["arbs_executed"] == 1, stderr[-3000:]

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    reports = {f"arb report{' '.join(extra)}": subprocess.run(
        [sys.executable, "-m", "arbitrage", "report", "--db", "arb.db", *extra], cwd=run_dir, env=env,
        capture_output=True, timeout=60) for extra in ((), ("--json",))}
    for done in reports.values():
        assert done.returncode == 0, done.stderr[-2000:]

    # the run did what the sweep relies on: a rejected leg, mirrored, notified, stored, reported
    rows = database_rows(run_dir / "arb.db")
    assert b"rejected" in rows["database table orders"] and b"InvalidOrder" in rows["database table orders"]
    assert any(b"OrderUpdate" in k and b"InvalidOrder" in v for k, v in
               ((k.encode(), v) for k, v in stored_in_redis.items()))
    assert any(b"OrderUpdate" in m for m in pubsub)
    assert posts and any(b"partial" in p or b"arb" in p.lower() for p in posts), posts
    assert json.loads(reports["arb report--json"].stdout)["arbs_executed"] >= 1

    artifacts: dict[str, bytes] = {"arb run stdout": stdout.encode(), "arb run stderr": stderr.encode()}
    artifacts.update(files(run_dir, "file"))
    artifacts.update(mid_run)
    artifacts.update(rows)
    artifacts.update(stored_in_redis)
    artifacts.update({f"Pub/Sub message {i}": m for i, m in enumerate(pubsub)})
    for name, done in reports.items():
        artifacts[f"{name} stdout"], artifacts[f"{name} stderr"] = done.stdout, done.stderr
    artifacts.update({f"notification body {i}": body for i, body in enumerate(posts)})
    found = leaks(artifacts)
    assert not found, "secrets leaked: " + "; ".join(found)
