"""Builds the compiled hot paths; everything else is in pyproject.toml.

The modules listed in ``arbitrage/compiled.py`` are ordinary ``.py`` files in Cython's pure-Python
mode, compiled here where a C compiler exists. Without one the install still succeeds and the same
files run as plain Python (see docs/dependencies.md).
"""

import runpy

from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = runpy.run_path("arbitrage/compiled.py")["MODULES"]

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
}
"""Off: bounds and negative-index checks on typed memoryviews (the modules index only what they
built); cdivision: C float division (the modules guard their divisors)."""

extensions = [
    Extension(name, [name.replace(".", "/") + ".py"], extra_compile_args=["-O2", "-ffp-contract=off"],
              optional=True)
    for name in MODULES
]
"""``-ffp-contract=off``: no fused multiply-add, so compiled float results equal the interpreted ones."""

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, build_dir="build/cython", quiet=True))
