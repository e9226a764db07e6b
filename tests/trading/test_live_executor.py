"""The executor over two live venues (Binance and Kraken emulators, the real ccxt): a rejected leg is
hedged from what the venues report; an order of unknown fate halts its venue and blocks every
hedge until the venue says what became of it."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from loguru import logger

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import (
    Alert,
    ArbResult,
    ArbStateChanged,
    BalanceUpdate,
    BookUpdate,
    OpportunityRejected,
    OrderUpdate,
)
from arbitrage.settings import Settings
from arbitrage.trading.executor import Executor
from arbitrage.trading.live import LiveVenue
from tests.emulator.core import Fault
from tests.trading.helpers import cid, leg, opportunity, run
from tests.trading.live_helpers import Live, emulated

B, K = "binance", "kraken"
SYMBOL = "BTC/USDT"


class Desk:
    """An executor over live venues, the books it plans with mirrored from the emulators'."""

    def __init__(self, venues: dict[str, LiveVenue]) -> None:
        self.bus = Bus()
        self.books = BookStore()
        self.bus.subscribe(BookUpdate, self.books.update, name="books")
        settings = msgspec.structs.replace(Settings().trading, hedge_max_loss_bps=10_000.0, latency_ms=0.0)
        self.venues = venues
        self.executor = Executor(
            bus=self.bus, clock=Clock(), settings=settings, venues=venues,
            markets={name: dict(v.markets) for name, v in venues.items()}, books=self.books,
            staleness_ms=dict.fromkeys(venues, 60_000.0), log=logger, liquidity=self.books,
            unknown_retry_s=0.05)
        self.executor.strict_states = True

    def mirror(self, live: Live, name: str) -> None:
        """Publish the emulator's current book as the run's book of ``name``."""
        book = live.exchange.book(SYMBOL)
        now = time.time_ns()
        self.bus.publish(BookUpdate(venue=name, symbol=SYMBOL, ts_event=now, ts_init=now,
                                    bids=tuple((float(p), float(q)) for p, q in book.levels("bids")),
                                    asks=tuple((float(p), float(q)) for p, q in book.levels("asks"))))


def states(seen: list, opportunity_id: str = "x1") -> list[str]:
    return [e.state for e in seen if isinstance(e, ArbStateChanged) and e.opportunity_id == opportunity_id]


def plant(binance: Live, kraken: Live) -> None:
    binance.exchange.set_book(SYMBOL, [("99.0", "5")], [("100.0", "1")])
    binance.exchange.set_balance("USDT", "1000")
    binance.exchange.set_balance("BTC", "0")
    kraken.exchange.set_book(SYMBOL, [("110.0", "1")], [("111.0", "1")])
    kraken.exchange.set_balance("USDT", "0")
    kraken.exchange.set_balance("BTC", "1")


def test_the_filled_leg_is_hedged_when_the_other_venue_rejects_its_leg():
    async def scenario():
        async with emulated(B) as binance, emulated(K) as kraken:
            plant(binance, kraken)
            desk = Desk({B: await binance.venue(), K: await kraken.venue()})
            await desk.bus.start()
            desk.mirror(binance, B)
            desk.mirror(kraken, K)
            kraken.exchange.set_balance("BTC", "0")  # moved away after the venue read its balances
            with desk.bus.collect(ArbResult, OrderUpdate, BalanceUpdate, ArbStateChanged) as seen:
                desk.executor.on_opportunity(opportunity("x1", leg(B, "buy", 0.5, 100.0),
                                                         leg(K, "sell", 0.5, 110.0)))
                await desk.executor.join()
            await desk.bus.stop()
            return binance, kraken, seen, desk.venues[B].balances()

    binance, kraken, seen, balances = run(scenario())
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert [(lr.client_order_id, lr.venue, lr.side, lr.status) for lr in result.legs] == [
        (cid("x1-L0"), B, "buy", "filled"), (cid("x1-L1"), K, "sell", "rejected"),
        (cid("x1-H0"), B, "sell", "filled")]
    assert result.status == "partial"
    # Binance buys 0.5 @ 100 = 50 USDT and pays 0.1 % in the BTC it gets: 0.4995 BTC held. The hedge
    # sells those 0.4995 @ 99 = 49.4505 USDT, fee 0.1 % in USDT (what a sell gets): 0.0494505.
    # Realized: 49.4505 - 0.0494505 - 50 = -0.5989505 USDT, nothing left open.
    assert result.realized_profit == pytest.approx(-0.5989505, abs=1e-9)
    assert result.residual == {"BTC": 0.0}
    assert balances == {"USDT": pytest.approx(999.4010495), "BTC": pytest.approx(0.0, abs=1e-12)}
    ledger = binance.exchange
    assert (float(ledger.balance("USDT").free), float(ledger.balance("BTC").free)) == (
        pytest.approx(999.4010495), 0.0)
    assert [(o.side, o.status, str(o.filled)) for o in ledger.orders.values()] == [
        ("buy", "closed", "0.5"), ("sell", "closed", "0.4995")]
    assert kraken.count("POST /0/private/AddOrder") == 1 and kraken.exchange.orders == {}
    assert states(seen) == ["planned", "submitted", "partially_filled", "hedging", "done"]


