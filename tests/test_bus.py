"""The bus: cached receivers, inline and queued delivery, overflow policies, isolation, threads."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbitrage.bus import Bus
from arbitrage.events import Alert, BookUpdate, Heartbeat


def book(venue: str = "a", symbol: str = "BTC/USDT", n: int = 0) -> BookUpdate:
    return BookUpdate(venue=venue, symbol=symbol, bids=((100.0 - n, 1.0),), asks=((101.0 + n, 1.0),),
                      ts_event=n, ts_init=n)


def venue_symbol(event: BookUpdate) -> tuple[str, str]:
    return (event.venue, event.symbol)


def beat(n: int) -> Heartbeat:
    return Heartbeat(source="t", ts_init=n)


def test_publish_calls_inline_subscribers_in_subscription_order() -> None:
    bus = Bus()
    calls: list[str] = []
    bus.subscribe(Heartbeat, lambda e: calls.append("first"))
    bus.subscribe(Heartbeat, lambda e: calls.append("second"))
    bus.subscribe(Heartbeat, lambda e: calls.append("third"))
    bus.publish(beat(1))
    assert calls == ["first", "second", "third"]


def test_publish_only_reaches_subscribers_of_that_event_type() -> None:
    bus = Bus()
    got: list[object] = []
    bus.subscribe(Alert, got.append)
    bus.publish(beat(1))
    assert got == []


def test_receivers_are_cached_until_a_subscriber_connects_or_disconnects() -> None:
    bus = Bus()
    got: list[int] = []
    bus.subscribe(Heartbeat, lambda e: got.append(1))
    bus.publish(beat(1))
    assert Heartbeat in bus._cache
    cached = bus._cache[Heartbeat]
    bus.publish(beat(2))
    assert bus._cache[Heartbeat] is cached  # resolved once, reused
    sub = bus.subscribe(Heartbeat, lambda e: got.append(2))
    assert Heartbeat not in bus._cache  # connect invalidated it
    bus.publish(beat(3))
    assert got == [1, 1, 1, 2]
    bus.unsubscribe(sub)
    assert Heartbeat not in bus._cache  # disconnect invalidated it
    bus.publish(beat(4))
    assert got == [1, 1, 1, 2, 1]


def test_sender_subscription_receives_only_that_senders_events_plus_any() -> None:
    bus = Bus()
    got: list[str] = []
    bus.subscribe(BookUpdate, lambda e: got.append("any"))
    bus.subscribe(BookUpdate, lambda e: got.append("alpha"), sender="alpha")
    bus.publish(book("beta"), sender="beta")
    bus.publish(book("alpha"), sender="alpha")
    assert got == ["any", "any", "alpha"]


def test_raising_inline_handler_is_counted_and_others_still_run() -> None:
    bus = Bus()
    got: list[int] = []

    def broken(_: object) -> None:
        raise ValueError("boom")

    bad = bus.subscribe(Heartbeat, broken, name="broken")
    bus.subscribe(Heartbeat, lambda e: got.append(e.ts_init))
    bus.publish(beat(1))
    bus.publish(beat(2))
    assert got == [1, 2]
    assert bad.stats.errors == 2
    assert bus.handler_errors == 2


def test_critical_inline_handler_error_propagates_to_the_publisher() -> None:
    bus = Bus()

    def veto(_: object) -> None:
        raise OSError("disk full")

    sub = bus.subscribe(Heartbeat, veto, name="journal", critical=True)
    with pytest.raises(OSError, match="disk full"):
        bus.publish(beat(1))
    assert sub.stats.errors == 1


def test_connected_to_and_collect_disconnect_after_the_block() -> None:
    bus = Bus()
    got: list[object] = []
    with bus.connected_to(Heartbeat, got.append):
        bus.publish(beat(1))
    with bus.collect(Heartbeat) as seen:
        bus.publish(beat(2))
    bus.publish(beat(3))
    assert [e.ts_init for e in got] == [1]
    assert [e.ts_init for e in seen] == [2]
    assert bus.subscriptions() == []


def test_queued_subscriber_handles_events_in_fifo_order_off_the_publish_path() -> None:
    async def scenario() -> list[int]:
        bus = Bus()
        got: list[int] = []

        async def slow(event: Heartbeat) -> None:
            await asyncio.sleep(0)
            got.append(event.ts_init)

        bus.subscribe_queued(Heartbeat, slow, name="slow")
        await bus.start()
        for n in range(50):
            bus.publish(beat(n))
        assert got == []  # nothing ran inside publish
        await bus.drain()
        await bus.stop()
        return got

    assert asyncio.run(scenario()) == list(range(50))


def test_block_policy_never_drops_and_wait_ready_waits_for_room() -> None:
    async def scenario() -> tuple[list[int], int, bool]:
        bus = Bus()
        got: list[int] = []
        release = asyncio.Event()

        async def handler(event: Heartbeat) -> None:
            await release.wait()
            got.append(event.ts_init)

        sub = bus.subscribe_queued(Heartbeat, handler, name="blocky", maxsize=3, policy="block")
        await bus.start()
        for n in range(6):
            bus.publish(beat(n))
        await asyncio.sleep(0)
        waiter = asyncio.ensure_future(bus.wait_ready())
        await asyncio.sleep(0.01)
        blocked = not waiter.done()
        release.set()
        await asyncio.wait_for(waiter, 1)
        await bus.drain()
        await bus.stop()
        return got, sub.stats.overflow, blocked

    got, overflow, blocked = asyncio.run(scenario())
    assert got == list(range(6))
    assert overflow > 0
    assert blocked


def test_drop_oldest_policy_keeps_the_newest_and_counts_drops() -> None:
    async def scenario() -> tuple[list[int], int]:
        bus = Bus()
        got: list[int] = []

        async def handler(event: Heartbeat) -> None:
            got.append(event.ts_init)

        sub = bus.subscribe_queued(Heartbeat, handler, name="lossy", maxsize=4, policy="drop_oldest")
        await bus.start()
        for n in range(10):  # all published before the worker gets to run
            bus.publish(beat(n))
        await bus.drain()
        await bus.stop()
        return got, sub.stats.dropped

    got, dropped = asyncio.run(scenario())
    assert got == [6, 7, 8, 9]
    assert dropped == 6


def test_conflate_policy_delivers_only_the_newest_book_per_key() -> None:
    async def scenario() -> list[tuple[str, int]]:
        bus = Bus()
        got: list[tuple[str, int]] = []

        async def handler(event: BookUpdate) -> None:
            got.append((event.venue, event.ts_event))

        bus.subscribe_queued(BookUpdate, handler, name="ui", policy="conflate", key=venue_symbol)
        await bus.start()
        for n in range(5):
            bus.publish(book("a", n=n))
            bus.publish(book("b", n=n))
        await bus.drain()
        await bus.stop()
        return got

    assert asyncio.run(scenario()) == [("a", 4), ("b", 4)]


def test_batch_subscriber_gets_everything_waiting_in_one_call() -> None:
    async def scenario() -> list[list[int]]:
        bus = Bus()
        batches: list[list[int]] = []

        async def handler(events: list[Heartbeat]) -> None:
            batches.append([e.ts_init for e in events])

        bus.subscribe_queued(Heartbeat, handler, name="writer", batch=True)
        await bus.start()
        for n in range(7):
            bus.publish(beat(n))
        await bus.drain()
        await bus.stop()
        return batches

    assert asyncio.run(scenario()) == [list(range(7))]


def test_one_queue_for_several_types_keeps_their_publish_order() -> None:
    async def scenario() -> tuple[list[str], dict[str, dict[str, int]]]:
        bus = Bus()
        got: list[str] = []

        async def handler(events: list[Heartbeat | Alert]) -> None:
            got.extend(f"{type(e).__name__}{e.ts_init}" for e in events)

        sub = bus.subscribe_queued((Heartbeat, Alert), handler, name="both", batch=True)
        await bus.start()
        for n in range(3):
            bus.publish(beat(n))
            bus.publish(Alert(key="k", level="info", message="m", ts_init=n))
        bus.publish(book())  # not subscribed
        await bus.drain()
        stats = bus.stats()
        bus.unsubscribe(sub)
        bus.publish(beat(9))
        await bus.drain()
        await bus.stop()
        return got, stats

    got, stats = asyncio.run(scenario())
    assert got == ["Heartbeat0", "Alert0", "Heartbeat1", "Alert1", "Heartbeat2", "Alert2"]
    assert stats["both:Heartbeat"]["delivered"] == 6


def test_raising_queued_handler_is_counted_and_the_worker_goes_on() -> None:
    async def scenario() -> tuple[list[int], int]:
        bus = Bus()
        got: list[int] = []

        async def handler(event: Heartbeat) -> None:
            if event.ts_init % 2:
                raise RuntimeError("odd")
            got.append(event.ts_init)

        sub = bus.subscribe_queued(Heartbeat, handler, name="flaky")
        await bus.start()
        for n in range(6):
            bus.publish(beat(n))
        await bus.drain()
        await bus.stop()
        return got, sub.stats.errors

    assert asyncio.run(scenario()) == ([0, 2, 4], 3)


def test_publish_from_other_threads_is_delivered_on_the_loop_thread() -> None:
    async def scenario() -> tuple[list[int], set[int], int]:
        bus = Bus()
        got: list[int] = []
        threads: set[int] = set()

        def handler(event: Heartbeat) -> None:
            threads.add(threading.get_ident())
            got.append(event.ts_init)

        bus.subscribe(Heartbeat, handler)
        await bus.start()

        def produce(base: int) -> None:
            for n in range(200):
                bus.publish_threadsafe(beat(base + n))

        bus.publish_threadsafe(beat(5000))  # on the loop's own thread: delivered at once
        assert got == [5000]
        got.clear()
        workers = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
        for w in workers:
            w.start()
        await asyncio.to_thread(lambda: [w.join() for w in workers])
        for _ in range(100):
            if len(got) == 800:
                break
            await asyncio.sleep(0.01)
        await bus.stop()
        return got, threads, threading.get_ident()

    got, threads, loop_thread = asyncio.run(scenario())
    assert len(got) == 800
    assert threads == {loop_thread}
    for k in range(4):  # each producer's events arrive in the order it published them
        mine = [n for n in got if k * 1000 <= n < (k + 1) * 1000]
        assert mine == sorted(mine)


def test_publish_from_a_thread_before_start_is_an_error() -> None:
    bus = Bus()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            bus.publish_threadsafe(beat(1))
        except RuntimeError as exc:
            errors.append(exc)

    worker = threading.Thread(target=produce)
    worker.start()
    worker.join()
    assert len(errors) == 1


def test_conflate_without_key_is_refused() -> None:
    async def handler(_: object) -> None:
        return None

    with pytest.raises(ValueError, match="key"):
        Bus().subscribe_queued(BookUpdate, handler, name="x", policy="conflate")


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 3)), max_size=60))
def test_conflated_consumer_sees_the_last_event_of_every_key(pairs: list[tuple[str, int]]) -> None:
    async def scenario() -> dict[tuple[str, str], int]:
        bus = Bus()
        seen: dict[tuple[str, str], int] = {}

        async def handler(event: BookUpdate) -> None:
            seen[(event.venue, event.symbol)] = event.ts_event

        bus.subscribe_queued(BookUpdate, handler, name="ui", policy="conflate", key=venue_symbol)
        await bus.start()
        for n, (venue, sym) in enumerate(pairs):
            bus.publish(book(venue, f"S{sym}/USDT", n))
            if n % 7 == 0:
                await asyncio.sleep(0)
        await bus.drain()
        await bus.stop()
        return seen

    expected = {}
    for n, (venue, sym) in enumerate(pairs):
        expected[(venue, f"S{sym}/USDT")] = n
    assert asyncio.run(scenario()) == expected
