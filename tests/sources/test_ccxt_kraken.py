"""The ccxt source on the Kraken emulator (websocket v2, the real recording re-encoded), with the
unmodified ccxt.pro; books held against ``tests/emulator/kraken_reference.py``, built from the
recorded v1 frames alone and proven against every checksum Kraken sent (cryptofeed sample data)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arbitrage.exchanges.client import create_exchange
from arbitrage.sources.ccxt_venue import watch_each
from tests.emulator.kraken_feed import load_recording
from tests.emulator.kraken_reference import ReferenceBooks
from tests.emulator.kraken_testing import emulator
from tests.emulator.server import serve
from tests.sources.ccxt_support import WAIT, Watcher, ccxt_settings, run, run_engine_on

pytest.importorskip("ccxt.pro")

V1 = {"XMR/USD": "XMR/USD", "ADA/BTC": "ADA/XBT"}
DEPTH = 10
Top = tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]


def _top(reference: ReferenceBooks, pair: str) -> Top:
    asks, bids = reference.top(pair, DEPTH)
    return (tuple((float(p), float(q)) for p, q in bids), tuple((float(p), float(q)) for p, q in asks))


def _states() -> tuple[int, dict[str, list[Top]]]:
    """The index of the last of the two snapshots in the recording, and every state of each
    book's best 10 levels from there on (the snapshot's, then one per change)."""
    messages = list(ReferenceBooks.messages())
    first = max(next(i for i, m in enumerate(messages) if m[-1] == pair) for pair in V1.values())
    reference = ReferenceBooks()
    for message in messages[:first + 1]:
        reference.apply(message)
    states = {symbol: [_top(reference, pair)] for symbol, pair in V1.items()}
    for message in messages[first + 1:]:
        pair, _ = reference.apply(message)
        for symbol, name in V1.items():
            if name == pair and _top(reference, name) != states[symbol][-1]:
                states[symbol].append(_top(reference, name))
    return first, states


def test_every_published_book_is_a_reference_state_in_order_up_to_the_last(tmp_path: Path) -> None:
    first, states = _states()
    em = emulator()
    frames = load_recording().frames
    for frame in frames[:first + 1]:
        em.feed(frame)
    em.autoplay = ([f for f in frames[first + 1:] if f.symbol in V1], 0.001)

    def at_the_end(w: Watcher) -> bool:
        return all(w.books("kraken", s) and (w.books("kraken", s)[-1].bids, w.books("kraken", s)[-1].asks)
                   == states[s][-1] for s in V1)

    watcher = Watcher(at_the_end)
    summary = run(run_engine_on({"kraken": em}, tmp_path, watcher, symbols=list(V1), depth=DEPTH))
    assert summary["stop_reason"] == "watcher: seen enough"
    for symbol in V1:
        position = 0
        books = watcher.books("kraken", symbol)
        for book in books:
            while states[symbol][position] != (book.bids, book.asks):
                position += 1  # raises IndexError when a book is no reference state, or out of order
        assert position == len(states[symbol]) - 1 and len(books) > 20
    subscribe = [r.params["message"] for r in em.exchange.requests if r.method == "WS<"
                 and '"subscribe"' in r.params["message"]]
    assert len(subscribe) == 1 and '"depth":10' in subscribe[0].replace(" ", "")
    loaded = watcher.markets("kraken")
    assert [m.symbol for m in loaded.markets] == list(V1) and all(m.taker_fee > 0 for m in loaded.markets)
    requests = [r.endpoint for r in em.exchange.requests if r.method == "GET"]
    assert requests == ["GET /0/public/Assets", "GET /0/public/AssetPairs"]


@pytest.mark.parametrize(("depth", "subscribed"), [(12, 25), (2000, 1000)])
def test_a_depth_kraken_does_not_offer_subscribes_the_next_one_up(tmp_path: Path, depth: int,
                                                                  subscribed: int) -> None:
    em = emulator()
    em.exchange.set_book("BTC/USD", [(f"{30000 - i}.0", "1") for i in range(30)],
                         [(f"{30001 + i}.0", "1") for i in range(30)])
    watcher = Watcher(lambda w: bool(w.books()))
    run(run_engine_on({"kraken": em}, tmp_path, watcher, symbols=["BTC/USD"], depth=depth))
    message = next(r.params["message"] for r in em.exchange.requests if r.method == "WS<"
                   and '"subscribe"' in r.params["message"])
    assert f'"depth":{subscribed}' in message.replace(" ", "")
    (book,) = watcher.books()[:1]
    assert len(book.bids) == len(book.asks) == min(depth, 30)


def test_watch_each_multiplexes_one_watch_per_symbol(tmp_path: Path) -> None:
    """The path of exchanges without watch_order_book_for_symbols, on the real ccxt.pro kraken."""
    em = emulator()
    for i, symbol in enumerate(("BTC/USD", "ETH/USDT")):
        em.exchange.set_book(symbol, [(f"{100 + i}.0", "1")], [(f"{101 + i}.0", "2")])

    async def main() -> list[tuple[str, float]]:
        async with serve(em) as base:
            settings = ccxt_settings({"kraken": base}, tmp_path, symbols=["BTC/USD"])
            exchange = create_exchange("kraken", settings, pro=True)
            try:
                seen: list[tuple[str, float]] = []
                books = watch_each(exchange, ["BTC/USD", "ETH/USDT"], 10)
                async for book in books:
                    seen.append((book["symbol"], book["asks"][0][0]))
                    if len(seen) == 2:
                        em.exchange.set_book("ETH/USDT", [("101.0", "1")], [("101.5", "2")])
                    if len(seen) == 3:
                        break
                await books.aclose()
                return seen
            finally:
                await exchange.close()

    seen = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert sorted(seen[:2]) == [("BTC/USD", 101.0), ("ETH/USDT", 102.0)] and seen[2] == ("ETH/USDT", 101.5)
    messages = [r.params["message"] for r in em.exchange.requests if r.method == "WS<"]
    assert sum('"subscribe"' in m for m in messages) == 2


def test_kraken_s_rate_limit_answer_is_backed_off_and_the_markets_load_after(tmp_path: Path) -> None:
    from tests.emulator.core import Fault

    em = emulator()
    em.exchange.set_book("BTC/USD", [("30000.0", "1")], [("30001.0", "1")])
    em.exchange.inject(Fault("status", endpoint="GET /0/public/AssetPairs", status=429))  # HTTP 200, EAPI:...
    watcher = Watcher(lambda w: bool(w.books()))
    run(run_engine_on({"kraken": em}, tmp_path, watcher, symbols=["BTC/USD"], backoff_initial_s=0.2))
    pairs = [r.ts for r in em.exchange.requests if r.endpoint == "GET /0/public/AssetPairs"]
    assert len(pairs) == 2 and pairs[1] - pairs[0] >= 0.1  # at least half the first backoff step
    assert watcher.statuses("kraken")[:2] == [("reconnecting", ""), ("connected", "")]
    assert next(e.detail for e in watcher.events if getattr(e, "status", "") == "reconnecting").startswith(
        "rate limit: ")
