"""The simulated clock: sleepers wake in event time, and ``waking`` says which have yet to run."""

from __future__ import annotations

import asyncio

from arbitrage.clock import SimClock


def test_waking_counts_woken_sleepers_until_they_resume() -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        clock = SimClock(0)
        done: list[str] = []

        async def nap(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            done.append(name)

        tasks = [asyncio.create_task(nap(n, s)) for n, s in (("a", 1.0), ("b", 1.0), ("c", 2.0))]
        await asyncio.sleep(0)  # every task reaches its sleep
        seen = [(clock.waking, list(done))]
        assert clock.advance_to(1_000_000_000) == 2  # a and b are due, c is not
        seen.append((clock.waking, list(done)))
        await asyncio.sleep(0)
        seen.append((clock.waking, list(done)))
        clock.advance_to(5_000_000_000)
        await asyncio.gather(*tasks)
        seen.append((clock.waking, list(done)))
        return seen

    assert asyncio.run(scenario()) == [(0, []), (2, []), (0, ["a", "b"]), (0, ["a", "b", "c"])]


def test_a_zero_sleep_is_waking_until_its_turn() -> None:
    async def scenario() -> list[int]:
        clock = SimClock(0)
        task = asyncio.create_task(clock.sleep(0))
        await asyncio.sleep(0)  # the task is inside its zero sleep
        counts = [clock.waking]
        await task
        return [*counts, clock.waking]

    assert asyncio.run(scenario()) == [1, 0]


def test_a_sleeper_cancelled_before_or_after_waking_leaves_no_count() -> None:
    async def scenario() -> list[int]:
        clock = SimClock(0)
        parked = asyncio.create_task(clock.sleep(1.0))
        woken = asyncio.create_task(clock.sleep(1.0))
        await asyncio.sleep(0)
        parked.cancel()
        await asyncio.gather(parked, return_exceptions=True)
        counts = [clock.waking]
        clock.advance_to(1_000_000_000)  # wakes only the one still sleeping
        counts.append(clock.waking)
        woken.cancel()  # cancelled after it was woken, before it resumed
        await asyncio.gather(woken, return_exceptions=True)
        return [*counts, clock.waking]

    assert asyncio.run(scenario()) == [0, 1, 0]
