"""Plugins and lifecycle: discovery, start order, failed starts, signals, summaries; the event union."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import msgspec
import pytest

from arbitrage.engine import Engine
from arbitrage.errors import PluginError
from arbitrage.events import EVENT_TYPES, BookUpdate, Heartbeat, decode_json, encode_json
from arbitrage.plugin import Plugin, discover, load_plugin, plugins_of_kind, start_order
from arbitrage.settings import Settings


class Recorder(Plugin):
    """A plugin that writes what happens to it into a shared journal."""

    def __init__(self, name: str, kind: str = "monitor", requires: tuple[str, ...] = (),
                 journal: list[str] | None = None, fail_start: bool = False) -> None:
        self.name = name  # type: ignore[misc]
        self.kind = kind  # type: ignore[misc]
        self.requires = requires  # type: ignore[misc]
        self.journal = journal if journal is not None else []
        self.fail_start = fail_start
        self.finished: dict[str, t.Any] = {}

    def setup(self, ctx: t.Any) -> None:
        super().setup(ctx)
        self.journal.append(f"setup {self.name}")

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("cannot connect")
        self.journal.append(f"start {self.name}")

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")

    def finish(self, summary: t.Mapping[str, t.Any]) -> None:
        self.finished = dict(summary)


def test_builtin_plugins_are_discovered_from_entry_points() -> None:
    names = set(discover())
    assert {"sim", "cross_exchange", "trader", "storage", "dashboard"} <= names
    assert "cross_exchange" in plugins_of_kind("strategy")
    assert load_plugin("sim", "source").kind == "source"


def test_loading_a_plugin_of_the_wrong_kind_or_name_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="is a strategy, not a source"):
        load_plugin("cross_exchange", "source")
    with pytest.raises(PluginError, match="available: cross_exchange"):
        load_plugin("nope", "strategy")


def test_start_order_puts_consumers_first_sources_last_and_honours_requires() -> None:
    plugins = [Recorder("feed", "source"), Recorder("strat", "strategy"), Recorder("store", "storage"),
               Recorder("alerts", "monitor", requires=("extra",)), Recorder("extra", "ui")]
    assert [p.name for p in start_order(plugins)] == ["store", "extra", "alerts", "strat", "feed"]


def test_dependency_cycle_is_refused() -> None:
    with pytest.raises(PluginError, match="cycle"):
        start_order([Recorder("a", requires=("b",)), Recorder("b", requires=("a",))])


def test_engine_runs_for_the_duration_then_stops_in_reverse_and_hands_out_the_summary() -> None:
    journal: list[str] = []
    plugins = [Recorder("feed", "source", journal=journal), Recorder("store", "storage", journal=journal)]
    engine = Engine(Settings(), plugins=plugins)
    summary = asyncio.run(engine.run(duration=0.05))
    assert journal == ["setup store", "setup feed", "start store", "start feed", "stop feed", "stop store"]
    assert summary["stop_reason"] == "duration reached"
    assert plugins[0].finished["run_id"] == engine.run_id


def test_a_failed_start_aborts_the_run_and_stops_what_had_started() -> None:
    journal: list[str] = []
    plugins = [Recorder("store", "storage", journal=journal),
               Recorder("feed", "source", journal=journal, fail_start=True)]
    with pytest.raises(PluginError, match="plugin feed failed to start: cannot connect"):
        asyncio.run(Engine(Settings(), plugins=plugins).run(duration=1))
    assert journal[-1] == "stop store"
    assert "stop feed" not in journal


def test_request_stop_ends_the_run_with_its_reason() -> None:
    class Quitter(Recorder):
        async def start(self) -> None:
            self.ctx.request_stop("replay finished")

    summary = asyncio.run(Engine(Settings(), plugins=[Quitter("q", "source")]).run(duration=60))
    assert summary["stop_reason"] == "replay finished"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_arb_run_cleanly_with_summary_flushed_database_and_exit_128_plus_it(tmp_path: Path,
                                                                                     sig: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    env["ARB_SIM__DISLOCATIONS_PER_MINUTE"] = "120"
    command = [sys.executable, "-m", "arbitrage", "run", "--duration", "60", "--json", "--no-ui",
               "--db", "arb.db"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    log = tmp_path / "logs" / "arb.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (log.exists() and "started" in log.read_text()):
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err  # 130 after Ctrl-C, 143 after SIGTERM, as shells expect
    summary = json.loads(out)
    assert summary["stop_reason"] == f"signal {signal.Signals(sig).name}"
    with sqlite3.connect(tmp_path / "arb.db") as conn:
        ended, opportunities = conn.execute(
            "SELECT ended_at, (SELECT count(*) FROM opportunities) FROM runs").fetchone()
    conn.close()
    assert ended
    assert opportunities == summary["opportunities"]


def test_every_event_type_round_trips_through_tagged_json() -> None:
    assert len(EVENT_TYPES) >= 12
    book = BookUpdate(venue="a", symbol="BTC/USDT", bids=((1.0, 2.0),), asks=((3.0, 4.0),), ts_event=5,
                      ts_init=6)
    data = encode_json(book)
    assert json.loads(data)["type"] == "BookUpdate"
    decoded = decode_json(data)  # a side is any Sequence of levels: msgspec decodes it as a list
    assert isinstance(decoded, BookUpdate) and encode_json(decoded) == data
    assert (decoded.bids, decoded.asks) == ([(1.0, 2.0)], [(3.0, 4.0)])
    assert decode_json(encode_json(Heartbeat(source="x", ts_init=1))) == Heartbeat(source="x", ts_init=1)


def test_events_are_immutable() -> None:
    beat = Heartbeat(source="x", ts_init=1)
    with pytest.raises(AttributeError):
        beat.source = "y"  # type: ignore[misc]
    assert msgspec.structs.replace(beat, source="y").source == "y"
