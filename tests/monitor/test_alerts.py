"""AlertBook: an alert is published once while its condition persists, then once when it recovers."""

from __future__ import annotations

from loguru import logger

from arbitrage.clock import SimClock
from arbitrage.events import Alert
from arbitrage.monitor import AlertBook, Condition


def book() -> tuple[AlertBook, list[Alert], SimClock]:
    seen: list[Alert] = []
    clock = SimClock(1_000)
    return AlertBook(seen.append, clock, logger), seen, clock


def test_fire_publishes_once_while_the_condition_persists() -> None:
    alerts, seen, _ = book()
    assert alerts.fire("feed.stale:alpha", "warning", "alpha: no book for 3 s")
    assert not alerts.fire("feed.stale:alpha", "warning", "alpha: no book for 4 s")
    assert [(a.key, a.level, a.message, a.recovered) for a in seen] == [
        ("feed.stale:alpha", "warning", "alpha: no book for 3 s", False)]
    assert alerts.current["feed.stale:alpha"] == "alpha: no book for 4 s"


def test_clear_publishes_a_recovery_with_the_original_level_once() -> None:
    alerts, seen, clock = book()
    alerts.fire("loop.lag", "error", "lag 300 ms")
    clock.advance_to(5_000)
    assert alerts.clear("loop.lag")
    assert not alerts.clear("loop.lag")
    recovery = seen[-1]
    assert (recovery.key, recovery.level, recovery.recovered) == ("loop.lag", "error", True)
    assert recovery.ts_init == 5_000
    assert recovery.message == "recovered: lag 300 ms"
    assert alerts.active == {}


def test_rising_level_is_published_again_falling_level_is_not() -> None:
    alerts, seen, _ = book()
    alerts.fire("k", "warning", "a")
    assert alerts.fire("k", "error", "b")
    assert not alerts.fire("k", "warning", "c")
    assert [a.level for a in seen] == ["warning", "error"]


def test_sync_clears_keys_it_raised_but_not_keys_fired_directly() -> None:
    alerts, seen, _ = book()
    alerts.fire("kill_switch", "critical", "halted")
    alerts.sync({"a": Condition("warning", "A"), "b": Condition("error", "B")})
    alerts.sync({"b": Condition("error", "B")})
    alerts.sync({})
    assert [(a.key, a.recovered) for a in seen] == [
        ("kill_switch", False), ("a", False), ("b", False), ("a", True), ("b", True)]
    assert set(alerts.active) == {"kill_switch"}
    assert alerts.worst() == "critical"
    assert alerts.fired == {"critical": 1, "warning": 1, "error": 1}
