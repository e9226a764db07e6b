"""User interfaces that run as plugins: the live terminal dashboard."""

from arbitrage.ui.dashboard import Dashboard, best_spread

__all__ = ["Dashboard", "best_spread"]
