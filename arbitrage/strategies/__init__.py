"""Strategies: they turn ``BookUpdate`` into ``Opportunity`` events."""

from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.strategies.triangular import TriangularStrategy

__all__ = ["CrossExchangeStrategy", "TriangularStrategy"]
