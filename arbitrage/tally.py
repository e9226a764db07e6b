"""``Tally``: what a run did, counted from its events; the numbers of the engine's summary.

Every plugin reads it through ``Context.tally`` (the ``RunTally`` service of ``arbitrage.plugin``):
the dashboard's header, the notifier's stop message.
"""

from __future__ import annotations

from collections import defaultdict

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.events import (
    ArbResult,
    BookUpdate,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    PositionUpdate,
)
from arbitrage.pnl import PnlFigures

__all__ = ["Tally"]


class Tally:
    """Counts what the run did; the numbers in the summary (and what storage must agree with).

    PnL per quote currency (``pnl`` realized, ``unrealized``, ``net``) follows ``PnlFigures``.
    """

    def __init__(self, bus: Bus | None = None, store: BookStore | None = None) -> None:
        """:param bus: count what is published there; None = a tally that stays at zero.
        :param store: the run's book store, which counts the books (one subscriber fewer per book).
        """
        self._store = store
        self._books = 0
        self.opportunities = 0
        self.rejected = 0
        self.orders = 0
        self.arbs: dict[str, int] = defaultdict(int)
        self.fees: dict[str, float] = defaultdict(float)
        self.figures = PnlFigures()
        if bus is None:
            return
        if store is None:
            bus.subscribe(BookUpdate, self._book, name="tally")
        bus.subscribe(Opportunity, self._opportunity, name="tally")
        bus.subscribe(OpportunityRejected, self._rejected, name="tally")
        bus.subscribe(OrderSubmitted, self._order, name="tally")
        bus.subscribe(ArbResult, self._arb, name="tally")
        bus.subscribe(PositionUpdate, self.figures.add_position, name="tally")

    @property
    def books(self) -> int:
        """Books published in the run."""
        return self._store.updates if self._store is not None else self._books

    def _book(self, _: BookUpdate) -> None:
        self._books += 1

    def _opportunity(self, _: Opportunity) -> None:
        self.opportunities += 1

    def _rejected(self, _: OpportunityRejected) -> None:
        self.rejected += 1

    def _order(self, _: OrderSubmitted) -> None:
        self.orders += 1

    def _arb(self, result: ArbResult) -> None:
        self.arbs[result.status] += 1
        self.figures.add_result(result)
        self.fees[result.quote] += result.fees

    @property
    def pnl(self) -> dict[str, float]:
        """Realized profit per quote currency (``PnlFigures``)."""
        return self.figures.pnl

    @property
    def unrealized(self) -> dict[str, float]:
        """Unrealized profit of the open positions per quote currency."""
        return self.figures.unrealized

    @property
    def net(self) -> dict[str, float]:
        """Realized plus unrealized profit per quote currency."""
        return self.figures.net
