"""redis:// with a user and password works, and the password is in no log, database, report or output."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import redis

from arbitrage.bridge.mirror import RedisBridge
from arbitrage.engine import Engine
from arbitrage.sources.sim import SimSource
from tests.bridge.conftest import RedisServer
from tests.bridge.helpers import settings

PASSWORD = "S3cret-Redis-Pw0rd"


def arb(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]),
           "ARB_SIM__DISLOCATIONS_PER_MINUTE": "300"}
    return subprocess.run([sys.executable, "-m", "arbitrage", *args], cwd=cwd, text=True, capture_output=True,
                          timeout=timeout, env=env)


def test_a_password_url_works_and_the_password_is_never_shown_or_stored(
        tmp_path: Path, redis_factory: t.Callable[..., RedisServer]) -> None:
    server = redis_factory("--requirepass", "default-user-secret")  # nobody gets in without credentials
    admin = redis.Redis(port=server.port, password="default-user-secret")
    admin.execute_command("ACL", "SETUSER", "arbuser", "on", f">{PASSWORD}", "~*", "&*", "+@all")
    url = f"redis://arbuser:{PASSWORD}@127.0.0.1:{server.port}/0"
    done = arb("run", "--redis", url, "--duration", "2", "--no-ui", "--json", "--db", "arb.db",
               "--level", "DEBUG", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert admin.xlen("arb:stream:OrderSubmitted") > 0  # it did write, as arbuser
    report = arb("report", "--db", "arb.db", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    tail = arb("redis", "tail", "--redis", url, "--stream", "OrderSubmitted", "--from-start", "--max", "1",
               cwd=tmp_path, timeout=60)
    assert tail.returncode == 0 and "OrderSubmitted" in tail.stdout, tail.stderr[-2000:]
    wrong = arb("run", "--redis", url.replace(PASSWORD, PASSWORD + "-wrong"), "--duration", "1", "--no-ui",
                "--db", "wrong.db", cwd=tmp_path)
    assert wrong.returncode == 1 and "cannot reach Redis at redis://***@127.0.0.1" in wrong.stderr
    shown = [done.stdout, done.stderr, report.stdout, report.stderr, tail.stdout, tail.stderr, wrong.stdout,
             wrong.stderr]
    stored = [p.read_bytes().decode(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert "redis://***@127.0.0.1" in (tmp_path / "logs" / "arb.log").read_text()
    assert not [text for text in shown + stored if PASSWORD in text]
    admin.close()


def test_rediss_with_a_user_and_password_mirrors_over_tls(
        tmp_path: Path, redis_factory: t.Callable[..., RedisServer], tls_cert: Path) -> None:
    server = redis_factory("--requirepass", "default-user-secret", cert=tls_cert)
    admin = redis.Redis.from_url(server.url.replace("rediss://", "rediss://default:default-user-secret@"))
    admin.execute_command("ACL", "SETUSER", "arbuser", "on", f">{PASSWORD}", "~*", "&*", "+@all")
    url = server.url.replace("rediss://", f"rediss://arbuser:{PASSWORD}@")
    cfg = settings(tmp_path, url, redis={"books": True, "streams": ["BookUpdate"]})
    engine = Engine(cfg, plugins=[SimSource(realtime=False, max_events=300), RedisBridge()])
    summary = asyncio.run(engine.run(duration=30))
    assert summary["plugins"]["redis"]["written"] >= 300
    assert summary["plugins"]["redis"]["url"].startswith("rediss://***@127.0.0.1")
    assert admin.xlen("arb:stream:BookUpdate") == 300
    admin.close()
