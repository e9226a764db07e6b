"""``MonitorView``: what the dashboard, the health endpoint and other plugins may read of the monitor.

It implements the ``MonitorReadings`` service declared in ``arbitrage.plugin`` (readers depend on
that Protocol, never on this module); the monitor provides it as ``ctx.views.monitor``. Every method
returns a fresh snapshot (lists, dicts, tuples of immutable events), so a reader can keep it
without seeing it change. Call it from the event loop's thread.
"""

from __future__ import annotations

import typing as t

from arbitrage.events import HALT_ALERT_KEY, Alert
from arbitrage.monitor.alerts import LEVELS
from arbitrage.plugin import FeedInfo, LatencyInfo

if t.TYPE_CHECKING:
    from arbitrage.monitor.plugin import Monitor


class MonitorView:
    """Read-only snapshots of one ``Monitor``'s figures."""

    def __init__(self, monitor: Monitor) -> None:
        self._m = monitor

    @property
    def halted(self) -> str:
        """Why trading is halted ('' while it is not)."""
        return self._m.halted

    @property
    def halt_rule(self) -> str:
        """Which kill-switch rule halted trading ('' while it is not halted)."""
        return self._m.halt_rule

    @property
    def metrics_url(self) -> str:
        """``http://host:port`` of the metrics server, '' when it is off."""
        server = self._m.server
        return server.url if server is not None and server.port else ""

    def health(self) -> dict[str, t.Any]:
        """``{"status": "ok" | "degraded" | "halted", "reasons": [...]}``.

        ``halted`` while the kill switch is on; ``degraded`` while an alert of level warning or
        above is active; the reasons are the halt and the active alerts, most severe first.
        """
        m = self._m
        reasons = [f"halted: {m.halted}"] if m.halted else []
        alerts = [a for a in self.active_alerts() if a.key != HALT_ALERT_KEY]
        reasons += [m.alerts.current.get(a.key, a.message) for a in alerts]
        if m.halted:
            status = "halted"
        elif any(LEVELS[a.level] >= LEVELS["warning"] for a in alerts):
            status = "degraded"
        else:
            status = "ok"
        return {"status": status, "reasons": reasons}

    def active_alerts(self) -> list[Alert]:
        """Alerts firing now, most severe first, then oldest first."""
        return sorted(self._m.alerts.active.values(), key=lambda a: (-LEVELS[a.level], a.ts_init, a.key))

    def recent_alerts(self, n: int = 10) -> list[Alert]:
        """The last ``n`` alerts published (recoveries included), oldest first."""
        return list(self._m.alerts.recent)[-n:]

    def feeds(self) -> list[FeedInfo]:
        """Every (venue, symbol) feed seen, sorted by venue then symbol."""
        m = self._m
        now = m.ctx.clock.time_ns()
        out = []
        for (venue, symbol), feed in sorted(m.feeds.items()):
            state = m.venues.get(venue)
            status = state.status if state is not None else ""
            if (venue, symbol) in m.stale:
                status = "stale"
            book = feed.last
            bid = book.bids[0][0] if book.bids else None
            ask = book.asks[0][0] if book.asks else None
            out.append(FeedInfo(venue, symbol, status, feed.age_s(now), feed.rate, feed.latency_s * 1e3,
                                bid, ask))
        return out

    def fees(self) -> dict[tuple[str, str], float]:
        """(venue, symbol) -> taker fee."""
        return dict(self._m.fees)

    def latency(self) -> dict[str, LatencyInfo]:
        """Stage -> recent latency summary (see ``monitor.plugin.STAGES``)."""
        def ms(v: float | None) -> float | None:
            return None if v is None else v * 1e3

        return {stage: LatencyInfo(h.count, ms(h.quantile(0.5)), ms(h.quantile(0.99)))
                for stage, h in self._m.latency.items()}

    @property
    def loop_lag_ms(self) -> float:
        """The latest event-loop lag sample."""
        return self._m.loop_lag_s * 1e3

    def pnl(self) -> dict[str, float]:
        """Realized PnL per quote currency over the run."""
        return dict(self._m.pnl)

    def daily_pnl(self) -> dict[str, float]:
        """Net PnL per quote currency over the current UTC day (the kill switch's figure)."""
        return self._m.kill.daily_net

    def residual(self) -> dict[str, float]:
        """Unhedged position per asset over the run (non-zero ones)."""
        return {asset: v for asset, v in self._m.kill.residual.items() if v}

    def counts(self) -> dict[str, t.Any]:
        """Opportunities, rejections by reason, orders by purpose, arbitrages by status."""
        m = self._m
        return {"opportunities": m.opportunities, "rejected": dict(m.rejected), "orders": dict(m.orders),
                "arbs": dict(m.arbs)}
