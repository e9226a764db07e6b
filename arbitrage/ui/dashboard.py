"""The live terminal view of ``arb run``: venues, books and spreads, opportunities, arbs, PnL, alerts, halt.

It costs nothing on the hot path: it never subscribes to ``BookUpdate``. A few times a second it
reads the typed services of its context (``arbitrage.plugin``), never another plugin's objects:
the run's book store (``ctx.books``), the engine's counts (``ctx.tally``), the monitor's readings
(``ctx.views.monitor``: feeds, latency, alerts, halt) and the trader's state
(``ctx.views.trading``: open arbitrages, open positions with their marks, halt), each view shown
only when its plugin is loaded. PnL is realized, unrealized (open positions at their marks) and
net, per quote currency, as the engine's tally counts it. Arbitrages still executing, and those
that ended in ``needs_attention``, are listed with their state (``ArbStateChanged``), how long they
have been in it and why.
Only rare events (markets, opportunities, results, states, alerts) are subscribed to, inline, each
a deque append or a dict update.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import typing as t

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from arbitrage.events import (
    Alert,
    ArbResult,
    ArbStateChanged,
    BookUpdate,
    MarketsLoaded,
    Opportunity,
    OpportunityRejected,
)
from arbitrage.plugin import Context, FeedInfo, MonitorReadings, Plugin, TradingState

_LEVEL_STYLE = {"info": "", "warning": "yellow", "error": "red", "critical": "bold red"}
_STATUS_STYLE = {"connected": "green", "stale": "yellow", "reconnecting": "yellow", "error": "red",
                 "stopped": "dim"}
_STATE_STYLE = {"needs_attention": "bold red", "unknown": "red", "hedging": "yellow",
                "partially_filled": "yellow", "failed": "yellow"}
MAX_ARBS_SHOWN = 50
"""Arbitrages the state table keeps (oldest needing attention dropped first beyond)."""
_STAGE_NAMES = {"book_to_opportunity": "book→opp", "opportunity_to_ack": "opp→acked",
                "opportunity_to_result": "opp→result", "collector_to_engine": "collector→us"}


def _money(value: float) -> Text:
    # BTC-quoted profits are small numbers: keep significant digits rather than 4 decimals
    text = f"{value:+,.4f}" if abs(value) >= 1 or value == 0 else f"{value:+.4g}"
    return Text(text, style="green" if value > 0 else "red" if value < 0 else "")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}" if value < 10 else f"{value:,.0f}"


def best_spread(books: t.Mapping[str, BookUpdate], fees: t.Mapping[tuple[str, str], float],
                symbol: str) -> tuple[float, str, str] | None:
    """Best top-of-book route of one symbol net of both taker fees: ``(bps, buy venue, sell venue)``.

    ``books`` maps venue -> book; a venue without both sides is skipped; None with fewer than two.
    """
    best: tuple[float, str, str] | None = None
    for buy in books.values():
        for sell in books.values():
            if buy is sell or not buy.asks or not sell.bids:
                continue
            ask = buy.asks[0][0]
            net = (sell.bids[0][0] * (1 - fees.get((sell.venue, symbol), 0.0))
                   - ask * (1 + fees.get((buy.venue, symbol), 0.0))) / ask * 1e4
            if best is None or net > best[0]:
                best = (net, buy.venue, sell.venue)
    return best


class Dashboard(Plugin):
    """Rich live view refreshed a few times per second."""

    name = "dashboard"
    kind = "ui"
    description = "Live terminal view: venues, books and net spreads, opportunities, arbs, PnL, alerts, halt."

    def __init__(self, console: Console | None = None, refresh_hz: float = 4.0) -> None:
        self.console = console or Console(stderr=True)
        self.refresh_hz = refresh_hz
        self.fees: dict[tuple[str, str], float] = {}
        self.opportunities: collections.deque[Opportunity] = collections.deque(maxlen=6)
        self.results: collections.deque[ArbResult] = collections.deque(maxlen=6)
        self.alerts: collections.deque[Alert] = collections.deque(maxlen=6)
        self.rejected = 0
        self.arb_states: dict[str, ArbStateChanged] = {}
        """Opportunity id -> newest state, of arbitrages executing or needing attention (not ``done``)."""
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        ctx.bus.subscribe(MarketsLoaded, self._markets, name=self.name)
        ctx.bus.subscribe(Opportunity, self.opportunities.append, name=self.name)
        ctx.bus.subscribe(ArbResult, self.results.append, name=self.name)
        ctx.bus.subscribe(Alert, self.alerts.append, name=self.name)
        ctx.bus.subscribe(OpportunityRejected, self._rejected, name=self.name)
        ctx.bus.subscribe(ArbStateChanged, self._state, name=self.name)

    def _markets(self, event: MarketsLoaded) -> None:
        for market in event.markets:
            self.fees[(event.venue, market.symbol)] = market.taker_fee

    def _rejected(self, _: OpportunityRejected) -> None:
        self.rejected += 1

    def _state(self, event: ArbStateChanged) -> None:
        states = self.arb_states
        states.pop(event.opportunity_id, None)  # re-inserted last: the table is in order of change
        if event.state != "done":
            states[event.opportunity_id] = event
        while len(states) > MAX_ARBS_SHOWN:
            oldest = next((k for k, e in states.items() if e.state == "needs_attention"), next(iter(states)))
            del states[oldest]

    async def start(self) -> None:
        self._started = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dashboard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        with Live(self.render(), console=self.console, refresh_per_second=self.refresh_hz,
                  transient=False) as live:
            while True:
                await asyncio.sleep(1.0 / self.refresh_hz)
                live.update(self.render())

    # -- rendering -------------------------------------------------------------------------------

    def render(self) -> Group:
        """Build the whole view from current state."""
        parts: list[t.Any] = [self._header()]
        halted = self._halted()
        if halted:
            parts.append(Text(f" TRADING HALTED: {halted}  (arb resume lifts it) ",
                              style="bold white on red"))
        monitor = self.ctx.views.monitor
        if monitor is not None and monitor.feeds():
            parts.append(self._venues(monitor))
        parts += [self._books(), self._recent()]
        if self.arb_states:
            parts.append(self._arbs())
        trading = self.ctx.views.trading
        if trading is not None and trading.positions:
            parts.append(self._positions(trading))
        if monitor is not None:
            parts.append(self._latency(monitor))
        alerts = self._alerts(monitor)
        if alerts.row_count:
            parts.append(alerts)
        return Group(*parts)

    def _halted(self) -> str:
        trading, monitor = self.ctx.views.trading, self.ctx.views.monitor
        halted = trading.halted if trading is not None else ""
        return halted or (monitor.halted if monitor is not None else "")

    def _header(self) -> Text:
        tally = self.ctx.tally
        monitor, trading = self.ctx.views.monitor, self.ctx.views.trading
        elapsed = time.monotonic() - self._started if self._started else 0.0
        rate = tally.books / elapsed if elapsed > 0 else 0.0
        net, realized, unrealized = tally.net, tally.pnl, tally.unrealized
        pnl = ", ".join(f"{v:+.4f} {k} (realized {realized.get(k, 0.0):+.4f}, unrealized "
                        f"{unrealized.get(k, 0.0):+.4f})" for k, v in sorted(net.items())) or "0"
        line = Text.assemble(
            ("arb ", "bold"), f"run {self.ctx.run_id}  {elapsed:5.0f}s  ",
            f"books {tally.books:,} ({rate:,.0f}/s)  opportunities {tally.opportunities}  ",
            f"rejected {self.rejected}  arbs {sum(tally.arbs.values())}  ",
            ("net PnL ", "bold"), pnl)
        if trading is not None:
            line.append(f"  open {len(trading.open_arbs)}")
        if monitor is not None:
            line.append(f"  loop lag {monitor.loop_lag_ms:.1f} ms")
            if monitor.metrics_url:
                line.append(f"  {monitor.metrics_url}/metrics", style="dim")
        return line

    def _venues(self, monitor: MonitorReadings) -> Table:
        table = Table(title="Venues", expand=False, show_edge=False)
        for column, justify in (("venue", "left"), ("feed", "left"), ("symbols", "right"),
                                ("books/s", "right"), ("oldest ms", "right"), ("latency ms", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        per_venue: dict[str, list[FeedInfo]] = collections.defaultdict(list)
        for feed in monitor.feeds():
            per_venue[feed.venue].append(feed)
        for venue, feeds in sorted(per_venue.items()):
            statuses = {f.status for f in feeds}
            status = next((s for s in ("error", "stale", "reconnecting", "stopped") if s in statuses),
                          "connected" if "connected" in statuses else "-")
            latency = sum(f.latency_ms for f in feeds) / len(feeds)
            table.add_row(venue, Text(status, style=_STATUS_STYLE.get(status, "")), str(len(feeds)),
                          f"{sum(f.rate for f in feeds):,.1f}", _ms(max(f.age_s for f in feeds) * 1e3),
                          _ms(latency))
        return table

    def _books(self) -> Table:
        table = Table(title="Books (best bid / ask) and best spread net of fees", expand=False,
                      show_edge=False)
        table.add_column("symbol")
        books = self.ctx.books.by_symbol
        fees = self.fees
        venues = sorted({v for per in books.values() for v in per})
        for venue in venues:
            table.add_column(venue, justify="right")
        table.add_column("net spread bps", justify="right")
        table.add_column("route")
        now = self.ctx.clock.time_ns()
        for symbol in sorted(books):
            per = books[symbol]
            cells: list[Text | str] = [symbol]
            for venue in venues:
                book = per.get(venue)
                if book is None or not book.bids or not book.asks:
                    cells.append("-")
                    continue
                age_ms = (now - book.ts_init) / 1e6
                cells.append(Text(f"{book.bids[0][0]:,.6g} / {book.asks[0][0]:,.6g}",
                                  style="dim" if age_ms > 1000 else ""))
            best = best_spread(per, fees, symbol)
            if best is None:
                cells += ["-", ""]
            else:
                spread = Text(f"{best[0]:+.1f}", style="green" if best[0] > 0 else "")
                cells += [spread, f"{best[1]}→{best[2]}"]
            table.add_row(*cells)
        return table

    def _recent(self) -> Table:
        table = Table(title="Recent opportunities and arbs", expand=False, show_edge=False)
        for col in ("id", "route", "amount", "expected", "result", "realized", "net"):
            table.add_column(col)
        results = {r.opportunity_id: r for r in self.results}
        for opp in reversed(self.opportunities):
            route = " → ".join(f"{leg.side} {leg.symbol}@{leg.venue}" for leg in opp.legs)
            result = results.get(opp.id)
            table.add_row(opp.id.rsplit("-", 1)[-1], route, f"{opp.legs[0].amount:g}" if opp.legs else "",
                          _money(opp.profit), result.status if result else "…",
                          _money(result.realized_profit) if result else Text("…"),
                          _money(result.net_profit) if result else Text("…"))
        return table

    def _arbs(self) -> Table:
        table = Table(title="Arbitrages executing or needing attention", expand=False, show_edge=False)
        for col in ("id", "state", "for s", "why"):
            table.add_column(col, justify="right" if col == "for s" else "left")
        now = self.ctx.clock.time_ns()
        for e in self.arb_states.values():
            table.add_row(e.opportunity_id, Text(e.state, style=_STATE_STYLE.get(e.state, "")),
                          f"{max(now - e.ts_init, 0) / 1e9:,.1f}", e.reason)
        return table

    def _positions(self, trading: TradingState) -> Table:
        table = Table(title="Open positions (marked: long at best bid, short at best ask)", expand=False,
                      show_edge=False)
        for col in ("venue", "asset", "amount", "cost", "mark", "unrealized"):
            table.add_column(col, justify="left" if col in ("venue", "asset") else "right")
        for p in trading.positions:
            mark = Text(f"{p.mark:,.8g} {p.quote}" + (" (last known)" if p.stale else ""),
                        style="yellow" if p.stale else "")
            table.add_row(p.venue, p.asset, f"{p.amount:+,.8g}", f"{p.cost:,.4f}", mark, _money(p.unrealized))
        return table

    def _latency(self, monitor: MonitorReadings) -> Text:
        parts = [f"{_STAGE_NAMES.get(stage, stage)} p50 {_ms(info.p50_ms)} / p99 {_ms(info.p99_ms)} ms"
                 for stage, info in monitor.latency().items() if info.count]
        return Text("latency: " + ("   ".join(parts) if parts else "no samples yet"), style="dim")

    def _alerts(self, monitor: MonitorReadings | None) -> Table:
        table = Table(title="Alerts", expand=False, show_edge=False)
        for col in ("level", "key", "message"):
            table.add_column(col)
        if monitor is not None:
            for alert in monitor.active_alerts():
                table.add_row(Text(alert.level, style=_LEVEL_STYLE[alert.level]), alert.key, alert.message)
            shown = {a.key for a in monitor.active_alerts()}
            recent = [a for a in reversed(monitor.recent_alerts()) if a.recovered and a.key not in shown][:3]
        else:
            recent = list(reversed(self.alerts))
        for alert in recent:
            label = "ok" if alert.recovered else alert.level
            table.add_row(Text(label, style="green" if alert.recovered else _LEVEL_STYLE[alert.level]),
                          alert.key, alert.message)
        return table