def test_an_order_of_unknown_fate_halts_its_venue_and_nothing_is_hedged_until_it_is_known():
    async def scenario():
        async with emulated(B) as binance, emulated(K) as kraken:
            plant(binance, kraken)
            desk = Desk({B: await binance.venue(), K: await kraken.venue()})
            await desk.bus.start()
            desk.mirror(binance, B)
            desk.mirror(kraken, K)
            # Binance fills the buy but its answer is lost, and every lookup fails for now
            binance.exchange.inject(Fault("lost", endpoint="POST /api/v3/order"),
                                    *(Fault("status", endpoint=e, status=503, times=10_000)
                                      for e in ("GET /api/v3/order", "GET /api/v3/openOrders")))
            with desk.bus.collect(ArbResult, OrderUpdate, Alert, OpportunityRejected,
                                  ArbStateChanged) as seen:
                desk.executor.on_opportunity(opportunity("x1", leg(B, "buy", 0.5, 100.0),
                                                         leg(K, "sell", 0.5, 110.0)))
                while not any(isinstance(e, Alert) for e in seen):
                    await asyncio.sleep(0.01)
                halted = {venue: set(ids) for venue, ids in desk.executor.risk.halted_venues.items()}
                desk.mirror(binance, B)
                desk.executor.on_opportunity(opportunity("x2", leg(B, "buy", 0.1, 101.0),
                                                         leg(K, "sell", 0.1, 109.0)))
                await asyncio.sleep(0.3)  # the executor keeps asking; nothing else happens meanwhile
                during = kraken.count("POST /0/private/AddOrder"), binance.count("POST /api/v3/order")
                binance.exchange.clear_faults()
                await desk.executor.join()
            await desk.bus.stop()
            return binance, kraken, seen, halted, during, desk.executor.risk.halted_venues

    binance, _, seen, halted, during, after = run(scenario())
    client_id = cid("x1-L0")
    assert halted == {B: {client_id}} and after == {}
    refused = [(e.opportunity_id, e.reason) for e in seen if isinstance(e, OpportunityRejected)]
    assert refused == [("x2", "venue_halted")]
    alert, recovered = [e for e in seen if isinstance(e, Alert)]
    assert (alert.level, alert.key, alert.recovered) == ("critical", f"order.unknown:{B}:{client_id}", False)
    assert B in alert.message and client_id in alert.message and "x1-L0" in alert.message
    assert recovered.recovered and "filled" in recovered.message and "resumed" in recovered.message
    assert during == (1, 1)  # no hedge and no resubmission while the fate was unknown
    updates = [(u.venue, u.status) for u in seen if isinstance(u, OrderUpdate)]
    assert updates == [(K, "filled"), (B, "unknown"), (B, "filled")] or updates == [
        (B, "unknown"), (K, "filled"), (B, "filled")]
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert result.status == "complete" and len(result.legs) == 2  # both filled: nothing to hedge
    assert len(binance.orders_with(client_id)) == 1 and binance.count("POST /api/v3/order") == 1
    assert states(seen) == ["planned", "submitted", "unknown", "filled", "done"]
    assert states(seen, "x2") == []  # refused: never planned


