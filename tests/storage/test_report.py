from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from arbitrage.errors import ArbError, DataError
from arbitrage.events import Position
from arbitrage.storage.report import build_report, list_runs, render_report
from arbitrage.storage.writer import Writer
from tests.storage import _factories as f


def write_run(path: Path, run_id: str, started_at: str, *, finish: bool = True) -> None:
    """Two venues, two markets, three results; the sums below are worked by hand."""
    with Writer(path, run_id) as w:
        w.start_run(source="sim", strategy="cross_exchange", settings={}, started_at=started_at)
        orders = (("o1-b", "alpha", "buy", 100.0, 0.1), ("o1-s", "beta", "sell", 102.0, 0.2),
                  ("o2-b", "alpha", "buy", 50.0, 0.05), ("o2-s", "beta", "sell", 49.0, 0.04))
        for coid, venue, side, price, fee in orders:
            w.write_order_submitted(f.submitted(coid, coid[:2], venue=venue, side=side, price=price))
            w.write_batch([f.update(coid, coid[:2], venue=venue, side=side, filled=1.0, average_price=price,
                                    fee=fee)])
        w.write_order_submitted(f.submitted("o3-b", "o3", venue="alpha", symbol="ETH/USDT"))
        w.write_batch([f.update("o3-b", "o3", venue="alpha", symbol="ETH/USDT", status="rejected", filled=0.0,
                                average_price=0.0, fee=0.0)])
        w.write_batch([f.opportunity("o1"), f.opportunity("o2"), f.opportunity("o3", symbol="ETH/USDT"),
                       f.opportunity("o4"), f.rejected("o4", "busy")])
        w.write_batch([
            # o1: alpha filled 100, beta 102 -> pnl share 1.7 * 100/202 and 1.7 * 102/202
            f.result("o1", realized=1.7, expected=2.0, fees=0.3,
                     legs=(f.leg_result("o1-b", "alpha", filled=1.0, average_price=100.0),
                           f.leg_result("o1-s", "beta", side="sell", filled=1.0, average_price=102.0))),
            f.result("o2", realized=-1.09, expected=0.5, fees=0.09, status="partial",
                     legs=(f.leg_result("o2-b", "alpha", filled=1.0, average_price=50.0),
                           f.leg_result("o2-s", "beta", side="sell", filled=1.0, average_price=49.0)),
                     residual={"BTC": 0.001}),
            f.result("o3", realized=0.0, expected=0.4, fees=0.0, status="failed",
                     legs=(f.leg_result("o3-b", "alpha", symbol="ETH/USDT", filled=0.0),)),
        ])
        w.write_batch([f.alert(level="warning"), f.alert(level="warning"), f.alert(level="error")])
        if finish:
            w.end_run()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "arb.db"
    write_run(path, "20240101-000000-aaaaaa", "2024-01-01T00:00:00.000Z")
    write_run(path, "20240102-000000-bbbbbb", "2024-01-02T00:00:00.000Z", finish=False)
    return path


def test_build_report_defaults_to_the_latest_run(db: Path) -> None:
    report = build_report(db)
    assert report["run_id"] == "20240102-000000-bbbbbb"
    assert report["finished"] is False


def test_build_report_counts_and_sums_match_hand_computed(db: Path) -> None:
    report = build_report(db, "20240101-000000-aaaaaa")
    assert report["finished"] is True
    assert report["opportunities"] == 4
    assert report["rejected"] == 1 and report["rejection_reasons"] == {"busy": 1}
    assert report["orders"] == 5
    assert report["arbs_executed"] == 3
    assert report["arbs_by_status"] == {"complete": 1, "partial": 1, "failed": 1}
    assert report["realized_pnl"] == {"USDT": round(1.7 + -1.09 + 0.0, 10)}
    assert report["expected_pnl"] == {"USDT": round(2.0 + 0.5 + 0.4, 10)}
    assert report["fees"] == {"USDT": round(0.3 + 0.09, 10)}
    assert report["win_rate"] == round(1 / 3, 4)
    assert report["residual"] == {"BTC": 0.001}
    assert report["alerts"] == {"warning": 2, "error": 1}


