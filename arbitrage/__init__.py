"""arb: real-time cryptocurrency arbitrage in one process around a typed event bus."""

__version__ = "0.1.0"
