"""Market sources: they publish ``MarketsLoaded``, ``BookUpdate`` and ``FeedStatus``."""

from arbitrage.sources.sim import SimMarket, SimSource
from arbitrage.sources.snapshot_csv import Snapshot, load_snapshot

__all__ = ["SimMarket", "SimSource", "Snapshot", "load_snapshot"]