def test_a_live_order_cut_off_by_the_stop_is_unknown_not_canceled_and_its_venue_halted():
    async def scenario():
        async with emulated(B) as binance, emulated(K) as kraken:
            plant(binance, kraken)
            desk = Desk({B: await binance.venue(), K: await kraken.venue()})
            await desk.bus.start()
            desk.mirror(binance, B)
            desk.mirror(kraken, K)
            # Binance places and fills the buy at once but answers only after a minute
            binance.exchange.inject(Fault("lost", endpoint="POST /api/v3/order", delay=60.0))
            with desk.bus.collect(OrderUpdate, Alert, ArbStateChanged) as seen:
                desk.executor.on_opportunity(opportunity("x1", leg(B, "buy", 0.5, 100.0),
                                                         leg(K, "sell", 0.5, 110.0)))
                while not binance.exchange.orders:
                    await asyncio.sleep(0.01)
                await desk.executor.cancel()  # the run stops with the buy in flight
            halted = {venue: set(ids) for venue, ids in desk.executor.risk.halted_venues.items()}
            await desk.bus.stop()
            return binance, seen, halted

    binance, seen, halted = run(scenario())
    client_id = cid("x1-L0")
    # the venue filled it: recording it "canceled, nothing filled" would hide a 0.4995 BTC position
    placed = [(o.client_order_id, o.status) for o in binance.exchange.orders.values()]
    assert placed == [(client_id, "closed")]
    assert (B, "unknown") in [(u.venue, u.status) for u in seen if isinstance(u, OrderUpdate)]
    assert halted == {B: {client_id}}
    assert any(a.level == "critical" and a.key == f"order.unknown:{B}:{client_id}" for a in seen
               if isinstance(a, Alert))
    # the arbitrage ends needing attention, with a critical alert naming the order it cannot vouch for
    assert states(seen) == ["planned", "submitted", "needs_attention"]
    [final] = [e for e in seen if isinstance(e, ArbStateChanged) and e.state == "needs_attention"]
    # Kraken's sell filled; Binance's buy (which filled too) is unknown: counted as nothing filled,
    # so the books show -0.5 BTC on Kraken, marked at its ask, not hedged on that guess
    assert final.reason == ("left open: -0.5 BTC on kraken marked at 111 USDT (not closed while an order's "
                            f"fate is unknown); fate unknown: x1-L0 ({client_id}) on {B}")
    [alert] = [a for a in seen if isinstance(a, Alert) and a.key == "arb.needs_attention:x1"]
    assert (alert.level, alert.message) == ("critical", f"x1 needs attention: {final.reason}")


def test_a_fee_paid_in_bnb_is_a_short_of_bnb_never_hedged_nor_mixed_into_the_quote():
    # Binance pays its buy's fee in BNB (at 200 USDT): 0.5 @ 100 = 50 USDT, fee 0.05 USDT = 0.00025
    # BNB, so the 0.5 BTC arrive whole and Kraken's sell of 0.5 @ 110 (fee 0.26 % = 0.143 USDT)
    # leaves no BTC. The BNB spent is the residual, a short on Binance; no BNB market is known, so
    # it is not hedged (nor waited for), cannot be valued (mark 0, stale), and realized is the USDT
    # alone: 55 - 0.143 - 50 = 4.857.
    async def scenario():
        async with emulated(B) as binance, emulated(K) as kraken:
            plant(binance, kraken)
            binance.exchange.set_balance("BNB", "1")
            binance.exchange.pay_fees_in("BNB", "200")
            desk = Desk({B: await binance.venue(), K: await kraken.venue()})
            await desk.bus.start()
            desk.mirror(binance, B)
            desk.mirror(kraken, K)
            with desk.bus.collect(ArbResult, Alert) as seen:
                desk.executor.on_opportunity(opportunity("x1", leg(B, "buy", 0.5, 100.0),
                                                         leg(K, "sell", 0.5, 110.0)))
                await desk.executor.join()
            await desk.bus.stop()
            return binance, seen, desk.venues[B].balances()

    binance, seen, balances = run(scenario())
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert result.status == "complete"
    assert [lr.label for lr in result.legs] == ["x1-L0", "x1-L1"]
    assert result.residual == {"BTC": 0.0, "BNB": pytest.approx(-0.00025)}
    assert [(p.venue, p.asset, p.amount, p.stale) for p in result.positions] == [
        (B, "BNB", pytest.approx(-0.00025), True)]
    assert result.realized_profit == pytest.approx(4.857)
    assert result.fees == pytest.approx(0.143)  # the BNB cannot be valued without a BNB market
    assert not [e for e in seen if isinstance(e, Alert) and e.key.startswith("position.open")]
    expected = {"USDT": pytest.approx(950.0), "BTC": pytest.approx(0.5), "BNB": pytest.approx(0.99975)}
    assert {a: balances[a] for a in expected} == expected
    assert {a: float(binance.exchange.balance(a).free) for a in expected} == expected
