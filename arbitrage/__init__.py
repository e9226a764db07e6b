"""arb: real-time cryptocurrency arbitrage in one process around a typed event bus."""

from arbitrage import compiled

compiled.activate()

__version__ = "0.1.0"
