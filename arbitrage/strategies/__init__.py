"""Strategies: they turn ``BookUpdate`` into ``Opportunity`` events."""

from arbitrage.strategies.cross_exchange import CrossExchangeStrategy

__all__ = ["CrossExchangeStrategy"]
