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

__all__ = ["Tally"]


class Tally:
    """Counts what the run did; the numbers in the summary (and what storage must agree with).

    PnL per quote currency: ``pnl`` (realized) is the sum of every ``ArbResult.realized_profit``
    plus what reducing positions realized; ``unrealized`` is the open positions' value at their
    newest mark less their cost, from the newest ``PositionUpdate`` of each; ``net`` is the sum.
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
        self._arb_pnl: dict[str, float] = defaultdict(float)
        self._positions: dict[tuple[str, str, str], PositionUpdate] = {}
        if bus is None:
            return
        if store is None:
            bus.subscribe(BookUpdate, self._book, name="tally")
        bus.subscribe(Opportunity, self._opportunity, name="tally")
        bus.subscribe(OpportunityRejected, self._rejected, name="tally")
        bus.subscribe(OrderSubmitted, self._order, name="tally")
        bus.subscribe(ArbResult, self._arb, name="tally")
        bus.subscribe(PositionUpdate, self._position, name="tally")

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
        self._arb_pnl[result.quote] += result.realized_profit
        self.fees[result.quote] += result.fees

    def _position(self, update: PositionUpdate) -> None:
        p = update.position
        self._positions[(p.venue, p.asset, p.quote)] = update

    @property
    def pnl(self) -> dict[str, float]:
        """Realized profit per quote currency."""
        out = dict(self._arb_pnl)
        for _, update in sorted(self._positions.items()):  # the order storage's totals add them in
            if update.realized:
                quote = update.position.quote
                out[quote] = out.get(quote, 0.0) + update.realized
        return out

    @property
    def unrealized(self) -> dict[str, float]:
        """Unrealized profit of the open positions per quote currency."""
        out: dict[str, float] = {}
        for _, update in sorted(self._positions.items()):
            p = update.position
            if p.amount:
                out[p.quote] = out.get(p.quote, 0.0) + p.unrealized
        return out

    @property
    def net(self) -> dict[str, float]:
        """Realized plus unrealized profit per quote currency."""
        out = self.pnl
        for quote, value in self.unrealized.items():
            out[quote] = out.get(quote, 0.0) + value
        return out
