"""Run every benchmark script in this folder, one after another (`make bench`).

Arguments are handed to every script (``--quick`` for the short variants, ``--minutes N`` for the
memory run); a script takes the ones it knows and ignores the rest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        failed |= subprocess.call([sys.executable, str(script), *sys.argv[1:]]) != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
