"""LiveVenue against the loopback emulators with the real ccxt: fills, refusals, and lost answers.

Every figure is worked out by hand from the planted book and the venue's fee rule; every lost
answer is checked against the emulator's own ledger (the orders it accepted, by client order id)
and its request log (what was sent, how often).
"""

from __future__ import annotations

import asyncio
import typing as t

import pytest

from tests.emulator.core import Fault
from tests.trading.helpers import run
from tests.trading.live_helpers import EMULATORS, emulated, request

ORDER = {"kraken": "POST /0/private/AddOrder"}
"""The endpoint that places an order."""
LOOKUP = {"kraken": "POST /0/private/OpenOrders"}
"""The first endpoint a lookup by client order id asks."""
LOOKUPS = {"kraken": {"POST /0/private/OpenOrders", "POST /0/private/ClosedOrders"}}
"""Every endpoint a lookup by client order id may ask."""
FEE = {"kraken": 0.0026}
"""Taker fee of BTC/USDT on the emulator (Kraken's first tier; charged in USDT)."""

VENUES = sorted(EMULATORS)


def plant(live: t.Any, *, usdt: str = "1000", btc: str = "1") -> None:
    exchange = live.exchange
    exchange.set_book("BTC/USDT", [("99.0", "5")], [("100.0", "1"), ("101.0", "1")])
    exchange.set_balance("USDT", usdt)
    exchange.set_balance("BTC", btc)


@pytest.mark.parametrize("name", VENUES)
def test_ioc_buy_fills_with_the_emulators_balances_and_fee_currency(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live)
            venue = await live.venue()
            before = venue.balances()
            result = await venue.submit(request("o1-L0", name, "buy", 1.5, 101.0))
            local = venue.balances()
            await venue.refresh()
            return live, before, result, local, venue.balances()

    live, before, result, local, after = run(scenario())
    fee = FEE[name]
    # 1.0 @ 100 + 0.5 @ 101 = 150.5 USDT; Kraken charges 0.26 % of it in USDT: 0.3913
    assert before == {"USDT": 1000.0, "BTC": 1.0}
    assert (result.status, result.filled, result.notional) == ("filled", 1.5, pytest.approx(150.5))
    assert result.fee == pytest.approx(150.5 * fee) and result.fee_currency == "USDT"
    assert [(f.price, f.amount, f.fee_currency) for f in result.fills] == [
        (100.0, 1.0, "USDT"), (101.0, 0.5, "USDT")]
    assert [f.fee for f in result.fills] == [pytest.approx(0.26), pytest.approx(0.1313)]
    assert after == local == {"USDT": pytest.approx(1000 - 150.5 - 0.3913), "BTC": pytest.approx(2.5)}
    ledger = live.exchange
    assert (float(ledger.balance("USDT").free), float(ledger.balance("BTC").free)) == (
        pytest.approx(849.1087), 2.5)
    [order] = live.orders_with(result.client_order_id)
    assert (order.time_in_force, order.status, result.venue_order_id) == ("IOC", "closed", order.id)


@pytest.mark.parametrize("name", VENUES)
def test_insufficient_funds_is_rejected_and_never_retried(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live, usdt="100")
            venue = await live.venue()
            result = await venue.submit(request("o1-L0", name, "buy", 1.5, 101.0))
            return live, result

    live, result = run(scenario())
    assert result.status == "rejected" and "InsufficientFunds" in result.reason
    assert live.count(ORDER[name]) == 1
    assert not LOOKUPS[name] & set(live.exchange.endpoints())  # refused: nothing to look up
    assert live.exchange.orders == {}


@pytest.mark.parametrize("name", VENUES)
def test_a_lost_answer_after_the_order_filled_is_looked_up_and_never_resubmitted(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live)
            venue = await live.venue()
            live.exchange.inject(Fault("lost", endpoint=ORDER[name]))
            result = await venue.submit(request("o1-L0", name, "buy", 1.5, 101.0))
            return live, result, venue.balances()

    live, result, balances = run(scenario())
    assert (result.status, result.filled) == ("filled", 1.5)
    assert result.notional == pytest.approx(150.5)
    assert balances == {"USDT": pytest.approx(849.1087), "BTC": pytest.approx(2.5)}
    assert len(live.orders_with(result.client_order_id)) == 1
    endpoints = live.exchange.endpoints()
    assert endpoints.count(ORDER[name]) == 1
    assert LOOKUP[name] in endpoints[endpoints.index(ORDER[name]):]


