"""Builds the compiled hot paths; everything else is in pyproject.toml.

The extensions are optional: without a C compiler the install still succeeds and the pure-Python
code paths run instead (see docs/dependencies.md).
"""

from setuptools import Extension, setup

SHARED = {"include_dirs": ["arbitrage"], "optional": True}
"""``arbitrage/_book.h`` reads BookUpdate events from C for every extension."""

setup(ext_modules=[
    # the triangular detector's per-update test (reference: arbitrage/strategies/cycle_check.py)
    Extension("arbitrage.strategies._cycle_check", ["arbitrage/strategies/_cycle_check.c"],
              extra_compile_args=["-O2", "-ffp-contract=off"], depends=["arbitrage/_book.h"], **SHARED),
    # the cross-exchange strategy's per-book test (reference: arbitrage/strategies/cross_check.py)
    Extension("arbitrage.strategies._cross_check", ["arbitrage/strategies/_cross_check.c"],
              extra_compile_args=["-O2", "-ffp-contract=off"], depends=["arbitrage/_book.h"], **SHARED),
    # lazily parsed book sides of JSON-lines recordings, and books sent by the decoding process
    Extension("arbitrage.backtest._levels", ["arbitrage/backtest/_levels.c", "arbitrage/backtest/_records.c"],
              extra_compile_args=["-O2"], depends=["arbitrage/_book.h", "arbitrage/backtest/_levels.h"],
              **SHARED),
])
