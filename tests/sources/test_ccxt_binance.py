"""The ccxt source on the Binance emulator replaying the real recording, with the unmodified ccxt.pro.

Books are held against ``tests/emulator/reference.py``: every state of each recorded book, built
from the recording alone by Binance's documented rules (cryptofeed sample data, Bryant Moscon).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arbitrage.engine import Engine
from arbitrage.events import BookUpdate
from arbitrage.sources.ccxt_feed import CcxtSource
from tests.emulator.binance import BinanceEmulator
from tests.emulator.binance_replay import BinanceReplay
from tests.emulator.reference import reference_books
from tests.emulator.server import serve
from tests.sources.ccxt_support import WAIT, Warnings, Watcher, ccxt_settings, run, run_engine_on

pytest.importorskip("ccxt.pro")

RECORDED = {"NKN/USDT": "NKNUSDT", "BLZ/ETH": "BLZETH", "LRC/BTC": "LRCBTC", "RUNE/EUR": "RUNEEUR"}
DEPTH = 10


def _levels(side: list[tuple[object, object]]) -> tuple[tuple[float, float], ...]:
    return tuple((float(p), float(q)) for p, q in side[:DEPTH])  # type: ignore[arg-type]


def _reached_the_end(references: dict[str, dict[int, object]]) -> Watcher:
    last = {symbol: max(states) for symbol, states in references.items()}
    return Watcher(lambda w: all(any(b.seq == last[s] for b in w.books("binance", s)) for s in last))


def test_every_published_book_equals_the_reference_state_of_its_update_id(tmp_path: Path) -> None:
    references = {symbol: reference_books(market_id) for symbol, market_id in RECORDED.items()}
    watcher = _reached_the_end(references)
    em = BinanceEmulator(replay=BinanceReplay(pace=0.002))
    with Warnings() as warnings:
        summary = run(run_engine_on({"binance": em}, tmp_path, watcher,
                                    symbols=[*RECORDED, "DOGE/EUR"], depth=DEPTH))
    books = watcher.books("binance")
    assert summary["stop_reason"] == "watcher: seen enough"
    for book in books:
        reference = references[book.symbol][book.seq]  # type: ignore[index]
        assert (book.bids, book.asks) == (_levels(reference.bids), _levels(reference.asks)), book.seq
        assert len(book.bids) == len(book.asks) == DEPTH and book.ts_init >= book.ts_event > 0
    assert {b.symbol for b in books} == set(RECORDED) and len(books) > 20
    # markets first, then the venue connected; the symbol Binance lacks is one warning, not an error
    kinds = [type(e).__name__ for e in watcher.events]
    assert kinds.index("MarketsLoaded") < kinds.index("FeedStatus") < kinds.index("BookUpdate")
    assert watcher.statuses("binance")[0] == ("connected", "")
    doge = [m for m in warnings.messages if "DOGE/EUR" in m]
    assert doge == ["binance: DOGE/EUR is not watched there (not listed)"]
    loaded = watcher.markets("binance")
    assert [m.symbol for m in loaded.markets] == list(RECORDED)
    nkn = loaded.markets[0]  # recorded exchangeInfo: tickSize 0.0001, stepSize 1, minNotional 10
    assert (nkn.taker_fee, nkn.price_step, nkn.amount_step, nkn.min_cost) == (0.001, 0.0001, 1.0, 10.0)
    assert summary["plugins"]["ccxt"]["binance"]["missing"] == {"DOGE/EUR": "not listed"}
    # one exchangeInfo, one websocket, one subscription, one snapshot per symbol
    endpoints = [r.endpoint for r in em.exchange.requests]
    assert endpoints.count("GET /api/v3/exchangeInfo") == 1 and endpoints.count("GET /api/v3/depth") == 4
    assert [r.method for r in em.exchange.requests].count("WS") == 1
    assert watcher.statuses("binance")[-1] == ("stopped", "")


def _age(path: Path, seconds: float) -> None:
    """Make the cache file say it was fetched ``seconds`` earlier (the age is read from inside it)."""
    data = json.loads(path.read_text())
    data["fetched_at"] -= seconds
    path.write_text(json.dumps(data))


def _first_book() -> Watcher:
    return Watcher(lambda w: bool(w.books()))


def test_a_restart_reads_the_markets_cache_until_it_is_too_old(tmp_path: Path) -> None:
    em = BinanceEmulator(replay=BinanceReplay())
    counts: list[int] = []

    async def three_starts() -> None:
        async with serve(em) as base:  # one base URL for all three runs
            for attempt in ("fetched", "cached", "too old"):
                if attempt == "too old":
                    (path,) = (tmp_path / "markets").glob("binance-*.json")
                    _age(path, 3601)
                watcher = _first_book()
                settings = ccxt_settings({"binance": base}, tmp_path, symbols=["NKN/USDT"],
                                         markets_max_age_s=3600)
                await Engine(settings, plugins=[CcxtSource(), watcher]).run(duration=WAIT)
                assert watcher.books() and watcher.markets("binance").markets[0].symbol == "NKN/USDT"
                counts.append([r.endpoint for r in em.exchange.requests].count("GET /api/v3/exchangeInfo"))

    run(three_starts())
    assert counts == [1, 1, 2]


def test_another_base_url_never_reads_a_cache_made_for_another(tmp_path: Path) -> None:
    ems = [BinanceEmulator(replay=BinanceReplay()), BinanceEmulator(replay=BinanceReplay())]
    for em in ems:  # two servers: two ports, two base URLs
        run(run_engine_on({"binance": em}, tmp_path, _first_book(), symbols=["NKN/USDT"]))
    assert [em.exchange.requests[0].endpoint for em in ems] == ["GET /api/v3/exchangeInfo"] * 2
    assert len(list((tmp_path / "markets").glob("binance-*.json"))) == 2


def test_books_carry_binance_update_ids_and_exchange_time(tmp_path: Path) -> None:
    watcher = Watcher(lambda w: len(w.books()) >= 5)
    run(run_engine_on({"binance": BinanceEmulator(replay=BinanceReplay())}, tmp_path, watcher,
                      symbols=["NKN/USDT"]))
    books: list[BookUpdate] = watcher.books()
    seqs = [b.seq for b in books]
    assert seqs == sorted(seqs) and all(s > 0 for s in seqs)
