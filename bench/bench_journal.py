"""Cost of the write-ahead order journal per order: the synced commit against the unsynced one.

A realtime run commits each submitted order with ``PRAGMA synchronous = FULL`` (``Writer``
``sync_journal=True``: the WAL is fsynced before ``publish(OrderSubmitted)`` returns); before, the
commit was ``NORMAL`` (no fsync). Both variants insert the same rows through the same
``Writer.write_order_submitted`` into their own database in one folder on the disk given
(``--dir``, default: a temporary folder in the current directory, not ``/tmp``, which may be
memory), in rounds that alternate the two so background load hits them alike. Printed: median,
p90 and p99 microseconds per order, and the synced/unsynced ratio of the medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from arbitrage.events import OrderSubmitted
from arbitrage.storage.writer import Writer

ROUNDS = 20
PER_ROUND = 50


def order(i: int) -> OrderSubmitted:
    return OrderSubmitted(client_order_id=f"arb{i:015d}", opportunity_id=f"run-{i // 2}", venue="binance",
                          symbol="BTC/USDT", side="buy" if i % 2 else "sell", amount=0.01, price=100.0 + i,
                          label=f"run-{i // 2}-L{i % 2}", ts_init=i)


def measure(folder: Path, rounds: int, per_round: int) -> dict[str, list[float]]:
    writers = {"synced (FULL)": Writer(folder / "synced.db", "bench", sync_journal=True),
               "unsynced (NORMAL)": Writer(folder / "unsynced.db", "bench", sync_journal=False)}
    samples: dict[str, list[float]] = {name: [] for name in writers}
    try:
        n = 0
        for _ in range(rounds):
            for name, writer in writers.items():
                for _ in range(per_round):
                    event = order(n)
                    n += 1
                    start = time.perf_counter_ns()
                    writer.write_order_submitted(event)
                    samples[name].append((time.perf_counter_ns() - start) / 1e3)
    finally:
        for writer in writers.values():
            writer.close()
    return samples


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to measure")
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 20")
    args, _ = parser.parse_known_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-journal-", dir=args.dir or Path.cwd()))
    try:
        rounds = 5 if args.quick else ROUNDS
        samples = measure(folder, rounds, PER_ROUND)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"order journal insert + commit, us per order ({rounds} x {PER_ROUND} per variant, interleaved, "
          f"in {folder.parent})")
    print(f"{'variant':>18} {'median':>9} {'p90':>9} {'p99':>9}")
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(values)
        print(f"{name:>18} {medians[name]:>9.1f} {quantile(values, 0.9):>9.1f} "
              f"{quantile(values, 0.99):>9.1f}")
    synced, unsynced = medians.values()
    print(f"synced / unsynced (medians): {synced / unsynced:.1f}x, +{synced - unsynced:.0f} us per order")


if __name__ == "__main__":
    main()
