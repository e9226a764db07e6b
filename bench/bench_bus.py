"""Bus publish cost with 1, 4 and 16 inline subscribers, against same-run baselines.

Baselines: a plain function call per subscriber, bare ``blinker.Signal.send``, and a hand-written
dict-of-lists bus. Each figure is the best of several repeats (ns per publish), printed with
ratios so the result does not depend on how fast this machine is today.
"""

from __future__ import annotations

import time
import typing as t

from blinker import Signal

from arbitrage.bus import Bus
from arbitrage.events import BookUpdate

N = 200_000
REPEATS = 7


class DictBus:
    """The simplest bus one would write by hand: type -> list of handlers."""

    def __init__(self) -> None:
        self.subs: dict[type, list[t.Callable[[t.Any], object]]] = {}

    def subscribe(self, event_type: type, handler: t.Callable[[t.Any], object]) -> None:
        self.subs.setdefault(event_type, []).append(handler)

    def publish(self, event: t.Any) -> None:
        for handler in self.subs.get(type(event), ()):
            handler(event)


def best_ns(variants: dict[str, t.Callable[[], None]]) -> dict[str, float]:
    """Best-of-REPEATS nanoseconds per call for each loop body (run N times), the variants
    interleaved so background noise hits them alike."""
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(REPEATS):
        for name, fn in variants.items():
            start = time.perf_counter_ns()
            fn()
            best[name] = min(best[name], (time.perf_counter_ns() - start) / N)
    return best


def measure(subscribers: int) -> dict[str, float]:
    event = BookUpdate(venue="a", symbol="BTC/USDT", bids=((1.0, 1.0),), asks=((2.0, 1.0),),
                       ts_event=0, ts_init=0)
    sink: list[int] = [0]

    def make_handler() -> t.Callable[[t.Any], None]:
        def handler(e: t.Any) -> None:
            sink[0] += 1
        return handler

    def make_receiver() -> t.Callable[..., None]:
        def receiver(sender: t.Any, **kw: t.Any) -> None:
            sink[0] += 1
        return receiver

    handlers = [make_handler() for _ in range(subscribers)]

    def plain() -> None:
        hs = handlers
        for _ in range(N):
            for h in hs:
                h(event)

    signal = Signal()
    receivers = [make_receiver() for _ in range(subscribers)]
    for r in receivers:
        signal.connect(r, weak=False)

    def blinker_send() -> None:
        send = signal.send
        for _ in range(N):
            send(event, event=event)

    dict_bus = DictBus()
    for h in handlers:
        dict_bus.subscribe(BookUpdate, h)

    def dict_publish() -> None:
        publish = dict_bus.publish
        for _ in range(N):
            publish(event)

    bus = Bus()
    for h in handlers:
        bus.subscribe(BookUpdate, h)

    def bus_publish() -> None:
        publish = bus.publish
        for _ in range(N):
            publish(event)

    def bus_publish_sender() -> None:  # how sources publish books: sender = the venue
        publish = bus.publish
        for _ in range(N):
            publish(event, "a")

    return best_ns({"plain call": plain, "blinker send": blinker_send, "dict bus": dict_publish,
                    "arb bus": bus_publish, "arb bus sender": bus_publish_sender})


def main() -> None:
    print(f"bus publish, ns per event (best of {REPEATS} x {N})")
    print(f"{'subscribers':>11} {'plain call':>11} {'blinker':>9} {'dict bus':>9} {'arb bus':>9}"
          f" {'arb/dict':>9} {'blinker/arb':>12} {'arb/plain':>10} {'sender=venue':>13} {'/dict':>6}")
    for subscribers in (1, 4, 16):
        r = measure(subscribers)
        print(f"{subscribers:>11} {r['plain call']:>11.0f} {r['blinker send']:>9.0f} {r['dict bus']:>9.0f}"
              f" {r['arb bus']:>9.0f} {r['arb bus'] / r['dict bus']:>9.2f}"
              f" {r['blinker send'] / r['arb bus']:>12.1f} {r['arb bus'] / r['plain call']:>10.2f}"
              f" {r['arb bus sender']:>13.0f} {r['arb bus sender'] / r['dict bus']:>6.2f}")
    print("goal: arb/dict <= 1.3 and blinker/arb >= 10")


if __name__ == "__main__":
    main()
