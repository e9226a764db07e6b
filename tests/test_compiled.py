"""The compiled hot paths: built from their .py sources, in use, and switchable to interpreted."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arbitrage import compiled

ROOT = Path(__file__).resolve().parents[1]


def test_every_compiled_module_is_a_py_source_and_no_c_is_committed() -> None:
    for name in compiled.MODULES:
        assert compiled.source_path(name).is_file(), name
    tracked = subprocess.run(["git", "ls-files", "arbitrage"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode == 0:  # a git checkout (a source distribution has no history to ask)
        assert [f for f in tracked.stdout.split() if f.endswith((".c", ".h", ".pyx", ".pxd"))] == []


@pytest.mark.skipif(compiled.interpreted_requested(), reason="this run is the interpreted one")
def test_the_compiled_modules_are_the_ones_in_use() -> None:
    """``make test`` runs on a machine with a compiler: every listed module must be compiled and fresh."""
    assert compiled.status() == dict.fromkeys(compiled.MODULES, "compiled")


def _status_in_child(env: dict[str, str]) -> dict[str, str]:
    code = "import json; from arbitrage import compiled; print(json.dumps(compiled.status()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_arb_interpreted_imports_every_module_from_its_source() -> None:
    env = {**os.environ, compiled.ENV: "1"}
    assert _status_in_child(env) == dict.fromkeys(compiled.MODULES, "interpreted")
    for name in compiled.MODULES:  # and it runs: the interpreted file is the reference
        assert importlib.import_module(name) is not None


def test_the_start_up_line_says_how_the_hot_paths_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "status", lambda: {"a.b": "compiled", "a.c": "compiled"})
    assert compiled.describe() == ("running compiled: 2 Cython modules", False)
    monkeypatch.setattr(compiled, "status", lambda: {"a.b": "interpreted"})
    monkeypatch.delenv(compiled.ENV, raising=False)
    line, warn = compiled.describe()
    assert line.startswith("running interpreted (not built") and warn
    monkeypatch.setenv(compiled.ENV, "1")
    assert compiled.describe() == ("running interpreted (ARB_INTERPRETED is set): 1 modules as plain Python, "
                                   "slower", False)
    monkeypatch.setattr(compiled, "status", lambda: {"a.b": "compiled", "a.c": "stale"})
    line, warn = compiled.describe()
    assert "mixed" in line and "stale: a.c" in line and warn
