"""``PnlFigures``: a run's realized, unrealized and net PnL per quote currency, from its events.

One rule for every reader that counts PnL from the bus (the engine's tally, the monitor's metrics):
realized is every ``ArbResult.realized_profit`` plus what reducing positions realized; unrealized
is the open positions' value at their newest mark less their cost, from the newest
``PositionUpdate`` of each; net is the sum.
"""

from __future__ import annotations

from collections import defaultdict

from arbitrage.events import ArbResult, PositionUpdate

__all__ = ["PnlFigures"]


class PnlFigures:
    """Feed it results and position updates; read ``pnl`` (realized), ``unrealized`` and ``net``."""

    def __init__(self) -> None:
        self._arb_pnl: dict[str, float] = defaultdict(float)
        self._positions: dict[tuple[str, str, str], PositionUpdate] = {}

    def add_result(self, result: ArbResult) -> None:
        self._arb_pnl[result.quote] += result.realized_profit

    def add_position(self, update: PositionUpdate) -> None:
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
