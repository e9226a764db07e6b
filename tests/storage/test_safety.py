"""Database safety: a killed writer never corrupts the file nor loses a committed batch, and a
database that cannot be written halts trading instead of trading without a journal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

from arbitrage.engine import Engine
from arbitrage.events import STORAGE_ALERT_KEY, Alert, OpportunityRejected, TradingHalted
from arbitrage.plugin import Plugin, load_plugin
from arbitrage.storage.plugin import Storage
from tests.storage import _factories as f

REPO = Path(__file__).resolve().parents[2]
BATCH = 2000
"""Rows per transaction in the killed writer: big enough that a kill lands inside one."""

WRITER = textwrap.dedent(f"""
    import sys
    from arbitrage.storage.writer import Writer
    from tests.storage import _factories as f

    writer = Writer(sys.argv[1], "run-1")
    writer.start_run(source="sim", strategy="cross_exchange", settings={{}})
    batch = 0
    while True:
        fills = [f.fill(f"b{{batch}}-{{i}}", f"o{{batch}}") for i in range({BATCH})]
        print("writing", batch, flush=True)
        writer.write_batch(fills)
        print("committed", batch, flush=True)
        batch += 1
""")


def test_a_writer_killed_mid_batch_leaves_a_sound_database_with_every_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert writer.stdout is not None
    announced = -1
    try:
        for line in writer.stdout:
            what, batch = line.split()
            if what == "committed":
                announced = int(batch)
            elif int(batch) == 6:  # batch 6 is being written right now
                break
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL and announced == 5
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        per_batch = dict(conn.execute("SELECT opportunity_id, COUNT(*) FROM fills GROUP BY opportunity_id"))
    assert all(per_batch.get(f"o{b}") == BATCH for b in range(announced + 1))  # every committed batch
    assert set(per_batch.values()) == {BATCH}  # none in part: batch 6 whole (it beat the kill) or absent
    assert len(per_batch) in (announced + 1, announced + 2)


class _Filler(Plugin):
    """Shrinks the database to its current size, fills it with alerts until storage halts trading,
    then offers an opportunity and stops the run."""

    name = "filler"
    kind = "source"

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.seen: list[t.Any] = []

    def setup(self, ctx: t.Any) -> None:
        super().setup(ctx)
        for event_type in (TradingHalted, Alert, OpportunityRejected):
            ctx.bus.subscribe(event_type, self.seen.append, name="filler")

    async def start(self) -> None:
        writer = self.storage.writer
        assert writer is not None
        pages = writer.db.conn.execute("PRAGMA page_count").fetchone()[0]
        writer.db.conn.execute(f"PRAGMA max_page_count = {pages}")  # a full disk, from now on
        self._task = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        bus = self.ctx.bus
        for i in range(10_000):
            if any(isinstance(e, TradingHalted) for e in self.seen):
                break
            bus.publish(f.alert(f"filler:{i}", message="x" * 2000))
            await asyncio.sleep(0.001)
        bus.publish(f.opportunity("after-the-halt"))
        await asyncio.sleep(0)
        self.ctx.request_stop("filled")

    async def stop(self) -> None:
        await self._task


def test_a_full_disk_raises_an_alert_and_halts_trading(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    storage = Storage()
    filler = _Filler(storage)
    engine = Engine(f.settings_for(path), plugins=[filler, storage, load_plugin("trader")()])
    summary = asyncio.run(engine.run(duration=60))
    assert summary["stop_reason"] == "filled"
    halts = [e for e in filler.seen if isinstance(e, TradingHalted)]
    assert len(halts) == 1 and halts[0].rule == "storage" and "full" in halts[0].reason
    alert = next(e for e in filler.seen if isinstance(e, Alert) and e.key == STORAGE_ALERT_KEY)
    assert alert.level == "critical" and not alert.recovered
    refused = [e for e in filler.seen if isinstance(e, OpportunityRejected)]
    assert [(r.opportunity_id, r.reason) for r in refused] == [("after-the-halt", "halted")]
    assert summary["plugins"]["storage"]["failure"]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
