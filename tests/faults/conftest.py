"""The suite's keys in the environment, and its figures: printed as one line at the end of the
session and written to ``faults-summary.json`` in pytest's base temporary directory."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from tests.faults.harness import FIGURES
from tests.trading.live_helpers import KEY, SECRET

SUMMARY_KEYS = ("scenarios", "orders placed", "duplicates", "residuals", "open positions alerted",
                "data lost")


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulators' API key pair for both venues, nothing else of ``ARB_*``."""
    for name in ("BINANCE", "KRAKEN"):
        monkeypatch.setenv(f"ARB_{name}_API_KEY", KEY)
        monkeypatch.setenv(f"ARB_{name}_SECRET", SECRET)


WRITTEN: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def figures(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[None]:
    """Write the suite's figures as JSON once every scenario ran."""
    yield
    if FIGURES:
        path = tmp_path_factory.getbasetemp() / "faults-summary.json"
        path.write_text(json.dumps(_figures(), indent=1) + "\n")
        WRITTEN.append(path)


def _figures() -> dict[str, int]:
    return {key: FIGURES.get(key, 0) for key in SUMMARY_KEYS}


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    if FIGURES:
        terminalreporter.write_line("fault-injection suite: " + ", ".join(
            f"{key} {value}" for key, value in _figures().items()))
    for path in WRITTEN:
        terminalreporter.write_line(f"fault-injection figures: {path}")