@pytest.mark.parametrize("name", VENUES)
def test_a_timeout_with_the_order_lost_is_not_placed_only_after_the_lookups(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live)
            venue = await live.venue(timeout_ms=300)
            # held past ccxt's 0.3 s timeout, then dropped unprocessed: the venue never saw the order
            live.exchange.inject(Fault("timeout", endpoint=ORDER[name], delay=0.6))
            loop = asyncio.get_running_loop()
            start = loop.time()
            result = await venue.submit(request("o1-L0", name, "buy", 1.5, 101.0))
            return live, result, loop.time() - start, venue.balances()

    live, result, took, balances = run(scenario())
    assert result.status == "rejected" and result.reason.startswith("not placed")
    assert took >= 0.3  # the not-found window (FAST.not_found_after_s) had passed
    endpoints = live.exchange.endpoints()
    assert endpoints.count(ORDER[name]) == 1  # never sent again
    assert sum(1 for e in endpoints if e in LOOKUPS[name]) >= 2
    assert live.orders_with(result.client_order_id) == [] and balances == {"USDT": 1000.0, "BTC": 1.0}


@pytest.mark.parametrize("name", VENUES)
def test_a_rate_limit_answer_on_submit_is_unknown_until_the_lookup_resolves_it(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live)
            venue = await live.venue()
            live.exchange.inject(Fault("status", endpoint=ORDER[name], status=429, retry_after=1))
            result = await venue.submit(request("o1-L0", name, "buy", 1.5, 101.0))
            return live, result

    live, result = run(scenario())
    assert result.status == "rejected" and result.reason.startswith("not placed")
    endpoints = live.exchange.endpoints()
    assert endpoints.count(ORDER[name]) == 1
    assert LOOKUP[name] in endpoints
    assert live.exchange.orders == {}


@pytest.mark.parametrize("name", VENUES)
def test_an_order_whose_lookups_keep_failing_stays_unknown_until_resolve(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live)
            venue = await live.venue()
            live.exchange.inject(Fault("lost", endpoint=ORDER[name]),
                                 *(Fault("status", endpoint=e, status=503, times=100) for e in LOOKUPS[name]))
            order = request("o1-L0", name, "buy", 1.5, 101.0)
            first = await venue.submit(order)
            still = await venue.resolve(order)
            live.exchange.clear_faults()
            resolved = await venue.resolve(order)
            return live, first, still, resolved

    live, first, still, resolved = run(scenario())
    assert first.status == still.status == "unknown"
    assert "lookups failed" in first.reason
    assert (resolved.status, resolved.filled) == ("filled", 1.5)
    assert live.count(ORDER[name]) == 1 and len(live.orders_with(first.client_order_id)) == 1


@pytest.mark.parametrize("name", VENUES)
def test_without_ioc_a_resting_order_is_cancelled_and_read_again(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live)
            no_ioc = await live.venue(ioc=False)  # decided at construction, from ccxt's features
            order = request("o1-L0", name, "buy", 1.5, 99.5)  # below the 100 ask: rests
            result = await no_ioc.submit(order)
            return live, result, no_ioc.balances()

    live, result, balances = run(scenario())
    [order] = live.orders_with(result.client_order_id)
    assert (order.time_in_force, order.status) == ("GTC", "canceled")
    assert (result.status, result.filled) == ("canceled", 0.0)
    assert balances == {"USDT": 1000.0, "BTC": 1.0}
    assert float(live.exchange.balance("USDT").free) == 1000.0  # the reservation was released


@pytest.mark.parametrize("name", VENUES)
def test_an_order_found_open_is_cancelled_and_its_fill_while_cancelling_counted(name: str) -> None:
    async def scenario():
        async with emulated(name) as live:
            plant(live)
            no_ioc = await live.venue(ioc=False)
            live.exchange.inject(Fault("lost", endpoint=ORDER[name]),
                                 Fault("delay", endpoint=LOOKUP[name], delay=0.3))
            order = request("o1-L0", name, "buy", 1.5, 99.5)
            task = asyncio.ensure_future(no_ioc.submit(order))
            while not live.orders_with(order.client_order_id):  # placed; its answer is being lost
                await asyncio.sleep(0.01)
            [resting] = live.orders_with(order.client_order_id)
            live.exchange.fill_resting(resting.id, "0.4")  # a seller arrives before the lookup
            return live, await task

    live, result = run(scenario())
    [order] = live.orders_with(result.client_order_id)
    assert order.status == "canceled" and live.count(ORDER[name]) == 1
    assert (result.status, result.filled, result.average_price) == ("partially_filled", 0.4, 99.5)
