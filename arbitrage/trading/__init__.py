"""Trading: risk checks, venues (paper today, live later) behind one interface, and the executor."""

from arbitrage.trading.executor import Executor
from arbitrage.trading.paper import PaperVenue
from arbitrage.trading.plugin import Trader, TraderView
from arbitrage.trading.risk import Refusal, RiskGate
from arbitrage.trading.venue import (
    OrderRequest,
    OrderResult,
    Venue,
    VenueFill,
    balance_deltas,
    ledger,
)

__all__ = [
    "Executor",
    "OrderRequest",
    "OrderResult",
    "PaperVenue",
    "Refusal",
    "RiskGate",
    "Trader",
    "TraderView",
    "Venue",
    "VenueFill",
    "balance_deltas",
    "ledger",
]
