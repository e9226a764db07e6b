from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import types
import typing as t
from pathlib import Path

import pytest
from loguru import logger

from arbitrage.bus import Bus
from arbitrage.clock import Clock, SimClock
from arbitrage.engine import Engine
from arbitrage.errors import SettingsError
from arbitrage.events import STORAGE_ALERT_KEY, Alert, TradingHalted, TradingResumed
from arbitrage.plugin import Context, Plugin, load_plugin
from arbitrage.settings import Settings
from arbitrage.storage.plugin import Storage
from arbitrage.storage.report import build_report
from arbitrage.trading.reconcile import opportunity_of
from tests.storage import _factories as f


def rows(path: Path, sql: str, *params: t.Any) -> list[dict[str, t.Any]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def count(path: Path, table: str) -> int:
    return int(rows(path, f"SELECT count(*) AS n FROM {table}")[0]["n"])


async def started(settings: Settings, run_id: str = "run-1",
                  clock: Clock | None = None) -> tuple[Bus, Storage]:
    bus = Bus()
    storage = Storage()
    storage.setup(Context(bus=bus, settings=settings, clock=clock or Clock(), run_id=run_id, log=logger))
    await bus.start()
    await storage.start()
    return bus, storage


def test_storage_is_registered_as_entry_point() -> None:
    cls = load_plugin("storage", "storage")
    assert cls is Storage


def test_events_are_written_after_drain(tmp_path: Path) -> None:
    path = tmp_path / "data" / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path))
        bus.publish(f.opportunity("o1"))
        bus.publish(f.rejected("o0"))
        bus.publish(f.submitted("c1", "o1"))
        bus.publish(f.submitted("c2", "o1", venue="beta", side="sell"))
        bus.publish(f.fill("c1", "o1"))
        bus.publish(f.update("c1", "o1"))
        bus.publish(f.update("c2", "o1", venue="beta", side="sell", status="canceled", filled=0.0))
        bus.publish(f.result("o1", realized=0.25))
        bus.publish(f.alert())
        bus.publish(f.book())  # not stored: store_books is off
        await bus.drain()
        for table, n in {"opportunities": 1, "rejections": 1, "orders": 2, "fills": 1, "arb_results": 1,
                         "alerts": 1, "books": 0}.items():
            assert count(path, table) == n, table
        statuses = {r["client_order_id"]: r["status"] for r in rows(path, "SELECT * FROM orders")}
        assert statuses == {"c1": "filled", "c2": "canceled"}
        await storage.stop()
        await bus.stop()
        assert storage.summary()["rows"] == {"runs": 1, "opportunities": 1, "rejections": 1, "orders": 2,
                                             "fills": 1, "order_updates": 2, "arb_results": 1, "alerts": 1}

    asyncio.run(main())


def test_order_submitted_row_exists_when_publish_returns(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path))
        bus.publish(f.opportunity("o1", profit=0.75))
        bus.publish(f.opportunity("o2"))  # not traded: left to its batch
        bus.publish(f.submitted("c1", "o1"))
        bus.publish(f.submitted("c2", "o1", venue="beta", side="sell"))
        # no await since publish: queued writers have not run, the order row is already committed,
        # and with the first order of o1 what it expected
        [order, _] = rows(path, "SELECT * FROM orders ORDER BY client_order_id")
        assert (order["client_order_id"], order["status"]) == ("c1", "submitted")
        [row] = rows(path, "SELECT * FROM opportunities")  # what a restart now would finish it with
        assert opportunity_of({**row, "opportunity_id": row["id"]}) == f.opportunity("o1", profit=0.75)
        await storage.stop()
        await bus.stop()
        assert count(path, "opportunities") == 2

    asyncio.run(main())


def test_a_backtest_leaves_opportunities_to_their_batch(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path), clock=SimClock())
        bus.publish(f.opportunity("o1"))
        bus.publish(f.submitted("c1", "o1"))
        assert storage.writer is not None and storage.writer.rows["opportunities"] == 0
        await storage.stop()
        await bus.stop()

    asyncio.run(main())


