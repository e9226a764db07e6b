"""The request budget: a token bucket that serves orders before market data and honours holds.

Only orderings and lower bounds of time are asserted (a slow machine makes waits longer, never
shorter).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from arbitrage.exchanges.budget import Budgets, RateBudget


def test_a_burst_up_to_capacity_passes_then_requests_are_paced_at_the_rate() -> None:
    async def main() -> list[float]:
        budget = RateBudget(50.0, capacity=2)
        stamps = []
        for _ in range(5):
            await budget.acquire()
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(main())
    assert stamps[4] - stamps[0] >= 3 / 50 - 1e-3  # two from the burst, then one per 20 ms


def test_a_waiting_order_goes_before_data_that_waited_longer() -> None:
    async def main() -> list[str]:
        budget = RateBudget(50.0, capacity=1)
        await budget.acquire("data")
        served: list[str] = []

        async def one(name: str, priority: str) -> None:
            await budget.acquire(priority)  # type: ignore[arg-type]
            served.append(name)

        tasks = [asyncio.ensure_future(one(f"data-{i}", "data")) for i in range(3)]
        await asyncio.sleep(0)
        tasks.append(asyncio.ensure_future(one("order", "order")))
        await asyncio.gather(*tasks)
        assert budget.granted == {"order": 1, "data": 4}
        return served

    assert asyncio.run(main()) == ["order", "data-0", "data-1", "data-2"]


def test_a_hold_stops_everyone_until_it_ends_and_a_cancelled_wait_takes_nothing() -> None:
    async def main() -> float:
        budget = RateBudget(1000.0)
        start = time.monotonic()
        budget.hold(0.1)
        assert budget.held_for > 0.05
        gone = asyncio.ensure_future(budget.acquire("data"))
        await asyncio.sleep(0)
        gone.cancel()
        await budget.acquire("order")
        waited = time.monotonic() - start
        assert budget.granted == {"order": 1, "data": 0} and budget.waiting == 0
        return waited

    assert asyncio.run(main()) >= 0.1


def test_budgets_give_every_caller_the_same_bucket_at_the_configured_rate() -> None:
    budgets = Budgets({"kraken": 0.5})
    assert budgets.for_exchange("binance", 20.0) is budgets.for_exchange("binance", 1.0)
    assert budgets.for_exchange("binance", 1.0).rate_per_s == 20.0
    assert budgets.for_exchange("kraken", 1.0).rate_per_s == 0.5
    with pytest.raises(ValueError):
        RateBudget(0.0)
