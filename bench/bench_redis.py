"""The Redis bridge against a real local redis-server, each figure next to a same-run baseline.

1. Mirror throughput: events/s the ``redis`` plugin gets into Redis (published on the bus, encoded,
   pipelined: one ``PUBLISH`` and one ``XADD`` per event) vs raw redis-py sending the same commands
   with the JSON encoded beforehand, in pipelines of the same size (goal >= 70 %).
2. Hot path (``redis_hot.py``): what ``publish`` costs the publisher with a real engine's
   subscribers (book store, tally, cross-exchange strategy, paper trader, storage, monitor), bridge
   off vs on (default events) vs on mirroring every book (goal <= 10 % more): (a) instructions per
   event counted by callgrind inside the publishing loop only, for books with trading events, books
   only, trading events only; (b) CPU ns per event, the three variants interleaved, 7 repeats,
   median and spread; (c) whole simulated runs (books/s through strategy and trader).
3. Collector-to-engine latency p50/p99: a collector process (``arb run --role collector``, three
   simulated venues at 20 books/s per symbol) feeding an engine's ``redis_feed`` in this process,
   vs the raw XADD -> blocked XREAD round trip of redis-py on the same server.

Without redis-server the script says so and exits 0 (``make bench`` goes on); without valgrind
only (a) is skipped. ``--quick``: one workload counted, 3 wall-clock repeats.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import msgspec

from arbitrage.bridge.feed import RedisFeed
from arbitrage.bridge.mirror import RedisBridge
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.engine import Engine
from arbitrage.events import BookUpdate, Event, Fill, encode_json
from arbitrage.plugin import Context, Plugin
from arbitrage.settings import Settings
from arbitrage.sources.sim import SimSource
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.trading.plugin import Trader

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redis_hot

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
HOT_REPEATS = 7
"""Wall-clock hot-path repeats: the figure moves by +-10 % between runs on a shared 2-core machine
(the instruction counts do not)."""
N_EVENTS = 20_000


def settings(url: str, tmp: str, **redis: t.Any) -> Settings:
    return msgspec.convert({"log": {"file": ""}, "monitor": {"halt_file": ""},
                            "storage": {"path": f"{tmp}/b.db"}, "redis": {"url": url, **redis}}, Settings)


def start_server(tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
                            stdout=subprocess.DEVNULL)
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def fills(n: int) -> list[Fill]:
    return [Fill(client_order_id=f"r-{i}-L0", opportunity_id=f"r-{i}", venue="alpha", symbol="BTC/USDT",
                 side="buy", price=60000.0 + i * 0.01, amount=0.01, fee=0.6, fee_currency="USDT",
                 ts_event=i, ts_init=i) for i in range(n)]


def books(n: int, levels: int = 20) -> list[BookUpdate]:
    return [BookUpdate(venue="alpha", symbol="BTC/USDT",
                       bids=tuple((60000.0 - j - i * 1e-3, 0.3) for j in range(levels)),
                       asks=tuple((60001.0 + j + i * 1e-3, 0.3) for j in range(levels)), ts_event=i,
                       ts_init=i)
            for i in range(n)]


# -- 1. throughput ---------------------------------------------------------------------------------

async def mirrored_rate(url: str, tmp: str, events: list[Event]) -> float:
    import redis.asyncio as aioredis

    cfg = settings(url, tmp, books=True, streams=["BookUpdate"], maxlen=N_EVENTS,
                   trading_buffer=2 * N_EVENTS, market_buffer=2 * N_EVENTS)
    bus = Bus()
    ctx = Context(bus=bus, settings=cfg, clock=Clock(), run_id="bench")
    mirror = RedisBridge()
    mirror.setup(ctx)
    await bus.start()
    await mirror.start()
    start = time.perf_counter()
    for event in events:
        bus.publish(event)
    while mirror.written < len(events):
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    await mirror.stop()
    await bus.stop()
    client = aioredis.from_url(url)
    await client.flushall()
    await client.aclose()
    return len(events) / elapsed


async def raw_rate(url: str, events: list[Event], batch: int = 500) -> float:
    """The same commands per event, JSON encoded beforehand, pipelined ``batch`` commands at a time."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    payloads = [(type(e).__name__, encode_json(e)) for e in events]
    start = time.perf_counter()
    for i in range(0, len(payloads), batch // 2):
        pipe = client.pipeline(transaction=False)
        for seq, (name, payload) in enumerate(payloads[i:i + batch // 2], i):
            pipe.execute_command("XADD", f"arb:stream:{name}", "MAXLEN", "~", N_EVENTS, "*", "type", name,
                                 "node", "n", "run", "r", "seq", seq, "event", payload)
            pipe.execute_command("PUBLISH", f"arb:{name}", payload)
        await pipe.execute()
    elapsed = time.perf_counter() - start
    await client.flushall()
    await client.aclose()
    return len(events) / elapsed


def throughput(url: str, tmp: str) -> None:
    print(f"\n1. mirror throughput, events/s (best of {REPEATS} x {N_EVENTS}; PUBLISH + XADD per event)")
    print(f"{'event':>22} {'raw redis-py':>13} {'arb mirror':>11} {'mirror/raw':>11}")
    for label, events in (("Fill", fills(N_EVENTS)), ("BookUpdate, 20 levels", books(N_EVENTS))):
        raw = mirror = 0.0
        for _ in range(REPEATS):  # interleaved, so background load hits both alike
            raw = max(raw, asyncio.run(raw_rate(url, events)))
            mirror = max(mirror, asyncio.run(mirrored_rate(url, tmp, events)))
        print(f"{label:>22} {raw:>13,.0f} {mirror:>11,.0f} {mirror / raw:>10.0%}")
    print("goal: mirror/raw >= 70 %")


# -- 2. hot path -----------------------------------------------------------------------------------

WORKLOADS = (("books + trading (1 in 11)", redis_hot.TRADING_EVERY), ("books only", 0), ("trading only", 1))
CG_WARMUP, CG_EVENTS = 1_100, 4_400


def instructions(mode: str, every: int, url: str, tmp: str) -> float:
    """Instructions per published event, counted by callgrind inside the measured burst only."""
    out = Path(tempfile.mkdtemp(dir=tmp))
    subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=ffi_call", "--dump-after=ffi_call",
                    f"--callgrind-out-file={out}/cg.%p", sys.executable, str(ROOT / "bench" / "redis_hot.py"),
                    mode, str(CG_WARMUP), str(CG_EVENTS), url, str(out / "b.db"), str(every)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONHASHSEED": "0"})
    parts = {p.suffix: int(next(line.split()[1] for line in p.read_text().splitlines()
                                if line.startswith("summary:")))
             for p in out.glob("cg.*")}
    rest = [v for k, v in parts.items() if k not in (".1", ".2")]
    if len(parts) != 3 or not parts.get(".2") or rest != [0]:  # ffi_call entered elsewhere?
        raise RuntimeError(f"unexpected callgrind dumps {parts}: only the two bursts may be counted")
    shutil.rmtree(out)
    return parts[".2"] / CG_EVENTS


def counted(url: str, tmp: str, quick: bool) -> None:
    if shutil.which("valgrind") is None:
        print("\n2a. instruction counts: valgrind is not installed, skipped (apt-get install valgrind)")
        return
    print(f"\n2a. hot path, instructions per published event (callgrind, {CG_EVENTS:,} events after"
          f" {CG_WARMUP:,} of warm-up; a real engine's subscribers; deterministic to ~0.4 %)")
    print(f"{'workload':>26} {'no bridge':>10} {'bridge, default':>16} {'ratio':>7}"
          f" {'bridge + books':>15} {'ratio':>7}")
    for label, every in WORKLOADS[:1] if quick else WORKLOADS:
        off = instructions("off", every, url, tmp)
        on = instructions("on", every, url, tmp)
        books = instructions("books", every, url, tmp) if every != 1 else float("nan")
        cells = f"{books:>15,.0f} {books / off:>7.3f}" if every != 1 else f"{'(= default)':>15} {'':>7}"
        print(f"{label:>26} {off:>10,.0f} {on:>16,.0f} {on / off:>7.3f} {cells}")
    print("goal: ratio <= 1.10")


def wall(url: str, tmp: str, repeats: int) -> None:
    ns: dict[str, list[float]] = {m: [] for m in redis_hot.MODES}
    for r in range(repeats):  # interleaved: off, on, books, off, on, books, ...
        for mode in redis_hot.MODES:
            ns[mode].append(redis_hot.wall(mode, url, f"{tmp}/w{r}{mode}.db"))
    print(f"\n2b. hot path, CPU ns per published event (books + trading 1 in 11; {repeats} interleaved"
          f" repeats, each the median of 5 bursts of 11,000; median [min .. max])")
    for mode, label in (("off", "no bridge"), ("on", "bridge, default events"), ("books", "bridge + books")):
        values = ns[mode]
        line = f"{label:>24} {statistics.median(values):>7,.0f} [{min(values):,.0f} .. {max(values):,.0f}]"
        if mode != "off":
            ratios = [a / b for a, b in zip(values, ns["off"], strict=True)]
            line += (f"   ratio to the same repeat's no-bridge run {statistics.median(ratios):.3f}"
                     f" [{min(ratios):.3f} .. {max(ratios):.3f}]")
        print(line)


def sim_rate(url: str, tmp: str, mode: str) -> float:
    cfg = settings(url, tmp, books=mode == "books")
    plugins: list[Plugin] = [SimSource(realtime=False, max_events=N_EVENTS), CrossExchangeStrategy(),
                             Trader()]
    if mode != "off":
        plugins.append(RedisBridge())
    engine = Engine(cfg, plugins=plugins)
    start = time.perf_counter()
    asyncio.run(engine.run(duration=120))
    return N_EVENTS / (time.perf_counter() - start)


def hot_path(url: str, tmp: str, quick: bool) -> None:
    counted(url, tmp, quick)
    wall(url, tmp, 3 if quick else HOT_REPEATS)
    rates = {"off": 0.0, "on": 0.0, "books": 0.0}
    for _ in range(REPEATS):
        for key in rates:
            rates[key] = max(rates[key], sim_rate(url, tmp, key))
    print(f"\n2c. whole simulated run, books/s through strategy and trader"
          f" (best of {REPEATS} x {N_EVENTS:,}):"
          f" no bridge {rates['off']:,.0f}; bridge, default events {rates['on']:,.0f}"
          f" ({rates['on'] / rates['off']:.0%}); mirroring every book (encoded and sent by the same"
          f" process) {rates['books']:,.0f} ({rates['books'] / rates['off']:.0%})")


# -- 3. latency ------------------------------------------------------------------------------------

async def raw_latency(url: str, n: int = 2000) -> list[float]:
    import redis.asyncio as aioredis

    writer, reader = aioredis.from_url(url), aioredis.from_url(url)
    out: list[float] = []
    await writer.delete("lat")
    last: t.Any = "0-0"  # not "$": an entry added before the read is blocked is still read
    payload = encode_json(books(1)[0])
    for _ in range(n):
        read = asyncio.ensure_future(reader.xread({"lat": last}, block=1000, count=1))
        await asyncio.sleep(0)
        await asyncio.sleep(0.0005)  # the read is blocked in Redis now
        sent = time.time_ns()
        await writer.xadd("lat", {"event": payload})
        reply = await read
        out.append((time.time_ns() - sent) / 1e6)
        entries = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
        last = entries[-1][0]
    await writer.flushall()
    await writer.aclose()
    await reader.aclose()
    return out


class Lags(Plugin):
    name = "lags"
    kind = "monitor"

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        self.ms: list[float] = []
        ctx.bus.subscribe(BookUpdate, self.on_book)

    def on_book(self, book: BookUpdate) -> None:
        if book.origin is not msgspec.UNSET:
            self.ms.append((book.ts_init - book.origin.ts_init) / 1e6)


def bridge_latency(url: str, tmp: str, seconds: float = 6.0) -> list[float]:
    lags = Lags()
    engine = Engine(settings(url, tmp, role="engine", discover_s=0.05), plugins=[RedisFeed(), lags])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARB_LOG__FILE": ""}

    async def run() -> None:
        running = asyncio.ensure_future(engine.run(duration=seconds + 4))
        await asyncio.sleep(1.0)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "arbitrage", "run", "--role", "collector", "--redis", url, "--duration",
            str(seconds), "--no-ui", "--json", cwd=tmp, env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()
        await running

    asyncio.run(run())
    return lags.ms


def quantiles(ms: list[float]) -> tuple[float, float]:
    cut = statistics.quantiles(ms, n=100)
    return cut[49], cut[98]


def latency(url: str, tmp: str) -> None:
    raw = quantiles(asyncio.run(raw_latency(url)))
    lags = bridge_latency(url, tmp)
    ours = quantiles(lags[len(lags) // 10:])  # the first second warms up the collector
    print(f"\n3. collector-to-engine latency, ms ({len(lags):,} books; raw: 2,000 XADD -> blocked XREAD)")
    print(f"{'':>10} {'raw redis-py':>13} {'collector->engine':>18} {'ratio':>7}")
    for label, r, o in (("p50", raw[0], ours[0]), ("p99", raw[1], ours[1])):
        print(f"{label:>10} {r:>13.3f} {o:>18.3f} {o / r:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one workload counted, 3 wall-clock repeats")
    args, _ = parser.parse_known_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed: skipped (apt-get install redis-server)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(tmp)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            print(f"Redis bridge benchmarks (redis-server on {url})")
            throughput(url, tmp)
            hot_path(url, tmp, args.quick)
            latency(url, tmp)
        finally:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
