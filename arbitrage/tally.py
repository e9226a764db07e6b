"""``Tally``: what a run did, counted from its events; the numbers of the engine's summary.

Every plugin reads it through ``Context.tally`` (the ``RunTally`` service of ``arbitrage.plugin``):
the dashboard's header, the notifier's stop message.
"""

from __future__ import annotations

from collections import defaultdict

from arbitrage.bus import Bus
from arbitrage.events import ArbResult, BookUpdate, Opportunity, OpportunityRejected, OrderSubmitted

__all__ = ["Tally"]


class Tally:
    """Counts what the run did; the numbers in the summary (and what storage must agree with)."""

    def __init__(self, bus: Bus | None = None) -> None:
        """:param bus: count what is published there; None = a tally that stays at zero."""
        self.books = 0
        self.opportunities = 0
        self.rejected = 0
        self.orders = 0
        self.arbs: dict[str, int] = defaultdict(int)
        self.pnl: dict[str, float] = defaultdict(float)
        self.fees: dict[str, float] = defaultdict(float)
        if bus is None:
            return
        bus.subscribe(BookUpdate, self._book, name="tally")
        bus.subscribe(Opportunity, self._opportunity, name="tally")
        bus.subscribe(OpportunityRejected, self._rejected, name="tally")
        bus.subscribe(OrderSubmitted, self._order, name="tally")
        bus.subscribe(ArbResult, self._arb, name="tally")

    def _book(self, _: BookUpdate) -> None:
        self.books += 1

    def _opportunity(self, _: Opportunity) -> None:
        self.opportunities += 1

    def _rejected(self, _: OpportunityRejected) -> None:
        self.rejected += 1

    def _order(self, _: OrderSubmitted) -> None:
        self.orders += 1

    def _arb(self, result: ArbResult) -> None:
        self.arbs[result.status] += 1
        self.pnl[result.quote] += result.realized_profit
        self.fees[result.quote] += result.fees