def test_build_report_venue_table(db: Path) -> None:
    venues = {v["venue"]: v for v in build_report(db, "20240101-000000-aaaaaa")["venues"]}
    alpha, beta = venues["alpha"], venues["beta"]
    assert (alpha["orders"], alpha["filled_orders"], alpha["rejected_orders"]) == (3, 2, 1)
    assert alpha["filled_notional"] == pytest.approx(150.0)
    assert alpha["fees"] == pytest.approx(0.15)
    assert beta["filled_notional"] == pytest.approx(151.0)
    assert beta["fees"] == pytest.approx(0.24)
    # o1 split by filled notional, o2 likewise, o3 filled nothing: its 0.0 goes evenly to alpha
    assert alpha["pnl_share"] == pytest.approx(1.7 * 100 / 202 + -1.09 * 50 / 99)
    assert beta["pnl_share"] == pytest.approx(1.7 * 102 / 202 + -1.09 * 49 / 99)
    assert alpha["pnl_share"] + beta["pnl_share"] == pytest.approx(1.7 - 1.09)


def test_build_report_symbol_table_and_best_worst(db: Path) -> None:
    report = build_report(db, "20240101")  # a unique prefix is enough
    markets = {m["market"]: m for m in report["symbols"]}
    assert markets["BTC/USDT"]["arbs"] == 2
    assert markets["BTC/USDT"]["realized_pnl"] == pytest.approx(0.61)
    assert markets["ETH/USDT"]["arbs"] == 1 and markets["ETH/USDT"]["complete"] == 0
    assert report["best_trade"]["opportunity_id"] == "o1"
    assert report["best_trade"]["venues"] == ["alpha", "beta"]
    assert report["worst_trade"]["opportunity_id"] == "o2"


def test_build_report_all_runs_adds_them_up(db: Path) -> None:
    report = build_report(db, "all")
    assert report["runs"] == ["20240102-000000-bbbbbb", "20240101-000000-aaaaaa"]
    assert report["opportunities"] == 8
    assert report["arbs_executed"] == 6
    assert report["realized_pnl"]["USDT"] == pytest.approx(2 * (1.7 - 1.09))


def test_build_report_is_json_serialisable(db: Path) -> None:
    text = json.dumps(build_report(db))
    assert '"arbs_executed": 3' in text


