"""The suite's keys in the environment (its figures: ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from tests.trading.live_helpers import KEY, SECRET


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulators' API key pair for both venues, nothing else of ``ARB_*``."""
    for name in ("BINANCE", "KRAKEN"):
        monkeypatch.setenv(f"ARB_{name}_API_KEY", KEY)
        monkeypatch.setenv(f"ARB_{name}_SECRET", SECRET)
