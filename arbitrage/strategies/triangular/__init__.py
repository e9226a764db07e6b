"""Triangular arbitrage: cycles of markets on one venue whose rates multiply to more than 1 after fees.

``plugin`` is the strategy; ``detector`` finds and sizes the cycles of one venue; ``cycles`` indexes
them by market; ``check`` is the per-update top-of-book test (compiled); ``sizing`` walks depth.
"""

from arbitrage.strategies.triangular.cycles import Cycle, CycleIndex
from arbitrage.strategies.triangular.detector import TriangularDetector
from arbitrage.strategies.triangular.plugin import TriangularStrategy
from arbitrage.strategies.triangular.sizing import Found, PlannedLeg

__all__ = ["Cycle", "CycleIndex", "Found", "PlannedLeg", "TriangularDetector", "TriangularStrategy"]
