"""``arb --help`` wall time (goal < 0.5 s), median of several runs, next to ``python -c pass``.

Both are fresh interpreter processes, so the baseline is what any Python command costs on this host
and the ratio is what arb's imports add; the goal is on the absolute time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.5


def wall(args: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``args`` (one untimed warm-up first: the disk cache)."""
    subprocess.run(args, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="5 runs")
    args, _ = parser.parse_known_args(argv)
    runs = 5 if args.quick else args.runs
    baseline = statistics.median(wall([sys.executable, "-c", "pass"], runs))
    script = Path(sys.executable).with_name("arb")  # the console script an operator runs
    command = [str(script)] if script.exists() else [sys.executable, "-m", "arbitrage"]
    arb = wall([*command, "--help"], runs)
    median = statistics.median(arb)
    print(f"arb --help, median of {runs} runs: {median:.3f} s (min {min(arb):.3f}, max {max(arb):.3f}); "
          f"python -c pass {baseline:.3f} s; ratio {median / baseline:.1f}x; "
          f"goal < {GOAL_S} s: {'met' if median < GOAL_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
