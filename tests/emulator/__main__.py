"""``python -m tests.emulator VENUE [--port 0] [--scenario NAME] ...``: one emulator in this process.

Prints the base URL (``http://127.0.0.1:PORT``) as the first line of stdout, then serves until
SIGTERM or SIGINT. Each venue module named in ``VENUES`` defines ``add_arguments(parser)`` (its
own options, scenarios among them) and ``create(args) -> Emulator``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys

from tests.emulator.server import serve

VENUES = {"binance": "tests.emulator.binance", "kraken": "tests.emulator.kraken"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    sub = parser.add_subparsers(dest="venue", required=True)
    for venue, module_name in VENUES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a venue not written yet on this branch
        venue_parser = sub.add_parser(venue, help=(module.__doc__ or "").splitlines()[0])
        venue_parser.add_argument("--host", default="127.0.0.1")
        venue_parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
        module.add_arguments(venue_parser)
        venue_parser.set_defaults(module=module)
    return parser


async def _main(args: argparse.Namespace) -> None:
    emulator = args.module.create(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(emulator, args.host, args.port) as base_url:
        print(base_url, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
