"""Session-wide hooks: the fault-injection suite's figures (``tests.faults.figures``), gathered
from every pytest-xdist worker (``make test`` runs two), printed as the run's last line and written
to ``arb-faults-summary.json`` in the system's temporary folder."""

from __future__ import annotations

import json
import tempfile
import typing as t
from pathlib import Path

import pytest

from tests.faults.figures import FIGURES, summary

_OUTPUT = "fault_figures"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a worker: hand the figures to the controller (xdist's ``workeroutput``)."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output[_OUTPUT] = dict(FIGURES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: t.Any, error: t.Any) -> None:
    """On the controller: add a finished worker's figures."""
    FIGURES.update(getattr(node, "workeroutput", {}).get(_OUTPUT, {}))


def pytest_terminal_summary(terminalreporter: t.Any, config: pytest.Config) -> None:
    if not FIGURES or hasattr(config, "workeroutput"):
        return
    terminalreporter.write_line("fault-injection suite: " + ", ".join(
        f"{key} {value}" for key, value in summary().items()))
    path = Path(tempfile.gettempdir()) / "arb-faults-summary.json"
    path.write_text(json.dumps(summary(), indent=1) + "\n")
    terminalreporter.write_line(f"fault-injection figures: {path}")
