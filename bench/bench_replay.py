"""Replay throughput: a recording of >= 1,000,000 simulated books, backtested end to end, against
decoding the same file alone.

The recording is generated once from the simulator (default settings, seed 7: 3 venues, 20-level
books) and cached in ``bench/out/`` (git-ignored). Every measurement runs in a fresh subprocess,
so its peak RSS is its own. Figures:

* decode only -- read + decode + validate every line into ``BookUpdate`` events (the baseline),
  as a replay does it: a recording of 32 MB or more is decoded by a second process
  (``arbitrage/readers/parallel.py``), whose CPU time is reported separately;
* replay stages -- the replay source on the engine with: nothing subscribed (bus + clock), the
  strategy, the strategy and the trader (paper venues), and end to end (strategy + trader +
  SQLite storage = what ``arb backtest`` runs);
* peak RSS of the end-to-end run on the whole file and on its first 10 %: streaming means memory
  does not grow with the file.

Usage: ``python bench/bench_replay.py [--books N] [--quick] [--repeat R]`` (``--quick``: decode and
end to end only; each figure is the fastest of ``R`` interleaved runs, default 2).
Goal (issue 5): >= 200,000 updates/s end to end and >= 40 % of decode-only speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
START_NS = 1_700_000_000_000_000_000
STAGES = {
    "bus": [],
    "strategy": ["cross_exchange"],
    "trader": ["cross_exchange", "trader"],
    "e2e": ["cross_exchange", "trader", "storage"],
}


def recording(books: int) -> Path:
    """The cached recording of ``books`` simulated books (generated on first use)."""
    from arbitrage.backtest.recording import RecordingWriter
    from arbitrage.settings import Settings
    from arbitrage.sources.sim import SimMarket

    path = OUT / f"replay_{books}.jsonl"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"generating {path} ({books:,} books, once)...", flush=True)
    settings = Settings()
    market = SimMarket(settings.sim, settings.run.seed)
    partial = path.with_suffix(".partial")
    with RecordingWriter(partial) as writer:
        writer.write_many(market.markets_loaded(START_NS))
        left = books
        while left:
            n = min(left, 50_000)
            writer.write_many(list(market.events(n, START_NS)))
            left -= n
    partial.rename(path)
    return path


def prefix(path: Path, books: int) -> Path:
    """The first ``books`` books of a recording (markets lines included), cached."""
    out = OUT / f"{path.stem}_first_{books}.jsonl"
    if not out.exists():
        with path.open("rb") as src, out.open("wb") as dst:
            written = 0
            for line in src:
                dst.write(line)
                written += b'"BookUpdate"' in line
                if written >= books:
                    break
    return out


def compressed(path: Path) -> Path:
    """A zstd copy of a recording (level 3, as ``arb record`` writes), cached."""
    import zstandard

    out = path.with_name(path.name + ".zst")
    if not out.exists():
        with path.open("rb") as src, out.open("wb") as dst:
            zstandard.ZstdCompressor(level=3).copy_stream(src, dst)
    return out


# -- measurements (each in its own process) ----------------------------------------------------------


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the decoding process of a large recording)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _decode(path: Path) -> dict[str, float]:
    from arbitrage.readers.formats import open_reader

    start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    n = 0
    for batch in open_reader(path).batches():
        n += len(batch)
    return {"events": n, "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu,
            "cpu_decoder": _children_cpu() - children}


def _replay(path: Path, stage: str) -> dict[str, float]:
    import asyncio

    import msgspec
    from loguru import logger

    from arbitrage.clock import SimClock
    from arbitrage.engine import Engine
    from arbitrage.plugin import load_plugin
    from arbitrage.settings import Settings
    from arbitrage.sources.replay import ReplaySource

    logger.remove()  # measure the pipeline, not log output
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings()
        settings = msgspec.structs.replace(
            base, run=msgspec.structs.replace(base.run, source="replay"),
            storage=msgspec.structs.replace(base.storage, path=str(Path(tmp) / "bench.db")))
        source = ReplaySource([path])
        engine = Engine(settings, clock=SimClock(0), run_id="bench",
                        plugins=[source, *(load_plugin(name)() for name in STAGES[stage])])
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        summary = asyncio.run(engine.run(duration=0))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"events": summary["events_processed"], "wall": wall, "cpu": cpu,
            "cpu_decoder": _children_cpu() - children, "opportunities": summary["opportunities"],
            "arbs": summary["arbs_executed"], "orders": summary["orders"]}


def peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` when available: ``ru_maxrss`` survives
    ``exec`` on Linux, so a child would report its parent's peak if that was higher."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(kind: str, path: Path) -> dict[str, float]:
    out = _decode(path) if kind == "decode" else _replay(path, kind)
    out["rss_mb"] = peak_rss_mb()
    return out


def measure_once(kind: str, path: Path) -> dict[str, float]:
    """Run one measurement in a fresh interpreter and return its figures."""
    done = subprocess.run([sys.executable, __file__, "--measure", kind, str(path)], capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def best_of(kinds: list[str], path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Each measurement ``repeat`` times, interleaved; the fastest (wall) run of each is kept."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for kind in kinds:
            r = measure_once(kind, path)
            if kind not in best or r["wall"] < best[kind]["wall"]:
                best[kind] = r
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest counts")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()  # run_all hands every script the same arguments
    if args.measure:
        print(json.dumps(_measure(args.measure[0], Path(args.measure[1]))))
        return
    path = recording(args.books)
    size_mb = path.stat().st_size / 1e6
    print(f"replay throughput: {args.books:,} simulated books (3 venues, 20 levels a side), "
          f"{size_mb:,.0f} MB of JSON lines, {os.cpu_count()} CPUs")
    stages = ["e2e"] if args.quick else ["bus", "strategy", "trader", "e2e"]
    labels = {"bus": "replay -> bus (no subscriber)", "strategy": "replay -> bus -> strategy",
              "trader": "... -> strategy -> paper venues", "e2e": "end to end (+ SQLite storage)"}
    results = best_of(["decode", *stages], path, args.repeat)
    decode = results["decode"]
    rows = [("decode only (baseline)", decode), *((labels[stage], results[stage]) for stage in stages)]
    print(f"{'stage':>36} {'updates/s':>11} {'CPU µs/update':>14} {'+ decoder':>10} {'vs decode':>10} "
          f"{'peak RSS MB':>12}")
    for label, r in rows:
        rate = r["events"] / r["wall"]
        vs = rate / (decode["events"] / decode["wall"])
        print(f"{label:>36} {rate:>11,.0f} {r['cpu'] / r['events'] * 1e6:>14.2f} "
              f"{r['cpu_decoder'] / r['events'] * 1e6:>10.2f} {vs:>10.2f} {r['rss_mb']:>12.0f}")
    print("(CPU: the replaying process; '+ decoder': the process that decodes a recording of 32 MB or more)")
    e2e = results["e2e"]
    print(f"end to end: {e2e['opportunities']:,} opportunities, {e2e['arbs']:,} arbs, "
          f"{e2e['orders']:,} orders")
    if not args.quick:
        small = prefix(path, args.books // 10)
        small_e2e = measure_once("e2e", small)
        print(f"peak RSS end to end: {small_e2e['rss_mb']:.0f} MB on {args.books // 10:,} books, "
              f"{e2e['rss_mb']:.0f} MB on {args.books:,} (streaming: flat)")
        zst = compressed(path)
        zst_decode = best_of(["decode"], zst, args.repeat)["decode"]
        zst_mb = zst.stat().st_size / 1e6
        print(f"zstd copy: {zst_mb:,.0f} MB ({size_mb / zst_mb:.1f}x smaller), decode only "
              f"{zst_decode['events'] / zst_decode['wall']:,.0f} updates/s")
    goal = e2e["events"] / e2e["wall"]
    print(f"goal >= 200,000 updates/s end to end: {goal:,.0f} ({'met' if goal >= 200_000 else 'not met'}); "
          f">= 40 % of decode-only: {goal / (decode['events'] / decode['wall']):.0%}")


if __name__ == "__main__":
    main()
