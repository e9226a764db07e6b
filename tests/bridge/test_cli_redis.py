"""Bad bridge settings are one line naming the key (exit 2); ``arb redis tail`` prints what arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from arbitrage.cli import app
from tests.bridge.conftest import RedisServer


@pytest.mark.parametrize(("args", "toml", "key"), [
    (["--redis", "http://user:pw-xyz@host:1"], "", "redis.url:"),
    (["--role", "engine"], "", "redis.role: engine needs redis.url"),
    (["--role", "boss", "--redis", "redis://h"], "", "--role:"),
    (["--role", "engine", "--redis", "redis://h", "--source", "sim"], "", "--source:"),
    ([], "[redis]\nurl = 'redis://h'\nmaxlen = 0\n", "redis.maxlen:"),
    ([], "[redis]\nurl = 'redis://h'\ninbound = ['BookUpdate', 'OrderSubmitted']\n",
     "redis.inbound[1]: OrderSubmitted may never come in from Redis"),
    ([], "[redis]\nevents = ['Fill', 'Nope']\n", "redis.events[1]:"),
    ([], "[redis]\nprefix = ''\n", "redis.prefix:"),
])
def test_bad_bridge_settings_exit_2_with_one_line_naming_the_key(
        tmp_path: Path, args: list[str], toml: str, key: str) -> None:
    config = tmp_path / "s.toml"
    config.write_text(toml)
    result = CliRunner().invoke(app, ["run", "-c", str(config), "--duration", "1", "--no-ui", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("settings error: ") and key in lines[0], result.output
    assert "pw-xyz" not in result.output


def _tail(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "arbitrage", "redis", "tail", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def _wait_connected(client: redis.Redis, proc: subprocess.Popen[str], subscribed: bool) -> None:
    """Until a tail is subscribed (channels) or blocked in its read (streams): what follows is new."""
    deadline = time.monotonic() + 60
    while True:
        clients = [c for c in client.client_list() if c["name"] == "arb-tail"]
        if any((int(c["sub"]) or int(c["psub"])) if subscribed else c["cmd"] == "xread" for c in clients):
            return
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "arb redis tail did not connect"
        time.sleep(0.05)


def test_tail_prints_channel_messages_and_new_stream_entries_as_they_arrive(
        redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.xadd("arb:stream:Fill", {"type": "Fill", "event": b'{"type":"Fill","old":1}'})  # before: not shown
    channels = _tail("--redis", redis_server.url, "--channel", "Alert", "--max", "2")
    streams = _tail("--redis", redis_server.url, "--stream", "Fill", "--json", "--max", "2")
    try:
        _wait_connected(client, channels, subscribed=True)
        _wait_connected(client, streams, subscribed=False)
        for n in range(2):
            client.publish("arb:Alert", f'{{"type":"Alert","n":{n}}}')
            client.publish("arb:Fill", '{"type":"Fill"}')  # another channel: not asked for
            client.xadd("arb:stream:Fill", {"type": "Fill", "node": "x", "run": "r", "seq": n,
                                            "event": f'{{"type":"Fill","n":{n}}}'})
        out_channels, _ = channels.communicate(timeout=60)
        out_streams, _ = streams.communicate(timeout=60)
    finally:
        for proc in (channels, streams):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    lines = out_channels.strip().splitlines()
    assert len(lines) == 2 and all(" arb:Alert - Alert {" in line for line in lines)
    assert ['"n":0}' in lines[0], '"n":1}' in lines[1]] == [True, True]
    rows = [json.loads(line) for line in out_streams.strip().splitlines()]
    assert [(r["source"], r["key"], r["event"]) for r in rows] == [
        ("arb:stream:Fill", "r:0", {"type": "Fill", "n": 0}),
        ("arb:stream:Fill", "r:1", {"type": "Fill", "n": 1})]
    client.close()


def test_tail_as_a_group_consumer_goes_on_where_the_group_left_off(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    for n in range(5):
        client.xadd("arb:stream:ArbResult", {"type": "ArbResult", "node": "x", "run": "r", "seq": n,
                                             "event": f'{{"type":"ArbResult","n":{n}}}'})
    seen = []
    for count in ("2", "3"):
        proc = _tail("--redis", redis_server.url, "--stream", "ArbResult", "--group", "ops", "--from-start",
                     "--consumer", "me", "--json", "--max", count)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        seen += [line.split('"key":"')[1].split('"')[0] for line in out.strip().splitlines()]
    assert seen == [f"r:{n}" for n in range(5)]
    assert client.xpending("arb:stream:ArbResult", "ops")["pending"] == 0
    client.close()
