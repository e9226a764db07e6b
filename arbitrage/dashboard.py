"""The live terminal view of ``arb run``: books, spreads, opportunities, arbs and PnL.

It costs nothing on the hot path: books are read from the strategy's shared view
(``ctx.state["books"]``) a few times a second; only rare events (opportunities, results) are
subscribed to.
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

from arbitrage.events import Alert, ArbResult, MarketsLoaded, Opportunity, OpportunityRejected
from arbitrage.plugin import Context, Plugin


def _money(value: float) -> Text:
    return Text(f"{value:+,.4f}", style="green" if value > 0 else "red" if value < 0 else "")


class Dashboard(Plugin):
    """Rich live view refreshed a few times per second."""

    name = "dashboard"
    kind = "ui"
    description = "Live terminal view of books, spreads, opportunities, arbs and PnL."

    def __init__(self, console: Console | None = None, refresh_hz: float = 4.0) -> None:
        self.console = console or Console(stderr=True)
        self.refresh_hz = refresh_hz
        self.fees: dict[tuple[str, str], float] = {}
        self.opportunities: collections.deque[Opportunity] = collections.deque(maxlen=6)
        self.results: collections.deque[ArbResult] = collections.deque(maxlen=6)
        self.alerts: collections.deque[Alert] = collections.deque(maxlen=4)
        self.rejected = 0
        self.pnl: dict[str, float] = collections.defaultdict(float)
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        ctx.bus.subscribe(MarketsLoaded, self._markets, name=self.name)
        ctx.bus.subscribe(Opportunity, self.opportunities.append, name=self.name)
        ctx.bus.subscribe(ArbResult, self._result, name=self.name)
        ctx.bus.subscribe(Alert, self.alerts.append, name=self.name)
        ctx.bus.subscribe(OpportunityRejected, self._rejected, name=self.name)

    def _markets(self, event: MarketsLoaded) -> None:
        for market in event.markets:
            self.fees[(event.venue, market.symbol)] = market.taker_fee

    def _result(self, result: ArbResult) -> None:
        self.results.append(result)
        self.pnl[result.quote] += result.realized_profit

    def _rejected(self, _: OpportunityRejected) -> None:
        self.rejected += 1

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

    def render(self) -> Group:
        """Build the whole view from current state."""
        return Group(self._header(), self._books(), self._recent())

    def _header(self) -> Text:
        tally = self.ctx.state.get("tally")
        elapsed = time.monotonic() - self._started if self._started else 0.0
        books = getattr(tally, "books", 0)
        rate = books / elapsed if elapsed > 0 else 0.0
        pnl = ", ".join(f"{v:+.4f} {k}" for k, v in self.pnl.items()) or "0"
        halted = self.ctx.state.get("halted")
        line = Text.assemble(
            ("arb ", "bold"), f"run {self.ctx.run_id}  {elapsed:5.0f}s  ",
            f"books {books:,} ({rate:,.0f}/s)  opportunities {getattr(tally, 'opportunities', 0)}  ",
            f"rejected {self.rejected}  arbs {sum(getattr(tally, 'arbs', {}).values())}  ",
            ("PnL ", "bold"), pnl)
        if halted:
            line.append(f"  HALTED: {halted}", style="bold red")
        return line

    def _books(self) -> Table:
        table = Table(title="Books (best bid / ask) and best net spread", expand=False, show_edge=False)
        table.add_column("symbol")
        books: dict[str, dict[str, t.Any]] = self.ctx.state.get("books", {})
        venues = sorted({v for per in books.values() for v in per})
        for venue in venues:
            table.add_column(venue, justify="right")
        table.add_column("net spread bps", justify="right")
        now = self.ctx.clock.time_ns()
        for symbol in sorted(books):
            per = books[symbol]
            cells: list[Text | str] = [symbol]
            for venue in venues:
                book = per.get(venue)
                if book is None or not book.bids or not book.asks:
                    cells.append("-")
                    continue
                age = (now - book.ts_event) / 1e6
                cells.append(Text(f"{book.bids[0][0]:,.2f} / {book.asks[0][0]:,.2f}",
                                  style="dim" if age > 1000 else ""))
            cells.append(self._best_spread(symbol, per))
            table.add_row(*cells)
        return table

    def _best_spread(self, symbol: str, per: dict[str, t.Any]) -> Text:
        best = -1e9
        for buy in per.values():
            for sell in per.values():
                if buy is sell or not buy.asks or not sell.bids:
                    continue
                bf = self.fees.get((buy.venue, symbol), 0.0)
                sf = self.fees.get((sell.venue, symbol), 0.0)
                net = (sell.bids[0][0] * (1 - sf) - buy.asks[0][0] * (1 + bf)) / buy.asks[0][0] * 1e4
                best = max(best, net)
        return Text("-" if best == -1e9 else f"{best:+.1f}", style="green" if best > 0 else "")

    def _recent(self) -> Table:
        table = Table(title="Recent opportunities and arbs", expand=False, show_edge=False)
        for col in ("kind", "id", "route", "amount", "expected", "realized"):
            table.add_column(col)
        results = {r.opportunity_id: r for r in self.results}
        for opp in reversed(self.opportunities):
            route = " → ".join(f"{leg.side} {leg.symbol}@{leg.venue}" for leg in opp.legs)
            result = results.get(opp.id)
            table.add_row("opp", opp.id.rsplit("-", 1)[-1], route, f"{opp.legs[0].amount:g}",
                          _money(opp.profit), _money(result.realized_profit) if result else Text("…"))
        for alert in self.alerts:
            table.add_row("alert", alert.level, alert.message, "", "", "")
        return table
