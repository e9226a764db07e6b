"""The fault-injection suite's figures, counted by ``harness`` in whichever process runs the
scenarios; ``tests/conftest.py`` gathers them (from every pytest-xdist worker), prints them as one
line at the end of the session and writes ``faults-summary.json``."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()
"""What the suite saw, over every scenario: scenarios, orders placed, duplicates, residuals, data lost."""

SUMMARY_KEYS = ("scenarios", "orders placed", "duplicates", "residuals", "open positions alerted",
                "data lost")


def summary() -> dict[str, int]:
    """The figures in their documented order (0 for what the suite never counted)."""
    return {key: FIGURES.get(key, 0) for key in SUMMARY_KEYS}
