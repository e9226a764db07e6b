"""One request budget per exchange, shared by market data and orders, orders first.

An exchange limits requests per account or IP, not per ccxt instance: the live source (ccxt.pro)
and the live venue (ccxt async) each have their own ccxt throttle, so together they could spend
twice the allowance, and a burst of book resyncs could delay an order. ``RateBudget`` is a token
bucket both draw from: ``rate_per_s`` tokens a second up to ``capacity``; a request waits until its
cost is there. Waiting requests are served by priority (``order`` before ``data``), then in arrival
order, so an order never queues behind market data. ``hold(seconds)`` stops everyone for a while
(an exchange's ``Retry-After`` or IP ban applies to every request from here).

The engine keeps one ``Budgets`` per run (``ctx.budgets``): ``for_exchange(name, rate)`` gives
every plugin the same bucket for the same exchange. Loop contract: call from the event loop's
thread. Time is the monotonic wall clock: budgets are for real exchanges, not replays.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import heapq
import itertools
import time
import typing as t

__all__ = ["PRIORITY", "Budgets", "Priority", "RateBudget"]

Priority = t.Literal["order", "data"]
PRIORITY: dict[str, int] = {"order": 0, "data": 1}


class RateBudget:
    """A token bucket with priority waiters (module doc)."""

    def __init__(self, rate_per_s: float, capacity: float | None = None) -> None:
        """
        :param rate_per_s: tokens added per second (requests per second at cost 1).
        :param capacity: the largest burst; default ``max(1, rate_per_s)`` (one second's worth).
        :raises ValueError: for a rate or capacity that is not positive.
        """
        if rate_per_s <= 0 or (capacity is not None and capacity <= 0):
            raise ValueError("rate_per_s and capacity must be positive")
        self.rate_per_s = rate_per_s
        self.capacity = capacity if capacity is not None else max(1.0, rate_per_s)
        self._clock = time.monotonic  # the event loop's clock on Linux: its timers wake us
        self._tokens = self.capacity
        self._stamp = self._clock()
        self._held_until = 0.0
        self._waiters: list[tuple[int, int, float, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self.granted: dict[str, int] = {"order": 0, "data": 0}
        """Requests let through, by priority."""

    @property
    def held_for(self) -> float:
        """Seconds until a ``hold`` ends (0 when none)."""
        return max(0.0, self._held_until - self._clock())

    @property
    def waiting(self) -> int:
        """Requests waiting now."""
        return sum(1 for *_, fut in self._waiters if not fut.done())

    async def acquire(self, priority: Priority = "data", cost: float = 1.0) -> None:
        """Wait until ``cost`` tokens are free and take them; an ``order`` goes before any ``data``.

        A cost above ``capacity`` is charged as ``capacity`` (it could never be served otherwise).
        Cancelling the wait takes nothing.
        """
        cost = min(cost, self.capacity)
        if not self._waiters and self._take(cost):
            self.granted[priority] += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (PRIORITY[priority], next(self._seq), cost, future))
        self._serve()
        await future  # cancelled: _serve skips it
        self.granted[priority] += 1

    def hold(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` from now (longer holds win), and start the bucket
        empty after it, so the first requests after a ban are paced, not a burst."""
        until = self._clock() + max(0.0, seconds)
        if until > self._held_until:
            self._held_until = until
            self._tokens = 0.0
            self._stamp = until
        self._serve()

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate_per_s)
            self._stamp = now

    def _take(self, cost: float) -> bool:
        now = self._clock()
        if now < self._held_until:
            return False
        self._refill(now)
        if self._tokens + 1e-9 >= cost:
            self._tokens -= cost
            return True
        return False

    def _serve(self) -> None:
        """Grant what the bucket allows now, best priority first; wake later for the rest."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters = self._waiters
        while waiters:
            _, _, cost, future = waiters[0]
            if future.done():  # cancelled while waiting
                heapq.heappop(waiters)
                continue
            if not self._take(cost):
                now = self._clock()
                delay = max(self._held_until - now, (cost - self._tokens) / self.rate_per_s, 0.001)
                self._timer = asyncio.get_running_loop().call_later(delay, self._serve)
                return
            heapq.heappop(waiters)
            future.set_result(None)


class Budgets:
    """The run's budgets, one per exchange (``ctx.budgets``)."""

    def __init__(self, rates: c.Mapping[str, float] | None = None) -> None:
        """:param rates: exchange -> requests per second, overriding what callers propose."""
        self._rates = dict(rates or {})
        self._budgets: dict[str, RateBudget] = {}

    def for_exchange(self, name: str, rate_per_s: float) -> RateBudget:
        """The budget of exchange ``name``; made on first use at the configured rate, else at
        ``rate_per_s`` (e.g. ``1000 / exchange.rateLimit``). Later callers get the same one."""
        budget = self._budgets.get(name)
        if budget is None:
            budget = self._budgets[name] = RateBudget(self._rates.get(name, rate_per_s))
        return budget

    def __contains__(self, name: object) -> bool:
        return name in self._budgets
