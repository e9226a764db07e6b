"""Resident memory of ``arb run --source ccxt`` on 3 venues x 10 symbols (goal <= 200 MB, flat).

Three flood emulators (``flood.py``, other processes; Binance, Binance.US on the Binance protocol,
Kraken) move each of their 10 books 10 times a second. ``arb run`` (the CLI, paper trading,
storage, monitor) watches them all for ``--minutes``; its RSS is sampled every minute and the slope
of the samples after the first minute is given in MB a minute. Baseline in the same run, side by
side: one plain ccxt.pro process watching the same 30 books.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ccxt_bench import REPO, ccxt_client, flood

GOAL_MB = 200.0
RATE = "10"
SYMBOLS = {
    "binance": ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT", "DOGE/USDT", "TRX/USDT",
                "NKN/USDT", "BLZ/ETH", "LRC/BTC"],
    "kraken": ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT", "DOGE/USDT", "BTC/USD",
               "XRP/USD", "XMR/USD", "ADA/BTC"],
}
SYMBOLS["binanceus"] = SYMBOLS["binance"]
FLOODS = {"binance": "binance", "binanceus": "binance", "kraken": "kraken"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def slope(samples: list[float]) -> float:
    """Least-squares MB per minute of samples taken a minute apart."""
    n = len(samples)
    if n < 2:
        return float("nan")
    mean_x, mean_y = (n - 1) / 2, sum(samples) / n
    covariance = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(samples))
    return covariance / sum((i - mean_x) ** 2 for i in range(n))


async def baseline_child(urls: dict[str, str]) -> None:
    """The baseline process: ccxt.pro alone, a watch loop per book, until killed."""
    clients = {name: await ccxt_client(name, url) for name, url in urls.items()}
    for client in clients.values():
        await client.load_markets()

    async def watch(client, symbol: str) -> None:
        while True:
            await client.watch_order_book(symbol)

    await asyncio.gather(*(watch(c, s) for n, c in clients.items() for s in SYMBOLS[n]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="1 minute")
    parser.add_argument("--baseline-child", nargs="*", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.baseline_child is not None:
        asyncio.run(baseline_child(dict(item.split("=", 1) for item in args.baseline_child)))
        return 0
    minutes = 1 if args.quick else args.minutes
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "ARB_CCXT__ENABLE_RATE_LIMIT": "false", "ARB_LOG__FILE": '""',
           "ARB_CCXT__MARKETS_CACHE": '""', "ARB_MONITOR__HALT_FILE": '""'}
    with flood("binance", "--symbols", ",".join(SYMBOLS["binance"]), "--rate", RATE) as b1, \
            flood("binance", "--symbols", ",".join(SYMBOLS["binanceus"]), "--rate", RATE) as b2, \
            flood("kraken", "--symbols", ",".join(SYMBOLS["kraken"]), "--rate", RATE) as k1, \
            flood("binance", "--symbols", ",".join(SYMBOLS["binance"]), "--rate", RATE) as c1, \
            flood("binance", "--symbols", ",".join(SYMBOLS["binanceus"]), "--rate", RATE) as c2, \
            flood("kraken", "--symbols", ",".join(SYMBOLS["kraken"]), "--rate", RATE) as c3:
        arb_urls = {"binance": b1, "binanceus": b2, "kraken": k1}
        base_urls = {"binance": c1, "binanceus": c2, "kraken": c3}
        symbols = sorted({s for v in SYMBOLS.values() for s in v})
        cmd = [sys.executable, "-m", "arbitrage", "run", "--source", "ccxt",
               "--exchanges", ",".join(arb_urls), "--symbols", ",".join(symbols),
               *[f"--exchange-url={n}={u}" for n, u in arb_urls.items()],
               "--duration", str(minutes * 60 + 30), "--no-ui", "--json", "--db", str(tmp / "arb.db")]
        arb = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp,
                               env=env)
        plain = subprocess.Popen([sys.executable, __file__, "--baseline-child",
                                  *[f"{n}={u}" for n, u in base_urls.items()]], cwd=REPO)
        samples: list[tuple[float, float]] = []
        try:
            time.sleep(10)  # both started and subscribed
            for minute in range(minutes + 1):
                samples.append((rss_mb(arb.pid), rss_mb(plain.pid)))
                arb_mb, plain_mb = samples[-1]
                print(f"  minute {minute}: arb {arb_mb:.1f} MB, ccxt.pro alone {plain_mb:.1f} MB", flush=True)
                if minute < minutes:
                    time.sleep(60)
        finally:
            plain.terminate()
            plain.wait()
            out, err = arb.communicate()
    if arb.returncode != 0:
        print(err[-2000:])
        return 1
    feeds = json.loads(out)["plugins"]["ccxt"]
    print("  arb's feeds: " + "; ".join(f"{name} {feed['status']}, {len(feed['symbols'])} symbols, "
                                         f"{feed['books']:,} books" for name, feed in sorted(feeds.items())))
    last_arb, last_plain = samples[-1]
    arb_slope = slope([s[0] for s in samples[1:]] if len(samples) > 2 else [s[0] for s in samples])
    plain_slope = slope([s[1] for s in samples[1:]] if len(samples) > 2 else [s[1] for s in samples])
    print(f"RSS after {minutes} min, 3 venues x 10 symbols at {RATE} changes/s a book: "
          f"arb {last_arb:.1f} MB "
          f"(slope {arb_slope:+.2f} MB/min), ccxt.pro alone {last_plain:.1f} MB "
          f"(slope {plain_slope:+.2f} MB/min); "
          f"ratio {last_arb / last_plain:.2f}; goal <= {GOAL_MB:.0f} MB: "
          f"{'met' if last_arb <= GOAL_MB else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
