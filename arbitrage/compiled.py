"""Which modules the build compiles with Cython, and whether this process runs them compiled.

The hot paths are ordinary ``.py`` files in Cython's pure-Python mode: the build (``setup.py``)
compiles each module listed in ``MODULES`` next to its source where a C compiler exists, and the
interpreter imports the compiled file in preference to the ``.py``. Without a compiler the same
``.py`` files run as they are: one source, no twin to keep equal.

``ARB_INTERPRETED=1`` in the environment makes this process (and every process it starts) import
the ``.py`` sources even where compiled files exist; ``make test`` runs the suite both ways. A
compiled file that exists but fails to import is an error, never a silent fall-back, and one older
than its source is reported (the source changed since the last build: ``make install`` rebuilds).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import typing as t
from pathlib import Path

MODULES: tuple[str, ...] = (
    "arbitrage.book_check",
    "arbitrage.readers.levels",
    "arbitrage.strategies.cross_check",
    "arbitrage.strategies.triangular.check",
)
"""Modules built from their ``.py`` source by Cython (pure-Python mode)."""

ENV = "ARB_INTERPRETED"
"""Set to 1 to run the listed modules interpreted even where they were compiled."""

_ROOT = Path(__file__).resolve().parent.parent


def source_path(module: str) -> Path:
    """The ``.py`` file of one of ``MODULES``."""
    return _ROOT.joinpath(*module.split(".")).with_suffix(".py")


def interpreted_requested() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Imports the listed modules from their ``.py`` source, ignoring compiled files beside them."""

    def find_spec(self, fullname: str, path: t.Any = None,
                  target: t.Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def activate() -> None:
    """Honour ``ARB_INTERPRETED`` (called once when the package is imported)."""
    if interpreted_requested() and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())


def status() -> dict[str, str]:
    """Per module: ``compiled``, ``interpreted`` or ``stale`` (compiled from an older source).

    Importing is part of the check: a compiled file that cannot be imported raises here.
    """
    out: dict[str, str] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        where = Path(module.__file__ or "")
        if where.suffix == ".py":
            out[name] = "interpreted"
        elif where.stat().st_mtime < source_path(name).stat().st_mtime:
            out[name] = "stale"
        else:
            out[name] = "compiled"
    return out


def describe() -> tuple[str, bool]:
    """One line for the start-up log, and whether it is a warning (some module not compiled)."""
    states = status()
    if not states:
        return "no compiled modules are defined", False
    counts = {state: sorted(n for n, s in states.items() if s == state) for state in set(states.values())}
    if set(counts) == {"compiled"}:
        return f"running compiled: {len(states)} Cython modules", False
    if set(counts) == {"interpreted"}:
        why = f"{ENV} is set" if interpreted_requested() else "not built: no C compiler at install?"
        line = f"running interpreted ({why}): {len(states)} modules as plain Python, slower"
        return line, not interpreted_requested()
    parts = [f"{state}: {', '.join(names)}" for state, names in sorted(counts.items())]
    return "compiled modules are mixed (run `make install` to rebuild): " + "; ".join(parts), True


if __name__ == "__main__":  # the Makefile asks for the sources it must rebuild on
    print(" ".join(str(source_path(m).relative_to(_ROOT)) for m in MODULES))
