"""Database safety: a killed writer never corrupts the file nor loses a committed batch, and a
database that cannot be written (a full disk, another process's lock) halts trading instead of
trading without a journal; a lock that goes away lets trading resume."""

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

import msgspec

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.engine import Engine
from arbitrage.events import (
    STORAGE_ALERT_KEY,
    Alert,
    BookUpdate,
    MarketsLoaded,
    OpportunityRejected,
    TradingHalted,
    TradingResumed,
)
from arbitrage.plugin import Context, Plugin, load_plugin
from arbitrage.storage.plugin import Storage
from arbitrage.trading.plugin import Trader
from tests.storage import _factories as f
from tests.trading.helpers import book, leg, make_settings, market, opportunity

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


LOCKER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    conn.close()
""")
"""Another process holding the database's write lock until a line comes on its stdin."""


async def _until(condition: t.Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (the caller's ``wait_for`` guards a hang)."""
    while not condition():
        await asyncio.sleep(0.01)


def test_a_lock_held_by_another_process_refuses_the_order_halts_trading_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    settings = msgspec.structs.replace(make_settings(), storage=f.settings_for(path).storage)
    sent: list[str] = []

    async def scenario() -> list[t.Any]:
        bus, clock, books = Bus(), Clock(), BookStore()
        bus.subscribe(BookUpdate, books.update, name="books")  # first, as the engine does
        ctx = Context(bus=bus, settings=settings, clock=clock, run_id="locked-run", books=books,
                      liquidity=books)
        storage, trader = Storage(), Trader()
        storage.setup(ctx)
        trader.setup(ctx)
        await bus.start()
        await storage.start()
        await trader.start()
        for venue, fee in (("alpha", 0.001), ("beta", 0.002)):
            bus.publish(MarketsLoaded(venue=venue, markets=(market(fee=fee),), staleness_ms=60_000.0,
                                      ts_init=clock.time_ns()))
        bus.publish(book("alpha", "BTC/USDT", ((99.0, 5.0),), ((100.0, 1.0), (101.0, 1.0)), clock.time_ns()))
        bus.publish(book("beta", "BTC/USDT", ((110.0, 0.5), (109.0, 2.0)), ((111.0, 5.0),), clock.time_ns()))
        for venue in trader.venues.values():  # a spy on the boundary: what reached a venue
            submit = venue.submit

            async def spy(request: t.Any, submit: t.Any = submit) -> t.Any:
                sent.append(request.client_order_id)
                return await submit(request)

            venue.submit = spy  # type: ignore[method-assign]

        def arb(oid: str) -> t.Any:
            return opportunity(oid, leg("alpha", "buy", 1.5, 101.0), leg("beta", "sell", 1.5, 109.0),
                               ts=clock.time_ns())

        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert locker.stdin is not None and locker.stdout is not None
        try:
            with bus.collect(TradingHalted, TradingResumed, Alert, OpportunityRejected) as seen:
                assert locker.stdout.readline().strip() == "locked"
                bus.publish(arb("x1"))
                await asyncio.wait_for(_until(lambda: any(isinstance(e, TradingHalted) for e in seen)
                                              and not trader.executor.open_arbs), 30)
                assert sent == []  # the journal could not take the orders: none reached a venue
                assert ctx.views.trading is not None and ctx.views.trading.halted.startswith("storage")
                bus.publish(arb("x2"))
                await bus.drain()  # every batch tried and failed: only storage's retry can recover now
                assert "database is locked" in storage.failure
                locker.stdin.write("release\n")
                locker.stdin.flush()
                assert locker.wait(30) == 0
                await asyncio.wait_for(_until(lambda: any(isinstance(e, TradingResumed) for e in seen)), 30)
                bus.publish(arb("x3"))
                await asyncio.wait_for(_until(lambda: not trader.executor.open_arbs), 30)
        finally:
            locker.kill()
            locker.communicate()
        await trader.stop()
        await storage.stop()
        await bus.stop()
        return seen

    seen = asyncio.run(scenario())
    halts = [e for e in seen if isinstance(e, TradingHalted)]
    assert len(halts) == 1 and halts[0].rule == "storage" and "database is locked" in halts[0].reason
    alerts = [e for e in seen if isinstance(e, Alert) and e.key == STORAGE_ALERT_KEY]
    assert [(a.level, a.recovered) for a in alerts] == [("critical", False), ("critical", True)]
    assert str(path) in alerts[0].message and "database is locked" in alerts[0].message
    assert "trading resumed" in alerts[1].message
    assert [(r.opportunity_id, r.reason) for r in seen if isinstance(r, OpportunityRejected)] == [
        ("x2", "halted")]
    assert len(sent) == 2 and all(s.startswith("arb") for s in sent)  # x3's legs, after the recovery
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        journal = sorted(r[0] for r in conn.execute("SELECT client_order_id FROM orders"))
        kept = conn.execute("SELECT COUNT(*) FROM alerts WHERE key = ? AND recovered = 0",
                            [STORAGE_ALERT_KEY]).fetchone()[0]
    assert journal == sorted(sent)  # x1's rows were rolled back with the failed insert
    assert kept == 1  # the alert raised while locked was kept and written after

