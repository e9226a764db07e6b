"""The monitor and the notifier wired by the engine, on the simulated market, to a real HTTP endpoint."""

from __future__ import annotations

from pathlib import Path

import msgspec

from arbitrage.engine import Engine
from arbitrage.monitor import Monitor, write_halt
from arbitrage.notify import Notifier
from arbitrage.plugin import load_plugin
from arbitrage.settings import Settings
from arbitrage.sources.sim import SimSource
from tests.monitor.helpers import run
from tests.notify.helpers import Sink


def test_engine_run_with_monitor_and_notifier_reports_and_notifies(tmp_path: Path) -> None:
    halt_file = tmp_path / "HALT"
    write_halt(halt_file, "left over from yesterday")  # a halt survives restarts
    base = Settings()
    with Sink() as sink:
        settings = msgspec.structs.replace(
            base,
            sim=msgspec.structs.replace(base.sim, dislocations_per_minute=600.0),
            monitor=msgspec.structs.replace(base.monitor, halt_file=str(halt_file)),
            notify=msgspec.structs.replace(base.notify, urls=[sink.url()], arbs="batch"))
        monitor = Monitor()
        engine = Engine(settings, run_id="wired", plugins=[
            SimSource(realtime=False, max_events=3000), load_plugin("cross_exchange")(),
            load_plugin("trader")(), monitor, Notifier(environ={})])
        summary = run(engine.run(duration=30))
    assert summary["stop_reason"] == "sim: max events"
    assert summary["opportunities"] > 0 and summary["arbs_executed"] == 0  # halted from the start
    assert summary["rejected"] == summary["opportunities"]
    assert summary["plugins"]["monitor"]["halted"] == "left over from yesterday"
    assert summary["plugins"]["notifier"]["sent"] == 3
    titles = [m[0] for m in sink.messages()]
    assert titles == ["arb run wired started", "arb HALTED: new trading stopped",
                      "arb run wired stopped: sim: max events"]
    assert sum(f.count for f in monitor.feeds.values()) == 3000
    assert halt_file.exists()