def test_queued_events_are_written_in_one_transaction_per_batch(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path, batch_size=4))
        assert storage.writer is not None
        commits: list[str] = []
        storage.writer.db.conn.set_trace_callback(
            lambda sql: commits.append(sql) if sql.upper().startswith("COMMIT") else None)
        for i in range(3):
            bus.publish(f.opportunity(f"o{i}"))
        await bus.drain()
        assert len(commits) == 1 and storage.writer.transactions == 1
        for i in range(3, 13):  # 10 events, batch_size 4: 3 transactions
            bus.publish(f.opportunity(f"o{i}"))
        await bus.drain()
        assert len(commits) == 4 and storage.writer.transactions == 4
        storage.writer.db.conn.set_trace_callback(None)
        assert count(path, "opportunities") == 13
        await storage.stop()
        await bus.stop()

    asyncio.run(main())


def test_a_backtest_writes_whole_batches_and_the_rest_when_it_stops(tmp_path: Path) -> None:
    """On a simulated clock nobody reads the database before the end: one commit per batch_size
    events, not one per turn of the loop; flush and stop write what is held."""
    path = tmp_path / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path, batch_size=4), clock=SimClock(0))
        assert storage.writer is not None
        for i in range(3):
            bus.publish(f.opportunity(f"o{i}"))
            await bus.drain()  # a turn of the loop for every event
        assert count(path, "opportunities") == 0 and storage.writer.transactions == 0
        bus.publish(f.opportunity("o3"))
        await bus.drain()
        assert count(path, "opportunities") == 4 and storage.writer.transactions == 1
        bus.publish(f.opportunity("o4"))
        await bus.drain()
        await storage.flush()
        assert count(path, "opportunities") == 5 and storage.writer.transactions == 2
        bus.publish(f.opportunity("o5"))
        await bus.drain()
        await storage.stop()
        await bus.stop()
        assert count(path, "opportunities") == 6

    asyncio.run(main())


def test_events_of_every_stored_type_share_one_queue_and_transaction(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path, store_books=True))
        assert storage.writer is not None
        commits: list[str] = []
        storage.writer.db.conn.set_trace_callback(
            lambda sql: commits.append(sql) if sql.upper().startswith("COMMIT") else None)
        bus.publish(f.opportunity("o1"))
        bus.publish(f.submitted("c1", "o1"))  # inline: its own commit
        for event in (f.update("c1", "o1", status="open", filled=0.0), f.fill("c1", "o1"),
                      f.update("c1", "o1"), f.result("o1", realized=0.1), f.rejected("o2"), f.alert(),
                      f.book()):
            bus.publish(event)
        await bus.drain()
        storage.writer.db.conn.set_trace_callback(None)
        assert len(commits) == 2 and storage.writer.transactions == 1
        [order] = rows(path, "SELECT status, price FROM orders")
        assert (order["status"], order["price"]) == ("filled", 100.0)  # updates applied in publish order
        queued = [s for s in bus.queued() if s.name == "storage"]
        assert len(queued) == 1 and queued[0].stats.delivered == 8
        await storage.stop()
        await bus.stop()

    asyncio.run(main())


def test_books_are_stored_when_store_books_is_on(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path, store_books=True))
        for ts in range(5):
            bus.publish(f.book(ts=ts))
        await storage.stop()  # stop flushes what is queued
        await bus.stop()

    asyncio.run(main())
    got = rows(path, "SELECT * FROM books ORDER BY ts_event")
    assert [r["ts_event"] for r in got] == [0, 1, 2, 3, 4]
    assert got[0]["bids"] == "[[99.0,1.0]]" and got[0]["run_id"] == "run-1"


