from __future__ import annotations

import contextlib
import sqlite3
import typing as t
from pathlib import Path

import msgspec
import pytest

from arbitrage.errors import DataError
from arbitrage.storage.queries import arb_states, run_totals, unfinished_orders
from arbitrage.storage.schema import SCHEMA_VERSION, TABLES, open_database
from arbitrage.storage.writer import _ROWS, BATCHED_TYPES, Writer, _row_columns, store_summary
from tests.storage import _factories as f


@pytest.fixture
def writer(tmp_path: Path) -> t.Iterator[Writer]:
    w = Writer(tmp_path / "sub" / "arb.db", "run-1")
    w.start_run(source="sim", strategy="cross_exchange", settings={"run": {"seed": 7}})
    yield w
    w.close()


def rows(path: Path, sql: str, *params: t.Any) -> list[dict[str, t.Any]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def test_open_database_creates_parents_schema_wal_and_version(tmp_path: Path) -> None:
    db = open_database(tmp_path / "a" / "b" / "arb.db")
    try:
        assert set(TABLES) <= set(db.table_names())
        assert db.journal_mode == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexed = {name: [i.columns for i in db.table(name).indexes] for name in TABLES if name != "runs"}
        for name, indexes in indexed.items():
            assert any(cols[0] == "run_id" for cols in indexes), name
    finally:
        db.close()


def test_open_database_when_schema_is_newer_raises(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DataError, match="newer"):
        open_database(path)


def test_open_database_when_file_is_not_sqlite_raises(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(DataError, match="cannot use"):
        open_database(path)


def test_open_database_twice_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    with Writer(path, "r1") as w:
        w.start_run(source="sim", strategy="x", settings={})
    with Writer(path, "r2") as w:
        w.start_run(source="sim", strategy="x", settings={})
    assert [r["run_id"] for r in rows(path, "SELECT run_id FROM runs ORDER BY run_id")] == ["r1", "r2"]


def test_write_batch_of_mixed_events_is_one_transaction(writer: Writer) -> None:
    statements: list[str] = []
    writer.db.conn.set_trace_callback(statements.append)
    writer.write_batch([f.opportunity("o1"), f.rejected("o2"), f.update("c1", "o1"), f.fill("c1", "o1"),
                        f.alert(), f.result("o1", realized=0.5), f.opportunity("o3"), f.opportunity("o4"),
                        f.opportunity("o5"), f.book()])
    writer.db.conn.set_trace_callback(None)
    assert [s.strip() for s in statements if s.upper().startswith("BEGIN")] == ["BEGIN"]
    assert [s for s in statements if s.upper().startswith("COMMIT")] == ["COMMIT"]
    assert writer.transactions == 1
    assert dict(writer.rows) == {"runs": 1, "opportunities": 4, "rejections": 1, "order_updates": 1,
                                 "fills": 1, "alerts": 1, "arb_results": 1, "books": 1}


def test_every_row_carries_exactly_its_table_columns() -> None:
    samples = {type(e): e for e in (f.opportunity("o1"), f.rejected("o1"), f.update("c1", "o1"),
                                     f.fill("c1", "o1"), f.result("o1", realized=0.1), f.alert(), f.book(),
                                     f.position(), f.state("o1", "planned"))}
    assert set(samples) == set(BATCHED_TYPES)
    for event_type, (table, row) in _ROWS.items():
        assert tuple(row("r", samples[event_type])) == _row_columns(table), table


def test_write_batch_when_a_table_fails_keeps_nothing_of_the_batch(writer: Writer) -> None:
    writer.db.execute("CREATE TRIGGER fail BEFORE INSERT ON alerts "
                      "BEGIN SELECT RAISE(ABORT, 'no alerts'); END")
    with pytest.raises(sqlite3.IntegrityError, match="no alerts"):
        writer.write_batch([f.opportunity("o1"), f.alert()])
    assert rows(writer.path, "SELECT * FROM opportunities") == []
    assert writer.transactions == 0 and "opportunities" not in writer.rows
    writer.db.execute("DROP TRIGGER fail")
    writer.write_batch([f.opportunity("o1")])  # the connection is usable afterwards
    assert len(rows(writer.path, "SELECT * FROM opportunities")) == 1


def test_order_submitted_is_committed_before_return(writer: Writer) -> None:
    writer.write_order_submitted(f.submitted("c1", "o1", price=101.5))
    got = rows(writer.path, "SELECT * FROM orders")  # another connection sees it: committed
    assert len(got) == 1
    assert (got[0]["status"], got[0]["price"], got[0]["purpose"], got[0]["run_id"]) == (
        "submitted", 101.5, "leg", "run-1")


def test_order_update_keeps_what_only_the_submitted_row_carries(writer: Writer) -> None:
    hedge = msgspec.structs.replace(f.submitted("c1", "o1", price=101.5), purpose="hedge")
    writer.write_order_submitted(hedge)
    writer.write_batch([f.update("c1", "o1", status="open", filled=0.0),
                        f.update("c1", "o1", status="partially_filled", filled=0.004, average_price=101.0,
                                 fee=0.0004)])
    [order] = rows(writer.path, "SELECT * FROM orders")
    assert (order["status"], order["filled"], order["average_price"], order["fee"]) == (
        "partially_filled", 0.004, 101.0, 0.0004)
    assert (order["price"], order["purpose"], order["ts_submitted"]) == (101.5, "hedge", 10)
    assert order["ts_updated"] == 20
    assert writer.rows["orders"] == 1 and writer.rows["order_updates"] == 2


def test_order_update_before_submit_row_keeps_its_status(writer: Writer) -> None:
    writer.write_batch([f.update("c1", "o1", status="filled")])
    writer.write_order_submitted(f.submitted("c1", "o1", price=99.0))
    [order] = rows(writer.path, "SELECT * FROM orders")
    assert (order["status"], order["price"]) == ("filled", 99.0)


def test_same_ids_in_two_runs_do_not_collide(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    for run in ("r1", "r2"):
        with Writer(path, run) as w:
            w.start_run(source="sim", strategy="x", settings={})
            w.write_order_submitted(f.submitted("c1", "o1"))
            w.write_batch([f.opportunity("o1"), f.result("o1", realized=1.0)])
    assert len(rows(path, "SELECT * FROM orders")) == 2
    assert len(rows(path, "SELECT * FROM opportunities")) == 2
    assert len(rows(path, "SELECT * FROM arb_results")) == 2


def test_start_run_stores_settings_redacted(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    settings = {"exchanges": {"binance": {"apiKey": "AKIA-SUPER-SECRET-1", "secret": "SECRET-VALUE-2",
                                          "password": ""}},
                "notifier": {"urls": ["tgram://123456:TOKEN-VALUE-3/987"]},
                "redis": {"url": "redis://user:PASSWORD-VALUE-4@localhost:6379/0"},
                "run": {"seed": 7}}
    with Writer(path, "r1") as w:
        w.start_run(source="sim", strategy="x", settings=settings)
        w.end_run()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (b"AKIA-SUPER-SECRET-1", b"SECRET-VALUE-2", b"TOKEN-VALUE-3", b"PASSWORD-VALUE-4"):
        assert secret not in data
    [run] = rows(path, "SELECT settings FROM runs")
    assert '"seed":7' in run["settings"] and "localhost:6379" in run["settings"]


def test_alert_message_is_redacted(writer: Writer) -> None:
    writer.write_batch([f.alert(message="apprise failed for pover://user@TOKEN123")])
    [row] = rows(writer.path, "SELECT message FROM alerts")
    assert "TOKEN123" not in row["message"]


def test_end_run_stores_ended_at_and_totals_from_the_database(writer: Writer) -> None:
    writer.write_order_submitted(f.submitted("c1", "o1"))
    writer.write_batch([f.opportunity("o1"), f.opportunity("o2"), f.rejected("o2"),
                        f.result("o1", realized=0.1, fees=0.01), f.result("o3", realized=0.2, fees=0.02,
                                                                           status="partial"),
                        f.result("o4", realized=-0.05, fees=0.5, quote="BTC", status="failed")])
    totals = writer.end_run()
    assert totals["opportunities"] == 2
    assert totals["rejected"] == 1
    assert totals["orders"] == 1
    assert totals["arbs_executed"] == 3
    assert totals["arbs_by_status"] == {"complete": 1, "partial": 1, "failed": 1}
    assert totals["realized_pnl"] == {"USDT": round(0.1 + 0.2, 10), "BTC": -0.05}
    assert totals["fees"] == {"USDT": round(0.01 + 0.02, 10), "BTC": 0.5}
    [run] = rows(writer.path, "SELECT ended_at, summary FROM runs")
    assert run["ended_at"] is not None and '"arbs_executed":3' in run["summary"]


def test_store_summary_after_close_merges_engine_keys(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    with Writer(path, "r1") as w:
        w.start_run(source="sim", strategy="x", settings={})
        w.end_run()
    store_summary(path, "r1", {"elapsed_s": 1.5, "stop_reason": "duration reached", "token": "hide-me"})
    [run] = rows(path, "SELECT summary FROM runs")
    assert '"elapsed_s":1.5' in run["summary"] and '"rows"' in run["summary"]
    assert "hide-me" not in run["summary"]


def test_store_summary_when_run_is_missing_raises(tmp_path: Path) -> None:
    with Writer(tmp_path / "arb.db", "r1") as w:
        w.start_run(source="sim", strategy="x", settings={})
    with pytest.raises(DataError, match="r2"):
        store_summary(tmp_path / "arb.db", "r2", {})
    with pytest.raises(DataError, match="no such database"):
        store_summary(tmp_path / "missing.db", "r1", {})


def test_write_after_close_raises(writer: Writer) -> None:
    writer.close()
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.write_order_submitted(f.submitted("c1", "o1"))


def test_unfinished_orders_lists_submitted_and_open_only(writer: Writer) -> None:
    for coid in ("c1", "c2", "c3"):
        writer.write_order_submitted(f.submitted(coid, "o1"))
    writer.write_batch([f.update("c2", "o1", status="filled"), f.update("c3", "o1", status="open")])
    assert [o["client_order_id"] for o in unfinished_orders(writer.path)] == ["c1", "c3"]
    assert unfinished_orders(writer.path.parent / "missing.db") == []


def test_run_totals_of_unknown_run_is_zero(writer: Writer) -> None:
    totals = run_totals(writer.db.conn, "nope")
    assert totals["opportunities"] == 0 and totals["realized_pnl"] == {}


def test_open_database_when_file_is_version_1_adds_positions_and_keeps_old_results(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    v1_results = ("run_id TEXT, opportunity_id TEXT, strategy TEXT, status TEXT, quote TEXT, "
                  "expected_profit FLOAT, realized_profit FLOAT, fees FLOAT, slippage FLOAT, legs TEXT, "
                  "residual TEXT, ts_init INTEGER, PRIMARY KEY (run_id, opportunity_id)")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"CREATE TABLE arb_results ({v1_results})")
        conn.execute("INSERT INTO arb_results VALUES ('r', 'o1', 'x', 'complete', 'USDT', 1, 0.5, 0.1, 0.5, "
                     "'[]', '{}', 30)")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    open_database(path).close()
    [old] = rows(path, "SELECT * FROM arb_results")
    assert (old["realized_profit"], old["unrealized_profit"], old["positions"]) == (0.5, None, None)
    assert rows(path, "SELECT * FROM positions") == []
    with contextlib.closing(sqlite3.connect(path)) as conn:
        totals = run_totals(conn, "r")
    assert (totals["realized_pnl"], totals["unrealized_pnl"], totals["net_pnl"]) == (
        {"USDT": 0.5}, {}, {"USDT": 0.5})


def test_run_totals_count_open_positions_at_their_newest_mark(writer: Writer) -> None:
    writer.write_batch([f.result("o1", realized=3.872), f.position(mark=100.0, stale=True),
                        f.position(mark=99.0),
                        f.position(venue="beta", amount=-1.0, cost=-109.78, mark=111.0),
                        f.position(venue="gamma", amount=0.0, cost=0.0, realized=2.94)])
    # realized 3.872 + 2.94 (gamma's closed position) = 6.812
    # unrealized alpha 0.6 * 99 - 60.06 = -0.66 (its newest update replaced the stale one at 100);
    # beta -111 + 109.78 = -1.22; total -1.88. net 6.812 - 1.88 = 4.932
    [alpha] = rows(writer.path, "SELECT * FROM positions WHERE venue = 'alpha'")
    assert (alpha["mark"], alpha["stale"]) == (99.0, 0)
    totals = run_totals(writer.db.conn, "run-1")
    assert totals["realized_pnl"] == {"USDT": 6.812}
    assert totals["unrealized_pnl"] == {"USDT": -1.88}
    assert totals["net_pnl"] == {"USDT": 4.932}


def test_orders_and_fills_store_the_currency_the_fee_was_charged_in(writer: Writer) -> None:
    # a buy of 0.01 BTC on a "get" market: the fee, 0.01 * 0.1 % = 0.00001, is taken in BTC
    writer.write_order_submitted(f.submitted("c1", "o1"))
    writer.write_order_submitted(f.submitted("c2", "o1", side="sell"))
    writer.write_batch([f.update("c1", "o1", fee=0.00001, fee_currency="BTC"),
                        f.fill("c1", "o1", fee=0.00001, fee_currency="BTC"),
                        f.update("c2", "o1", side="sell", fee=0.001)])  # no currency given: the quote
    orders = rows(writer.path, "SELECT client_order_id, fee, fee_currency FROM orders ORDER BY 1")
    assert orders == [{"client_order_id": "c1", "fee": 0.00001, "fee_currency": "BTC"},
                      {"client_order_id": "c2", "fee": 0.001, "fee_currency": "USDT"}]
    [fill] = rows(writer.path, "SELECT fee, fee_currency FROM fills")
    assert fill == {"fee": 0.00001, "fee_currency": "BTC"}


def test_open_database_when_file_is_version_2_adds_the_orders_fee_currency(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    db = open_database(path)
    db.conn.execute("DROP TABLE orders")  # the version 2 table, without fee_currency
    columns = ", ".join(f"{name} TEXT" for name in
                        ("run_id", "client_order_id", "opportunity_id", "venue", "symbol", "side"))
    db.conn.execute(f"CREATE TABLE orders ({columns}, amount FLOAT, price FLOAT, purpose TEXT, status TEXT, "
                    "filled FLOAT, average_price FLOAT, fee FLOAT, reason TEXT, venue_order_id TEXT, "
                    "ts_submitted INTEGER, ts_updated INTEGER, PRIMARY KEY (run_id, client_order_id))")
    db.conn.execute("INSERT INTO orders (run_id, client_order_id, symbol, fee) "
                    "VALUES ('r', 'c0', 'BTC/USDT', 0.1)")
    db.conn.execute("PRAGMA user_version = 2")
    db.conn.commit()
    db.close()
    with Writer(path, "r") as w:
        assert w.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        w.write_order_submitted(f.submitted("c1", "o1"))
        w.write_batch([f.update("c1", "o1", fee=0.00001, fee_currency="BTC")])
    assert rows(path, "SELECT client_order_id, fee, fee_currency FROM orders ORDER BY client_order_id") == [
        {"client_order_id": "c0", "fee": 0.1, "fee_currency": None},
        {"client_order_id": "c1", "fee": 0.00001, "fee_currency": "BTC"}]


def test_open_database_when_file_is_version_3_adds_leg_index_from_labels_and_the_arb_states(
        tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    db = open_database(path)
    db.conn.execute("DROP TABLE arb_states")
    db.conn.execute("ALTER TABLE orders DROP COLUMN leg_index")  # the version 3 table
    db.conn.executemany("INSERT INTO orders (run_id, client_order_id, label, status) VALUES (?, ?, ?, ?)",
                        [("r", "c0", "r-7-L1", "filled"), ("r", "c1", "r-7-H0", "filled"),
                         ("r", "c2", "", "filled")])
    db.conn.execute("PRAGMA user_version = 3")
    db.conn.commit()
    db.close()
    with Writer(path, "r") as w:
        assert w.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        w.write_order_submitted(msgspec.structs.replace(f.submitted("c3", "r-8"), label="r-8-U12"))
        w.write_batch([f.state("r-8", "planned", ts=1), f.state("r-8", "submitted", ts=2)])
    assert rows(path, "SELECT client_order_id, leg_index FROM orders ORDER BY client_order_id") == [
        {"client_order_id": "c0", "leg_index": 1}, {"client_order_id": "c1", "leg_index": 0},
        {"client_order_id": "c2", "leg_index": None}, {"client_order_id": "c3", "leg_index": 12}]
    assert rows(path, "SELECT opportunity_id, state, ts_init FROM arb_states ORDER BY id") == [
        {"opportunity_id": "r-8", "state": "planned", "ts_init": 1},
        {"opportunity_id": "r-8", "state": "submitted", "ts_init": 2}]


def test_arb_states_gives_each_arbitrage_its_newest_state_also_without_a_result(writer: Writer) -> None:
    writer.write_batch([f.state("o1", "planned", ts=1), f.state("o2", "planned", ts=2),
                        f.state("o1", "submitted", ts=3), f.state("o2", "submitted", ts=4),
                        f.state("o2", "filled", ts=5), f.state("o2", "done", ts=6)])
    # o1 never got further: the process died with its legs sent
    got = arb_states(writer.db.conn, "run-1")
    assert [(s["opportunity_id"], s["state"], s["ts_init"], s["started"]) for s in got] == [
        ("o1", "submitted", 3, 1), ("o2", "done", 6, 2)]
    assert arb_states(writer.db.conn, "other-run") == []
    assert len(arb_states(writer.db.conn)) == 2


def test_journal_commit_is_synced_only_with_sync_journal(tmp_path: Path) -> None:
    levels: list[str] = []

    def trace(sql: str) -> None:
        if sql.startswith("PRAGMA synchronous"):
            levels.append(sql)

    for sync in (False, True):
        levels.clear()
        with Writer(tmp_path / f"{sync}.db", "r", sync_journal=sync) as w:
            w.db.conn.set_trace_callback(trace)
            w.write_order_submitted(f.submitted("c1", "o1"))
            w.db.conn.set_trace_callback(None)
            assert levels == (["PRAGMA synchronous = FULL", "PRAGMA synchronous = NORMAL"] if sync else [])
            assert w.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL for the batches


def test_a_fill_stored_again_with_its_venue_trade_id_is_kept_once(writer: Writer) -> None:
    first = msgspec.structs.replace(f.fill("c1", "o1"), trade_id="T1")
    twin = msgspec.structs.replace(first, trade_id="T2")  # another execution, equal in all but its id
    again = msgspec.structs.replace(first, ts_init=99)  # read again after a restart
    paper = f.fill("c2", "o1")  # no trade id: every one is kept
    writer.write_batch([first, twin, paper, paper])
    writer.write_batch([again])
    assert rows(writer.path, "SELECT client_order_id, trade_id, ts_init FROM fills ORDER BY id") == [
        {"client_order_id": "c1", "trade_id": "T1", "ts_init": 6},
        {"client_order_id": "c1", "trade_id": "T2", "ts_init": 6},
        {"client_order_id": "c2", "trade_id": None, "ts_init": 6},
        {"client_order_id": "c2", "trade_id": None, "ts_init": 6}]
    assert writer.rows["fills"] == 4  # the repeat was not written


def test_open_database_when_file_is_version_4_adds_the_trade_id_and_drops_fills_stored_twice(
        tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    db = open_database(path)
    db.conn.execute("DROP INDEX fills_trade")
    db.conn.execute("ALTER TABLE fills DROP COLUMN trade_id")  # the version 4 table
    columns = "run_id, client_order_id, price, amount, fee, fee_currency, ts_event, ts_init"
    db.conn.executemany(f"INSERT INTO fills ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        ("r", "c1", 100.0, 0.5, 0.1, "USDT", 5, 6),  # two makers of one size, published together
        ("r", "c1", 100.0, 0.5, 0.1, "USDT", 5, 6),
        ("r", "c1", 101.0, 0.2, 0.1, "USDT", 5, 6),
        ("r", "c1", 100.0, 0.5, 0.1, "USDT", 5, 90),  # a reconciliation published them again
        ("r", "c1", 100.0, 0.5, 0.1, "USDT", 5, 90),
        ("r", "c1", 101.0, 0.2, 0.1, "USDT", 5, 90),
        ("r2", "c1", 100.0, 0.5, 0.1, "USDT", 5, 90)])  # another run's: its own
    db.conn.execute("PRAGMA user_version = 4")
    db.conn.commit()
    db.close()
    with Writer(path, "r") as w:
        assert w.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    assert rows(path, "SELECT run_id, price, ts_init, trade_id FROM fills ORDER BY id") == [
        {"run_id": "r", "price": 100.0, "ts_init": 6, "trade_id": None},
        {"run_id": "r", "price": 100.0, "ts_init": 6, "trade_id": None},
        {"run_id": "r", "price": 101.0, "ts_init": 6, "trade_id": None},
        {"run_id": "r2", "price": 100.0, "ts_init": 90, "trade_id": None}]
