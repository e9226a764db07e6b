"""Market sources: they publish ``MarketsLoaded``, ``BookUpdate`` and ``FeedStatus``."""

from arbitrage.sources.sim import SimMarket, SimSource

__all__ = ["SimMarket", "SimSource"]