def test_stop_writes_ended_at_and_summary_and_finish_merges(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"

    async def main() -> Storage:
        bus, storage = await started(f.settings_for(path))
        bus.publish(f.opportunity("o1"))
        bus.publish(f.result("o1", realized=0.3))
        await storage.stop()
        await bus.stop()
        return storage

    storage = asyncio.run(main())
    assert storage.final_totals["arbs_executed"] == 1
    storage.finish({"elapsed_s": 2.0, "realized_pnl": {"USDT": 0.3}})
    [run] = rows(path, "SELECT * FROM runs")
    assert run["ended_at"] is not None
    assert '"elapsed_s":2.0' in run["summary"] and '"opportunities":1' in run["summary"]


def test_failed_order_write_vetoes_the_publish_and_halts_trading(tmp_path: Path) -> None:
    async def main() -> None:
        bus, storage = await started(f.settings_for(tmp_path / "arb.db"))
        assert storage.writer is not None
        storage.writer.close()  # any write now fails
        with bus.collect(TradingHalted, Alert) as seen, pytest.raises(Exception):  # noqa: B017 - whatever
            bus.publish(f.submitted("c1", "o1"))  # sqlite raised reaches the executor: nothing is sent
        assert bus.handler_errors == 1
        halted, alert = seen
        assert isinstance(halted, TradingHalted) and halted.rule == "storage" and "c1" in halted.reason
        assert isinstance(alert, Alert) and (alert.key, alert.level) == (STORAGE_ALERT_KEY, "critical")
        assert not storage.ctx.stop.event.is_set()  # halted, not stopped: feeds and alerts go on
        with bus.collect(TradingHalted) as again, pytest.raises(Exception):  # noqa: B017
            bus.publish(f.submitted("c2", "o2"))
        assert again == []  # halted once
        # someone lifted the halt (``arb resume``) while the database still fails: halted again
        storage.ctx.views.trading = t.cast(t.Any, types.SimpleNamespace(halted=""))
        with bus.collect(TradingHalted, Alert) as again, pytest.raises(Exception):  # noqa: B017
            bus.publish(f.submitted("c3", "o3"))
        assert [type(e) for e in again] == [TradingHalted] and again[0].rule == "storage"
        await bus.stop()
        await storage.stop()

    asyncio.run(main())


@pytest.mark.parametrize("kill_switch", ["", "daily_loss: -120 USDT"])
def test_failed_batch_write_halts_trading_and_writes_the_kept_events_once_it_can(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_switch: str) -> None:
    path = tmp_path / "arb.db"

    async def main() -> None:
        bus, storage = await started(f.settings_for(path))
        storage.ctx.views.monitor = t.cast(t.Any, types.SimpleNamespace(halted=kill_switch))
        assert storage.writer is not None
        real = storage.writer.write_batch
        full = [True]

        def disk(events: t.Any) -> None:
            if full[0]:
                raise sqlite3.OperationalError("database or disk is full")
            real(events)

        monkeypatch.setattr(storage.writer, "write_batch", disk)
        with bus.collect(TradingHalted, TradingResumed, Alert) as seen:
            bus.publish(f.opportunity("o1"))
            await bus.drain()
            assert [type(e) for e in seen] == [TradingHalted, Alert] and seen[0].rule == "storage"
            assert "database or disk is full" in seen[1].message
            assert storage.summary()["unwritten"] == 2  # the opportunity and the alert itself
            full[0] = False  # space again: the next batch writes what was kept, the alert recovers
            bus.publish(f.opportunity("o2"))
            await bus.drain()
            assert seen[-1].key == STORAGE_ALERT_KEY and seen[-1].recovered
            resumed = [e for e in seen if isinstance(e, TradingResumed)]
            if kill_switch:  # another halt is in force: storage must not lift it
                assert resumed == [] and "trading stays halted: the kill switch is on" in seen[-1].message
            else:  # the journal is whole again: trading goes on
                assert len(resumed) == 1 and "trading resumed" in seen[-1].message
        assert bus.stats()["storage:Opportunity"]["errors"] == 0  # nothing lost, so nothing to count
        assert not storage.ctx.stop.event.is_set()
        await storage.stop()
        await bus.stop()

    asyncio.run(main())
    assert [r["id"] for r in rows(path, "SELECT id FROM opportunities ORDER BY id")] == ["o1", "o2"]
    assert {r["key"] for r in rows(path, "SELECT key FROM alerts")} == {STORAGE_ALERT_KEY}


def test_failed_batch_write_in_a_backtest_stops_the_run(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        bus, storage = await started(f.settings_for(tmp_path / "arb.db", batch_size=1), clock=SimClock(0))
        assert storage.writer is not None

        def broken(events: t.Any) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(storage.writer, "write_batch", broken)
        bus.publish(f.opportunity("o1"))
        await bus.drain()
        assert bus.stats()["storage:Opportunity"]["errors"] == 1
        assert "Opportunity" in storage.ctx.stop.reason and "disk is full" in storage.failure
        await storage.stop()
        await bus.stop()

    asyncio.run(main())


def test_batch_write_is_retried_while_the_database_is_locked(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "arb.db"

    async def main() -> int:
        bus, storage = await started(f.settings_for(path))
        assert storage.writer is not None
        real = storage.writer.write_batch
        calls = [0]

        def locked_twice(events: t.Any) -> None:
            calls[0] += 1
            if calls[0] <= 2:
                raise sqlite3.OperationalError("database is locked")
            real(events)

        monkeypatch.setattr(storage.writer, "write_batch", locked_twice)
        bus.publish(f.opportunity("o1"))
        await bus.drain()
        assert not storage.ctx.stop.event.is_set()
        await storage.stop()
        await bus.stop()
        return calls[0]

    assert asyncio.run(main()) == 3
    assert count(path, "opportunities") == 1


def test_start_when_database_is_unusable_raises(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    path.write_bytes(b"garbage" * 1000)

    async def main() -> None:
        bus = Bus()
        storage = Storage()
        storage.setup(Context(bus=bus, settings=f.settings_for(path), clock=Clock(), run_id="r"))
        with pytest.raises(SettingsError, match="storage.path: .*not a database"):
            await storage.start()
        await storage.stop()

    asyncio.run(main())


class Scripted(Plugin):
    """Publishes a fixed story, then asks the engine to stop."""

    name = "scripted"
    kind = "source"

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._play())

    async def _play(self) -> None:
        bus = self.ctx.bus
        pnl = [0.1, 0.2, -0.3, 0.7, 1e-9, 0.30000000000000004]
        for i, realized in enumerate(pnl):
            oid = f"o{i}"
            bus.publish(f.opportunity(oid, profit=0.5))
            if i == 2:
                bus.publish(f.rejected(oid, "busy"))
                continue
            bus.publish(f.submitted(f"{oid}-b", oid))
            bus.publish(f.submitted(f"{oid}-s", oid, venue="beta", side="sell"))
            await asyncio.sleep(0)
            bus.publish(f.update(f"{oid}-b", oid))
            bus.publish(f.update(f"{oid}-s", oid, venue="beta", side="sell"))
            quote = "BTC" if i == 4 else "USDT"
            bus.publish(f.result(oid, realized=realized, fees=0.1 * i, quote=quote,
                                 status="partial" if i == 3 else "complete"))
        self.ctx.request_stop("script done")

    async def stop(self) -> None:
        await self._task


def test_database_totals_match_engine_summary(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    engine = Engine(f.settings_for(path), plugins=[Scripted(), Storage()])
    summary = asyncio.run(engine.run(duration=10))
    storage = t.cast(Storage, engine.plugin("storage"))
    storage.finish(summary)
    report = build_report(path)
    assert report["run_id"] == summary["run_id"]
    for key in ("opportunities", "rejected", "orders", "arbs_executed", "arbs_by_status", "realized_pnl",
                "fees"):
        assert report[key] == summary[key], key
    assert report["stop_reason"] == "script done"


@pytest.mark.parametrize("where", ["garbage", "under_a_file"])
def test_engine_start_fails_naming_storage_path_when_the_database_is_unusable(tmp_path: Path,
                                                                             where: str) -> None:
    path = tmp_path / "arb.db"
    path.write_bytes(b"garbage" * 1000)
    if where == "under_a_file":
        path = path / "arb.db"  # its folder would be a file: cannot be created, even as root
    engine = Engine(f.settings_for(path), plugins=[Storage()])
    with pytest.raises(SettingsError, match="storage.path: cannot keep the database at"):
        asyncio.run(engine.run(duration=1))
