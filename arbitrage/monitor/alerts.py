"""Alert persistence: publish an ``Alert`` when a condition starts, once, and a recovery when it ends.

A condition is identified by a stable key (``feed.stale:alpha``, ``loop.lag``). ``AlertBook.fire``
publishes an ``Alert`` the first time a key is raised; while the condition persists nothing is
repeated, unless its level rises (warning -> error), which is published as a new alert.
``AlertBook.clear`` publishes the same key with ``recovered=True`` and the original level, so a
consumer filtering by level sees both ends. ``AlertBook.sync`` does both for rules evaluated
periodically: every key of the previous evaluation missing from this one is cleared.
"""

from __future__ import annotations

import collections
import collections.abc as c
import typing as t

from arbitrage.clock import Clock
from arbitrage.events import Alert

Level = t.Literal["info", "warning", "error", "critical"]

LEVELS: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}
"""Severity order of alert levels."""


class Condition(t.NamedTuple):
    """A rule's finding: how bad and what to say."""

    level: Level
    message: str


class AlertBook:
    """Active alerts by key, and the events that announce them starting and ending.

    Not thread-safe: use it from the event loop's thread.

    :param publish: called with each ``Alert`` to announce (normally ``bus.publish``).
    :param log: a loguru logger; every fire and recovery is logged (warning and above as such).
    """

    def __init__(self, publish: c.Callable[[Alert], None], clock: Clock, log: t.Any) -> None:
        self._publish = publish
        self._clock = clock
        self._log = log
        self.active: dict[str, Alert] = {}
        """Alerts that fired and have not recovered, by key."""
        self.current: dict[str, str] = {}
        """The latest message of each active condition (the alert keeps its first message)."""
        self.recent: collections.deque[Alert] = collections.deque(maxlen=50)
        """The last alerts published, recoveries included, oldest first."""
        self.fired: collections.Counter[str] = collections.Counter()
        """Alerts published (recoveries not counted), by level."""
        self._synced: set[str] = set()

    def fire(self, key: str, level: Level, message: str) -> bool:
        """Raise condition ``key``; publish an ``Alert`` unless it is already active at this level or above.

        :returns: True if an alert was published.
        """
        self.current[key] = message
        active = self.active.get(key)
        if active is not None and LEVELS[level] <= LEVELS[active.level]:
            return False
        alert = Alert(key=key, level=level, message=message, ts_init=self._clock.time_ns())
        self.active[key] = alert
        self.fired[level] += 1
        self._announce(alert)
        return True

    def clear(self, key: str, message: str = "") -> bool:
        """End condition ``key``; publish its recovery if it was active.

        :returns: True if a recovery was published.
        """
        self._synced.discard(key)
        self.current.pop(key, None)
        active = self.active.pop(key, None)
        if active is None:
            return False
        alert = Alert(key=key, level=active.level, message=f"recovered: {message or active.message}",
                      recovered=True, ts_init=self._clock.time_ns())
        self._announce(alert)
        return True

    def sync(self, conditions: c.Mapping[str, Condition]) -> None:
        """Make the periodically evaluated alerts match ``conditions`` (key -> finding).

        Fires each condition (a persisting one publishes nothing) and clears every key that a
        previous ``sync`` raised and ``conditions`` no longer holds. Keys raised with ``fire``
        directly are left alone.
        """
        for key, (level, message) in conditions.items():
            self.fire(key, level, message)
        for key in sorted(self._synced - conditions.keys()):
            self.clear(key)
        self._synced = set(conditions)

    def worst(self) -> str:
        """The highest level among active alerts, or '' when none is active."""
        return max((a.level for a in self.active.values()), key=LEVELS.__getitem__, default="")

    def _announce(self, alert: Alert) -> None:
        self.recent.append(alert)
        log = self._log.bind(alert=alert.key)
        if alert.recovered:
            log.info("alert [{}] {}", alert.key, alert.message)
        elif LEVELS[alert.level] >= LEVELS["error"]:
            log.error("alert [{}] {}: {}", alert.key, alert.level, alert.message)
        elif alert.level == "warning":
            log.warning("alert [{}]: {}", alert.key, alert.message)
        else:
            log.info("alert [{}]: {}", alert.key, alert.message)
        self._publish(alert)
