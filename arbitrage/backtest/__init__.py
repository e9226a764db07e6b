"""Backtesting: recordings, replay on a simulated clock, deterministic results, reports, parameter search.

Import names from their modules (``arbitrage.backtest.runner.run_backtest``); this package keeps
its ``__init__`` empty of imports so that importing one of them stays cheap.
"""

__all__ = ["analysis", "optimize", "readers", "recorder", "recording", "report", "runner"]
