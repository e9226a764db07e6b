"""Start-up reconciliation (``trading.reconcile``) in one process: the journal rows an earlier run
left, the real ccxt against the in-process emulators, what is published and what the risk gate
does meanwhile. The whole-process restarts (SIGKILL, then ``arb run`` again) are in
``tests/faults/test_restart.py``."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import typing as t
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from loguru import logger

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import (
    Alert,
    ArbResult,
    BalanceUpdate,
    BookUpdate,
    Fill,
    Leg,
    Opportunity,
    OrderSubmitted,
    OrderUpdate,
)
from arbitrage.settings import Settings
from arbitrage.storage.queries import unfinished_arbitrages, unfinished_orders
from arbitrage.storage.writer import Writer
from arbitrage.trading.executor import Executor
from arbitrage.trading.ids import client_order_id
from arbitrage.trading.reconcile import Reconciler
from arbitrage.trading.risk import RiskGate
from tests.emulator.core import Fault
from tests.emulator.kraken_wire import kraken_id
from tests.trading.live_helpers import FAST, emulated, request

SYMBOL = "BTC/USDT"


def row(label: str, venue: str = "binance", *, side: str = "buy", amount: float = 0.5, price: float = 100.0,
        live: int = 1, ts_submitted: int | None = None, status: str = "submitted") -> dict[str, t.Any]:
    """A journal row (``orders`` with its run's ``live`` flag) as ``unfinished_orders`` returns it."""
    return {"run_id": "dead", "client_order_id": client_order_id(label),
            "opportunity_id": label.rpartition("-")[0], "venue": venue, "symbol": SYMBOL, "side": side,
            "amount": amount, "price": price, "purpose": "leg",
            "status": status, "filled": 0.0, "average_price": None, "fee": 0.0, "reason": None,
            "venue_order_id": None, "ts_submitted": time.time_ns() if ts_submitted is None else ts_submitted,
            "ts_updated": None, "label": label, "fee_currency": None, "live": live}


def desk(venues: dict[str, t.Any], *, live: bool = True,
         settings: t.Any = FAST) -> tuple[Bus, Executor, Reconciler, BookStore]:
    bus, books = Bus(), BookStore()
    trading = msgspec.structs.replace(Settings().trading, hedge_max_loss_bps=10_000.0)
    executor = Executor(bus=bus, clock=Clock(), settings=trading, venues=venues,
                        markets={n: dict(v.markets) for n, v in venues.items()}, books=books,
                        staleness_ms=dict.fromkeys(venues, 60_000.0), log=logger, liquidity=books)
    reconciler = Reconciler(bus=bus, clock=Clock(), log=logger, executor=executor, books=books,
                            settings=settings, live=live)
    return bus, executor, reconciler, books


def opportunity(*legs: Leg, oid: str = "x1") -> Opportunity:
    return Opportunity(id=oid, strategy="t", legs=legs, profit=1.0, profit_bps=10.0, quote="USDT",
                       notional=50.0, book_ts=(0,) * len(legs), ts_event=0, ts_init=0)


def test_the_reconciling_rule_refuses_everything_and_says_why_until_every_venue_is_done():
    gate = RiskGate(Settings().trading)
    opp = opportunity(Leg(venue="v", symbol=SYMBOL, side="buy", amount=1.0, price=1.0, expected_price=1.0,
                          fee_rate=0.0))
    gate.hold_reconciling("binance", "looking up 1 order")
    gate.hold_reconciling("kraken", "waiting for the venue to open")
    refusal = gate.check(opp, {"v": {"USDT": 10.0}}, {})
    assert refusal is not None and refusal.reason == "reconciling"
    assert refusal.detail == "binance: looking up 1 order; kraken: waiting for the venue to open"
    assert not gate.end_reconciling("binance")
    assert gate.end_reconciling("kraken")
    assert gate.check(opp, {"v": {"USDT": 10.0}}, {}).reason != "reconciling"  # the next rule now


def test_a_paper_order_of_a_killed_run_is_recorded_lost_in_its_own_run_and_holds_nothing():
    bus, executor, reconciler, _ = desk({}, live=False)
    with bus.collect(OrderUpdate) as seen:
        reconciler.load([row("dead-1-L0", live=0), row("dead-1-L1", live=1)], [])
    [update] = seen
    assert (update.status, update.run_id, update.client_order_id) == \
        ("lost", "dead", client_order_id("dead-1-L0"))
    assert "nothing reached an exchange" in update.reason
    assert not executor.risk.reconciling  # a paper run leaves the live order to a live run


def test_a_live_order_filled_while_the_process_was_down_is_recorded_with_its_fills_in_its_run():
    async def scenario():
        async with emulated("binance") as binance:
            binance.exchange.set_book(SYMBOL, [("99", "5")], [("100", "1")])
            binance.exchange.set_balance("USDT", "1000")
            venue = await binance.venue()
            journal = row("dead-1-L0")
            binance.exchange.place_order(SYMBOL, "buy", "limit", "0.5", "100", time_in_force="IOC",
                                         client_order_id=journal["client_order_id"])  # the dead run's
            bus, executor, reconciler, _ = desk({"binance": venue})
            await bus.start()
            with bus.collect(OrderUpdate, Fill) as seen:
                reconciler.load([journal], [])
                assert executor.risk.reconciling == {"binance": "1 unfinished order(s) of earlier runs to "
                                                                "look up; waiting for the venue to open"}
                reconciler.venue_open("binance", venue)
                while executor.risk.reconciling:
                    await asyncio.sleep(0.01)
            await bus.stop()
            return seen, binance.orders_with(journal["client_order_id"])

    seen, placed = asyncio.run(scenario())
    assert len(placed) == 1  # looked up, never sent again
    fills = [e for e in seen if isinstance(e, Fill)]
    [update] = [e for e in seen if isinstance(e, OrderUpdate)]
    # By hand: 0.5 BTC at 100; Binance takes 0.1 % of what a buy receives: 0.0005 BTC
    assert [(f.price, f.amount, f.fee, f.fee_currency, f.run_id) for f in fills] == \
        [(100.0, 0.5, 0.0005, "BTC", "dead")]
    assert (update.status, update.filled, update.average_price, update.run_id) == \
        ("filled", 0.5, 100.0, "dead")


def test_an_order_not_found_stays_unknown_until_the_venue_could_no_longer_accept_it():
    async def scenario():
        async with emulated("binance") as binance:
            venue = await binance.venue()
            journal = row("dead-1-L0")  # sent just now: a request in flight may still arrive
            bus, executor, reconciler, _ = desk({"binance": venue})
            await bus.start()
            reasons = []
            with bus.collect(OrderUpdate, Alert) as seen:
                reconciler.load([journal], [])
                reconciler.venue_open("binance", venue)
                while executor.risk.reconciling:
                    reasons.append(executor.risk.reconciling_reason)
                    await asyncio.sleep(0.01)
            await bus.stop()
            return seen, reasons, (time.time_ns() - journal["ts_submitted"]) / 1e9

    seen, reasons, waited = asyncio.run(scenario())
    assert any("has an unknown fate (not found" in r for r in reasons)
    [update] = [e for e in seen if isinstance(e, OrderUpdate)]
    assert update.status == "rejected" and update.reason.startswith("not placed: binance has no order")
    assert waited >= FAST.not_found_after_s
    alerts = [(a.key, a.level, a.recovered) for a in seen if isinstance(a, Alert)]
    assert alerts == [("reconcile:binance", "critical", False), ("reconcile:binance", "critical", True)]


def test_a_failing_lookup_keeps_trading_halted_with_the_reason():
    async def scenario():
        async with emulated("binance") as binance:
            venue = await binance.venue()
            binance.exchange.inject(Fault("status", endpoint="GET /api/v3/openOrders", status=503,
                                          times=10_000))
            bus, executor, reconciler, _ = desk({"binance": venue})
            await bus.start()
            reconciler.load([row("dead-1-L0", ts_submitted=0)], [])
            reconciler.venue_open("binance", venue)
            await asyncio.sleep(0.5)
            reason = executor.risk.reconciling_reason
            await reconciler.stop()
            await bus.stop()
            return reason

    reason = asyncio.run(scenario())
    assert reason.startswith("binance: reading open orders on BTC/USDT failed (ExchangeNotAvailable")


def test_an_unfinished_arbitrage_is_finished_by_hedging_what_its_known_legs_left():
    async def scenario():
        async with emulated("binance") as binance:
            binance.exchange.set_book(SYMBOL, [("99", "5")], [("100", "5")])
            binance.exchange.set_balance("USDT", "1000")
            venue = await binance.venue()
            leg = row("dead-1-L0", ts_submitted=0)
            binance.exchange.place_order(SYMBOL, "buy", "limit", "0.5", "100",
                                         client_order_id=leg["client_order_id"], time_in_force="IOC")
            legs = (Leg(venue="binance", symbol=SYMBOL, side="buy", amount=0.5, price=100.0,
                        expected_price=100.0, fee_rate=0.001),)
            arb = {"run_id": "dead", "opportunity_id": "dead-1", "state": "submitted", "orders": [leg],
                   **msgspec.to_builtins(opportunity(*legs, oid="dead-1"))}
            arb["legs"] = msgspec.json.encode(legs).decode()
            arb["book_ts"] = "[0]"
            bus, executor, reconciler, books = desk({"binance": venue})
            now = time.time_ns()
            books.update(BookUpdate(venue="binance", symbol=SYMBOL, ts_event=now, ts_init=now,
                                    bids=((99.0, 5.0),), asks=((100.0, 4.5),)))
            await bus.start()
            with bus.collect(OrderUpdate) as seen:
                reconciler.load([leg], [arb])
                reconciler.venue_open("binance", venue)
                while executor.risk.reconciling:
                    await asyncio.sleep(0.01)
            await bus.stop()
            placed = [(o.client_order_id, o.side, str(o.filled)) for o in binance.exchange.orders.values()]
            return seen, placed

    seen, placed = asyncio.run(scenario())
    # the leg bought 0.5 BTC, 0.4995 after Binance's fee; one leg only, so the hedge sells it back
    hedge = client_order_id("dead-1-H0")
    assert placed == [(client_order_id("dead-1-L0"), "buy", "0.5"), (hedge, "sell", "0.4995")]
    assert [(u.client_order_id, u.status, u.run_id) for u in seen] == [
        (client_order_id("dead-1-L0"), "filled", "dead"), (hedge, "filled", "")]


async def until(condition: t.Callable[[], t.Any], what: str, timeout_s: float = 15.0) -> None:
    """Wait for ``condition`` (a generous backstop, never a timing assertion)."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def dead_arbitrage(leg: dict[str, t.Any], **fields: t.Any) -> dict[str, t.Any]:
    """An unfinished arbitrage of one Binance buy leg, its opportunity row stored (``fields`` on top)."""
    legs = (Leg(venue="binance", symbol=SYMBOL, side="buy", amount=0.5, price=100.0, expected_price=100.0,
                fee_rate=0.001),)
    arb = {"run_id": "dead", "opportunity_id": "dead-1", "state": "submitted", "orders": [leg],
           **msgspec.to_builtins(opportunity(*legs, oid="dead-1"))}
    arb.update({"legs": msgspec.json.encode(legs).decode(), "book_ts": "[0]", **fields})
    return arb


def test_a_reconciliation_task_dying_outside_its_retries_raises_a_critical_alert_and_keeps_trading_held():
    async def scenario():
        async with emulated("binance") as binance:
            binance.exchange.set_book(SYMBOL, [("99", "5")], [("100", "5")])
            binance.exchange.set_balance("USDT", "1000")
            venue = await binance.venue()
            leg = row("dead-1-L0", ts_submitted=0)
            arb = dead_arbitrage(leg, legs="[{not json")  # a corrupt stored row: decoding it raises
            bus, executor, reconciler, _ = desk({"binance": venue})
            await bus.start()
            with bus.collect(Alert) as alerts:
                reconciler.load([leg], [arb])
                reconciler.venue_open("binance", venue)
                await until(lambda: alerts, "an alert")
                await asyncio.sleep(0.1)
            reason = executor.risk.reconciling_reason
            await reconciler.stop()
            await bus.stop()
            return alerts, reason

    alerts, reason = asyncio.run(scenario())
    [alert] = alerts
    assert (alert.key, alert.level, alert.recovered) == ("reconcile:binance", "critical", False)
    assert alert.message.startswith("start-up reconciliation of binance failed, nothing trades: "
                                    "reconciliation failed (DecodeError: ")
    assert "binance: reconciliation failed (DecodeError" in reason  # still held, and why


def test_an_adopted_order_that_cannot_be_followed_raises_a_critical_alert_naming_it():
    async def scenario():
        async with emulated("binance") as binance:
            binance.exchange.set_book(SYMBOL, [("99", "5")], [("100", "5")])
            binance.exchange.set_balance("USDT", "1000")
            journal = row("dead-1-L0", price=90.0, ts_submitted=0)
            binance.exchange.place_order(SYMBOL, "buy", "limit", "0.5", "90",
                                         client_order_id=journal["client_order_id"])  # resting
            venue = await binance.venue()
            bus, executor, reconciler, _ = desk(
                {"binance": venue}, settings=msgspec.structs.replace(FAST, on_restart_open_orders="adopt"))

            def adopted(update: OrderUpdate) -> None:  # the venue stops answering while we follow it
                if update.status == "open":
                    binance.exchange.inject(Fault("status", endpoint="GET /api/v3/openOrders", status=503,
                                                  times=10_000))

            bus.subscribe(OrderUpdate, adopted, name="test")
            await bus.start()
            with bus.collect(Alert) as alerts:
                reconciler.load([journal], [])
                reconciler.venue_open("binance", venue)
                await until(lambda: alerts, "an alert")
            reason = executor.risk.reconciling_reason
            await reconciler.stop()
            await bus.stop()
            return alerts, reason, journal["client_order_id"]

    alerts, reason, cid = asyncio.run(scenario())
    [alert] = alerts
    assert (alert.key, alert.level) == ("reconcile:binance", "critical")
    assert f"following adopted open order {cid} (reading open orders on BTC/USDT) failed " \
           "(ExchangeNotAvailable" in alert.message
    assert reason.startswith(f"binance: following adopted open order {cid}")


def test_after_reconciliation_the_balances_are_the_venues_even_when_the_first_read_fails():
    async def scenario():
        async with emulated("binance") as binance:
            binance.exchange.set_book(SYMBOL, [("99", "5")], [("100", "1")])
            binance.exchange.set_balance("USDT", "1000")
            journal = row("dead-1-L0")
            binance.exchange.place_order(SYMBOL, "buy", "limit", "0.5", "100", time_in_force="IOC",
                                         client_order_id=journal["client_order_id"])  # before we start
            venue = await binance.venue()  # reads the balances the dead run's fill left
            binance.exchange.inject(Fault("status", endpoint="GET /api/v3/account", status=503))
            bus, executor, reconciler, _ = desk({"binance": venue})
            at_alert: list[dict[str, float]] = []
            bus.subscribe(Alert, lambda a: at_alert.append(venue.balances()), name="test")
            await bus.start()
            with bus.collect(Alert, BalanceUpdate) as seen:
                reconciler.load([journal], [])
                reconciler.venue_open("binance", venue)
                await until(lambda: not executor.risk.reconciling, "reconciliation done")
            await bus.stop()
            free = (await venue.exchange.fetch_balance())["free"]
            return seen, at_alert, venue.balances(), {a: v for a, v in free.items() if v is not None}

    seen, at_alert, ours, venues = asyncio.run(scenario())
    # By hand: 1000 USDT - 0.5 * 100 = 950; 0.5 BTC - 0.1 % fee = 0.4995, booked once
    assert ours == venues and (ours["USDT"], ours["BTC"]) == (950.0, 0.4995)
    assert at_alert[0] == ours  # the lookup did not book the fills the start-up read already holds
    alerts = [a for a in seen if isinstance(a, Alert)]
    assert "reading balances failed (ExchangeNotAvailable" in alerts[0].message and alerts[-1].recovered
    [update] = [e for e in seen if isinstance(e, BalanceUpdate)]
    assert update.balances == ours


@pytest.mark.parametrize("first", ["trades", "average"])
def test_restarting_twice_stores_each_venue_trade_once(tmp_path: Path, first: str):
    """A run's two fills were stored, then it died before the order's final state; the restart
    that reads them again dies before its own final state too: every trade is stored once. When the
    first run had booked the order as one fill at its average (its trades did not add up then),
    the restarts find the real trades but store nothing more: the order's 0.5 is stored once."""
    path = tmp_path / "arb.db"

    async def reconciled(binance: t.Any, *, keep: tuple[type, ...]) -> None:
        venue = await binance.venue()
        bus, executor, reconciler, _ = desk({"binance": venue})
        with Writer(path, "restart") as writer:
            bus.subscribe(Fill, lambda e: writer.write_batch([e]), name="test")
            bus.subscribe(OrderUpdate, lambda e: OrderUpdate in keep and writer.write_batch([e]), name="test")
            await bus.start()
            reconciler.load(unfinished_orders(path), [])
            reconciler.venue_open("binance", venue)
            await until(lambda: not executor.risk.reconciling, "reconciliation done")
            await bus.stop()

    async def scenario():
        async with emulated("binance") as binance:
            binance.exchange.set_book(SYMBOL, [("99", "5")], [("100", "0.2"), ("101", "5")])
            binance.exchange.set_balance("USDT", "1000")
            order = request("dead-1-L0", "binance", "buy", 0.5, 101.0)
            with Writer(path, "dead") as writer:  # the first run: journal, send, its fills stored
                writer.start_run(source="ccxt", strategy="t", settings={}, live=True)
                writer.write_order_submitted(OrderSubmitted(
                    client_order_id=order.client_order_id, opportunity_id=order.opportunity_id,
                    venue="binance", symbol=SYMBOL, side="buy", amount=0.5, price=101.0, label=order.label,
                    ts_init=time.time_ns()))
                result = await (await binance.venue()).submit(order)
                booked = result.fills if first == "trades" else [msgspec.structs.replace(
                    result.fills[0], price=result.average_price, amount=result.filled,
                    fee=sum(f.fee for f in result.fills), trade_id=f"order:{result.venue_order_id}")]
                writer.write_batch([Fill(client_order_id=order.client_order_id, opportunity_id="dead-1",
                                         venue="binance", symbol=SYMBOL, side="buy", price=f.price,
                                         amount=f.amount, fee=f.fee, fee_currency=f.fee_currency,
                                         trade_id=f.trade_id, ts_event=f.ts_event, ts_init=1)
                                    for f in booked])
            await reconciled(binance, keep=())  # killed before the order's final state was stored
            await reconciled(binance, keep=(OrderUpdate,))
            return [(str(tr.id), tr.price, tr.amount) for tr in binance.exchange.trades], result

    trades, result = asyncio.run(scenario())
    assert [(p, a) for _, p, a in trades] == [(Decimal("100"), Decimal("0.2")),
                                              (Decimal("101"), Decimal("0.3"))]
    with contextlib.closing(sqlite3.connect(path)) as db:
        fills = db.execute("SELECT run_id, trade_id, price, amount FROM fills ORDER BY id").fetchall()
        status = db.execute("SELECT run_id, status, filled FROM orders").fetchall()
    if first == "trades":
        assert fills == [("dead", tid, float(p), float(a)) for tid, p, a in trades]
    else:  # (100 * 0.2 + 101 * 0.3) / 0.5 = 100.6
        assert fills == [("dead", f"order:{result.venue_order_id}", pytest.approx(100.6), 0.5)]
    assert status == [("dead", "filled", 0.5)]
    assert unfinished_orders(path) == []


def test_kraken_trades_pages_back_are_found_after_a_long_downtime():
    """The dead run's Kraken sell filled twice, then the account traded 60 times more: its trades
    are on TradesHistory's second page (50 a page, newest first), read through ``ofs``."""
    async def scenario():
        async with emulated("kraken") as kraken:
            kraken.exchange.set_book(SYMBOL, [("110", "0.2"), ("109", "5")], [("111", "50")])
            kraken.exchange.set_balance("BTC", "1")
            kraken.exchange.set_balance("USDT", "10000")
            order = request("dead-1-L0", "kraken", "sell", 0.5, 109.0)
            placed = await (await kraken.venue()).submit(order)  # the dead run's sell
            ours = [(f"{tr.price}", f"{tr.amount}", kraken_id("T", tr.id)) for tr in kraken.exchange.trades]
            for _ in range(60):  # the account went on trading while we were down
                kraken.exchange.place_order(SYMBOL, "buy", "limit", "0.1", "111", time_in_force="IOC")
            venue = await kraken.venue()
            bus, executor, reconciler, _ = desk({"kraken": venue})
            await bus.start()
            with bus.collect(Fill, OrderUpdate) as seen:
                reconciler.load([row("dead-1-L0", "kraken", side="sell", amount=0.5, price=109.0,
                                     ts_submitted=0)], [])
                reconciler.venue_open("kraken", venue)
                await until(lambda: not executor.risk.reconciling, "reconciliation done")
            await bus.stop()
            pages = [r.params.get("ofs") for r in kraken.exchange.requests
                     if r.endpoint == "POST /0/private/TradesHistory"]
            return placed, ours, seen, pages

    placed, ours, seen, pages = asyncio.run(scenario())
    assert [(f.price, f.amount) for f in placed.fills] == [(110.0, 0.2), (109.0, 0.3)]
    fills = [e for e in seen if isinstance(e, Fill)]
    assert [(f"{f.price:g}", f"{f.amount:g}", f.trade_id) for f in fills] == ours
    [update] = [e for e in seen if isinstance(e, OrderUpdate)]
    # By hand: 0.2 * 110 + 0.3 * 109 = 54.7 USDT for 0.5 BTC
    assert (update.status, update.filled, update.average_price) == ("filled", 0.5, pytest.approx(109.4))
    assert pages[-2:] == ["0", "50"]  # the reconciliation's lookup read two pages


def test_a_resumed_arbitrage_reports_what_its_journaled_opportunity_expected(tmp_path: Path):
    """The dead run journaled its opportunity with its first order (storage does so in a realtime
    run) and died before any batch: the resumed arbitrage's result has the expected profit."""
    path = tmp_path / "arb.db"
    legs = (Leg(venue="binance", symbol=SYMBOL, side="buy", amount=0.5, price=100.0, expected_price=100.0,
                fee_rate=0.001),)
    planned = Opportunity(id="dead-1", strategy="cross_exchange", legs=legs, profit=1.25, profit_bps=25.0,
                          quote="USDT", notional=50.0, book_ts=(1,), ts_event=1, ts_init=2)
    leg = request("dead-1-L0", "binance", "buy", 0.5, 100.0)
    with Writer(path, "dead") as writer:
        writer.start_run(source="ccxt", strategy="cross_exchange", settings={}, live=True)
        writer.write_order_submitted(OrderSubmitted(
            client_order_id=leg.client_order_id, opportunity_id="dead-1", venue="binance", symbol=SYMBOL,
            side="buy", amount=0.5, price=100.0, label=leg.label, ts_init=time.time_ns()),
            opportunity=planned)

    async def scenario():
        async with emulated("binance") as binance:
            binance.exchange.set_book(SYMBOL, [("99", "5")], [("100", "5")])
            binance.exchange.set_balance("USDT", "1000")
            binance.exchange.place_order(SYMBOL, "buy", "limit", "0.5", "100", time_in_force="IOC",
                                         client_order_id=leg.client_order_id)
            venue = await binance.venue()
            bus, executor, reconciler, books = desk({"binance": venue})
            now = time.time_ns()
            books.update(BookUpdate(venue="binance", symbol=SYMBOL, ts_event=now, ts_init=now,
                                    bids=((99.0, 5.0),), asks=((100.0, 4.5),)))
            await bus.start()
            with bus.collect(ArbResult) as seen:
                reconciler.load(unfinished_orders(path), unfinished_arbitrages(path))
                reconciler.venue_open("binance", venue)
                await until(lambda: not executor.risk.reconciling, "reconciliation done")
            await bus.stop()
            return seen

    [result] = asyncio.run(scenario())
    # By hand: bought 0.5 BTC for 50 USDT, 0.4995 after the fee; the hedge sells 0.4995 at 99 =
    # 49.4505 less 0.1 % = 49.4010495 USDT: realized -0.5989505
    assert (result.opportunity_id, result.run_id, result.strategy) == ("dead-1", "dead", "cross_exchange")
    assert result.realized_profit == pytest.approx(-0.5989505)
    assert result.expected_profit == 1.25
    assert result.slippage == pytest.approx(1.25 + 0.5989505 - result.unrealized_profit)