def test_build_report_when_database_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such database"):
        build_report(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_build_report_when_no_runs_raises(tmp_path: Path) -> None:
    with Writer(tmp_path / "arb.db", "r1"):
        pass  # schema only, no run row
    with pytest.raises(DataError, match="no runs"):
        build_report(tmp_path / "arb.db")


def test_build_report_when_not_an_arb_database_raises(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ArbError, match="not an arb database"):
        build_report(path)


def test_build_report_when_run_unknown_or_ambiguous_raises(db: Path) -> None:
    with pytest.raises(DataError, match="no run 'zzz'"):
        build_report(db, "zzz")
    with pytest.raises(DataError, match="ambiguous"):
        build_report(db, "2024")


def test_list_runs_newest_first(db: Path) -> None:
    assert [r["run_id"] for r in list_runs(db)] == ["20240102-000000-bbbbbb", "20240101-000000-aaaaaa"]


def test_render_report_prints_tables(db: Path) -> None:
    out = io.StringIO()
    render_report(build_report(db, "20240101"), Console(file=out, width=160, color_system=None))
    text = out.getvalue()
    for expected in ("run 20240101-000000-aaaaaa", "venues", "markets", "alpha", "BTC/USDT", "+0.6100 USDT",
                     "best trade", "busy"):
        assert expected in text, expected


def test_report_ranks_splits_and_tables_arbitrages_by_net_profit(tmp_path: Path) -> None:
    """Realized and net disagree: what an arbitrage left open counts at its mark."""
    path = tmp_path / "arb.db"
    with Writer(path, "r1") as w:
        w.start_run(source="sim", strategy="cross_exchange", settings={})
        w.write_batch([
            # a: +1.0 realized, but a long left open marked 1.5 below its cost: net -0.5
            f.result("a", realized=1.0, unrealized=-1.5, status="partial",
                     legs=(f.leg_result("a-b", "alpha", filled=1.0, average_price=100.0),
                           f.leg_result("a-s", "beta", side="sell", filled=1.0, average_price=100.0))),
            # b: -0.2 realized, a short marked 0.5 above: net +0.3, split 100 : 300 alpha : beta
            f.result("b", realized=-0.2, unrealized=0.5, status="partial",
                     legs=(f.leg_result("b-b", "alpha", filled=1.0, average_price=100.0),
                           f.leg_result("b-s", "beta", side="sell", filled=1.0, average_price=300.0))),
            # c: +0.1 on ETH/USDT, all on alpha, nothing open
            f.result("c", realized=0.1, legs=(f.leg_result("c-b", "alpha", symbol="ETH/USDT", filled=1.0,
                                                           average_price=10.0),)),
            # d: +0.2 realized, -0.3 open: net -0.1, even split (default legs)
            f.result("d", realized=0.2, unrealized=-0.3, status="partial"),
        ])
        w.end_run()
    report = build_report(path)
    assert report["win_rate"] == 0.5  # b and c made money net; realized would say 3 of 4
    assert report["best_trade"]["opportunity_id"] == "b"  # net +0.3 (realized says a, +1.0)
    assert report["best_trade"]["net_profit"] == pytest.approx(0.3)
    assert report["worst_trade"]["opportunity_id"] == "a"  # net -0.5 (realized says b, -0.2)
    venues = {v["venue"]: v["pnl_share"] for v in report["venues"]}
    # alpha: a -0.5/2 + b 0.3 * 100/400 + c 0.1 + d -0.1/2 = -0.125; beta: -0.25 + 0.225 - 0.05 = -0.075
    assert venues == {"alpha": pytest.approx(-0.125), "beta": pytest.approx(-0.075)}
    markets = {m["market"]: m for m in report["symbols"]}
    # BTC/USDT (a, b, d): net -0.5 + 0.3 - 0.1 = -0.3, realized 1.0 - 0.2 + 0.2 = 1.0
    assert markets["BTC/USDT"]["net_pnl"] == pytest.approx(-0.3)
    assert markets["BTC/USDT"]["realized_pnl"] == pytest.approx(1.0)
    assert markets["ETH/USDT"]["net_pnl"] == pytest.approx(0.1)
    out = io.StringIO()
    render_report(report, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    rows = [line for line in text.splitlines() if "BTC/USDT" in line and "-0.3000" in line]
    assert len(rows) == 1 and "+1.0000" in rows[0]  # the markets row: net beside realized
    assert "net PnL" in text and "net +0.3000 USDT (realized -0.2000, unrealized +0.5000)" in text


def test_render_report_of_empty_run(tmp_path: Path) -> None:
    with Writer(tmp_path / "arb.db", "r1") as w:
        w.start_run(source="sim", strategy="x", settings={})
    out = io.StringIO()
    report = build_report(tmp_path / "arb.db")
    assert report["arbs_executed"] == 0 and report["best_trade"] is None and report["win_rate"] is None
    render_report(report, Console(file=out, width=120, color_system=None))
    assert "not finished" in out.getvalue()


def test_build_report_duration_from_run_times(tmp_path: Path) -> None:
    with Writer(tmp_path / "arb.db", "r1") as w:
        w.start_run(source="sim", strategy="x", settings={}, started_at="2024-01-01T00:00:00.000Z")
        w.end_run(ended_at="2024-01-01T00:01:30.500Z")
    assert build_report(tmp_path / "arb.db")["duration_s"] == 90.5


def test_build_report_values_open_positions_and_renders_them(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    with Writer(path, "r1") as w:
        w.start_run(source="sim", strategy="cross_exchange", settings={})
        w.write_batch([f.result("o1", realized=3.872, residual={"BTC": 0.6}),
                       f.position(mark=100.0, stale=True),
                       f.result("o2", realized=0.0, residual={"BTC": -1.0}),
                       f.position(venue="beta", amount=-1.0, cost=-109.78, mark=111.0)])
        w.end_run()
    report = build_report(path)
    # alpha long 0.6 cost 60.06 marked (last known) at 100: 60 - 60.06 = -0.06
    # beta short 1 cost -109.78 marked at its ask 111: -111 + 109.78 = -1.22
    # realized 3.872 + 0 = 3.872; unrealized -1.28; net 2.592
    assert report["realized_pnl"] == {"USDT": 3.872}
    assert report["unrealized_pnl"] == {"USDT": -1.28}
    assert report["net_pnl"] == {"USDT": 2.592}
    assert [(p["venue"], p["amount"], p["stale"], p["unrealized"]) for p in report["positions"]] == [
        ("alpha", 0.6, True, -0.06), ("beta", -1.0, False, -1.22)]
    out = io.StringIO()
    render_report(report, Console(file=out, width=160, color_system=None))
    text = out.getvalue()
    for expected in ("open positions", "net PnL", "+2.5920 USDT", "unrealized PnL", "-1.2800 USDT",
                     "last known", "-1.2200"):
        assert expected in text, expected


def test_venue_fees_value_a_fee_charged_in_base_at_the_orders_average_price(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    with Writer(path, "r") as w:
        w.start_run(source="sim", strategy="cross_exchange", settings={})
        # alpha ("get"): a buy of 1 BTC at 100 pays 0.001 BTC = 0.1 USDT at its average price; a sale
        # pays 0.102 USDT. A fee in BNB has no price here: it is listed as charged.
        # c3 paid wholly in BNB (its fill too: counted once). c4 paid 0.05 USDT on one fill (its
        # order's fee) and 0.0002 BNB on the other (the fill's own, not in the order's fee).
        orders = (("c1", "buy", 0.001, "BTC"), ("c2", "sell", 0.102, "USDT"), ("c3", "buy", 0.5, "BNB"),
                  ("c4", "buy", 0.05, "USDT"))
        for coid, side, fee, currency in orders:
            w.write_order_submitted(f.submitted(coid, "o1", side=side))
            w.write_batch([f.update(coid, "o1", side=side, filled=1.0, average_price=100.0, fee=fee,
                                    fee_currency=currency)])
        w.write_batch([f.fill("c3", "o1", price=100.0, amount=1.0, fee=0.5, fee_currency="BNB"),
                       f.fill("c4", "o1", price=100.0, amount=0.5, fee=0.05, fee_currency="USDT"),
                       f.fill("c4", "o1", price=100.0, amount=0.5, fee=0.0002, fee_currency="BNB")])
        w.end_run()
    report = build_report(path)
    [alpha] = report["venues"]
    assert (alpha["fees"], alpha["other_fees"]) == (pytest.approx(0.252), {"BNB": 0.5002})
    out = io.StringIO()
    render_report(report, Console(file=out, width=200))
    assert "0.2520 + 0.5002 BNB" in out.getvalue()


def test_report_counts_states_and_lists_what_needs_attention_or_was_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "arb.db"
    message = ("o2: +0.6 BTC left open on alpha, marked at 100 USDT (last known price, no usable book): "
               "no liquidity; the arbitrage needs attention")
    held = Position(venue="alpha", asset="BTC", quote="USDT", amount=0.6, cost=60.06, mark=100.0, stale=True)
    with Writer(path, "r1") as w:
        w.start_run(source="sim", strategy="cross_exchange", settings={})
        for coid, oid in (("c1", "o1"), ("c2", "o2"), ("c3", "o3")):
            w.write_order_submitted(msgspec.structs.replace(f.submitted(coid, oid), label=f"{oid}-L0"))
        w.write_batch([f.update("c1", "o1"), f.update("c2", "o2")])  # c3 never answered: cut off
        w.write_batch([
            *(f.state("o1", s, ts=i) for i, s in enumerate(("planned", "submitted", "filled", "done"))),
            *(f.state("o2", s, ts=10 + i) for i, s in enumerate(("planned", "submitted", "partially_filled",
                                                                 "hedging"))),
            f.state("o2", "needs_attention", ts=20,
                    reason="left open: +0.6 BTC on alpha marked at 100 USDT (last known price) "
                           "(no liquidity)"),
            f.state("o3", "planned", ts=30), f.state("o3", "submitted", ts=31),
            msgspec.structs.replace(f.result("o2", realized=3.872, status="failed", residual={"BTC": 0.6}),
                                    positions=(held,)),
            f.alert(level="critical", key="position.open:alpha:BTC", message=message),
            f.alert(level="critical", key="other", message="o22: not this one"),
        ])
        w.end_run()
    report = build_report(path)
    assert report["arb_states"] == {"done": 1, "needs_attention": 1, "submitted": 1}
    o2, o3 = report["attention"]
    assert (o2["opportunity_id"], o2["state"], o2["final"], o2["result"], o2["since"]) == (
        "o2", "needs_attention", True, "failed", 20)
    assert o2["residual"] == {"BTC": 0.6}
    assert o2["positions"] == [{"venue": "alpha", "asset": "BTC", "quote": "USDT", "amount": 0.6,
                                "mark": 100.0, "stale": True}]
    assert o2["alerts"] == [message]
    assert o2["open_orders"] == []
    assert (o3["opportunity_id"], o3["state"], o3["final"], o3["result"], o3["alerts"]) == (
        "o3", "submitted", False, None, [])
    assert [(o["client_order_id"], o["label"], o["status"]) for o in o3["open_orders"]] == [
        ("c3", "o3-L0", "submitted")]
    json.dumps(report)
    out = io.StringIO()
    render_report(report, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    for expected in ("arbitrage states", "done 1, needs_attention 1, submitted 1", "need attention",
                     "+0.6 BTC on alpha @ 100 USDT", "no liquidity", "not finished",
                     "no result (cut off); open orders: o3-L0 submitted"):
        assert expected in text, expected


def test_report_of_a_file_without_states_has_none(db: Path) -> None:
    report = build_report(db)
    assert (report["arb_states"], report["attention"]) == ({}, [])
