"""Which plugins a process loads for ``redis.role`` (``arb run --role``), and where its books come from.

* no role, ``redis.url`` set: everything as usual plus the ``redis`` mirror;
* ``collector``: the market source and the ``redis`` plugin only (plus ``recorder`` and
  ``dashboard`` when asked for, and ``monitor`` when ``--metrics-port`` serves it); no strategy;
* ``engine``: the ``redis_feed`` source instead of a market source, everything else as usual, and
  the ``redis`` mirror for the trading events.

Light on purpose: the CLI imports it before anything heavy (no redis-py here).
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from arbitrage.settings import Settings

__all__ = ["KEEP_IN_COLLECTOR", "role_run"]

KEEP_IN_COLLECTOR = ("recorder", "dashboard")
"""Plugins a collector keeps from ``run.plugins``: what it writes and shows, nothing that trades."""


def role_run(settings: Settings, plugins: list[str]) -> dict[str, t.Any]:
    """The ``run`` settings for ``settings.redis``: ``plugins`` (given: the run's, with recorder and
    dashboard already decided) and, for a role, ``source`` / ``strategy``."""
    cfg = settings.redis
    if not cfg.url:
        return {"plugins": plugins}
    if cfg.role == "collector":
        keep = [p for p in plugins if p in KEEP_IN_COLLECTOR]
        if settings.monitor.metrics_port:
            keep.append("monitor")
        return {"plugins": ["redis", *keep], "strategy": ""}
    out: dict[str, t.Any] = {"plugins": plugins if "redis" in plugins else [*plugins, "redis"]}
    if cfg.role == "engine":
        out["source"] = "redis_feed"
    return out
