"""Filled while cancelling, on the emulators with the real ccxt: a leg that rests on a venue without
IOC fills completely while its cancel is on the way; the cancel is answered "unknown order"
(``OrderNotFound``), the read after it finds the fill, and the arbitrage ends filled, done."""

from __future__ import annotations

import asyncio

from arbitrage.events import ArbResult, ArbStateChanged, Fill, OrderUpdate
from tests.emulator.core import Fault
from tests.trading.helpers import cid, leg, opportunity, run
from tests.trading.live_helpers import emulated
from tests.trading.test_live_executor import B, Desk, K, plant, states

CANCEL = "DELETE /api/v3/order"


def test_a_leg_filled_while_its_cancel_was_on_the_way_is_recorded_filled_and_the_arb_is_done():
    async def scenario():
        async with emulated(B) as binance, emulated(K) as kraken:
            plant(binance, kraken)  # Binance asks 100: a buy limited at 99.5 rests
            desk = Desk({B: await binance.venue(ioc=False), K: await kraken.venue()})
            await desk.bus.start()
            desk.mirror(binance, B)
            desk.mirror(kraken, K)
            binance.exchange.inject(Fault("delay", endpoint=CANCEL, delay=0.3))
            with desk.bus.collect(ArbResult, OrderUpdate, Fill, ArbStateChanged) as seen:
                desk.executor.on_opportunity(opportunity("x1", leg(B, "buy", 0.5, 99.5),
                                                         leg(K, "sell", 0.5, 110.0)))
                while not binance.count(CANCEL):  # the cancel is held 0.3 s before it is processed
                    await asyncio.sleep(0.01)
                [resting] = binance.orders_with(cid("x1-L0"))
                binance.exchange.fill_resting(resting.id)  # a seller takes all of it meanwhile
                await desk.executor.join()
            await desk.bus.stop()
            return binance, kraken, seen

    binance, kraken, seen = run(scenario())
    # every order on both venues carries the client id derived from its label, never one of ccxt's
    assert [o.client_order_id for o in binance.exchange.orders.values()] == [cid("x1-L0")]
    assert [o.client_order_id for o in kraken.exchange.orders.values()] == [cid("x1-L1")]
    [order] = binance.orders_with(cid("x1-L0"))
    assert order.status == "closed" and str(order.filled) == "0.5"
    cancels = [r for r in binance.exchange.requests if r.endpoint == CANCEL]
    assert [r.status for r in cancels] == [400]  # "unknown order": it had filled
    updates = [(u.client_order_id, u.status, u.filled) for u in seen if isinstance(u, OrderUpdate)]
    assert (cid("x1-L0"), "filled", 0.5) in updates and len(updates) == 2
    fills = [(f.price, f.amount) for f in seen if isinstance(f, Fill) and f.client_order_id == cid("x1-L0")]
    assert fills == [(99.5, 0.5)]
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert [(lr.label, lr.status, lr.filled) for lr in result.legs] == [("x1-L0", "filled", 0.5),
                                                                       ("x1-L1", "filled", 0.5)]
    assert states(seen) == ["planned", "submitted", "filled", "done"]
