"""Strategies fed malformed books directly (a source that skipped ``check_book``) neither crash nor
find an opportunity in them: every leg of every opportunity they emit was sized on a book side
that passes the check (asks for a buy, bids for a sell), of a book that is not crossed.

Timestamp faults (a duplicated exchange time, one older than the newest book of the venue and
symbol, one a day ahead) are the sources' to stop: the book store keeps the latest book it is
given, even an older one, and a far-future book looks fresh to every staleness check. Fed through
the gate every live source applies (``gated``), no opportunity stands on such a book and each one
is counted under its reason."""

from __future__ import annotations

import asyncio
import math
import typing as t
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbitrage.book import check_book, is_crossed
from arbitrage.clock import SimClock
from arbitrage.engine import Engine
from arbitrage.events import BookUpdate, Market, MarketsLoaded, Opportunity
from arbitrage.plugin import Plugin, load_plugin
from arbitrage.sources.gate import BookGate
from tests.backtest._data import settings as backtest_settings

FAIR = {"BTC/USDT": 60000.0, "ETH/USDT": 3000.0, "ETH/BTC": 0.05}
VENUES = ("A", "B")
T0 = 1_700_000_000_000_000_000
BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1.0, 0.0, -0.0]

Side = tuple[tuple[float, float], ...]


Record = tuple[str, str, Side, Side, int, str | None]
"""(venue, symbol, bids, asks, ts_event, why a live source's gate rejects it or None)."""
HARMS = {"number": "level", "order": "unsorted", "empty": "empty", "crossed": None, "none": None}


def receive_time(i: int) -> int:
    """When the ``i``-th book of a stream is published (and received)."""
    return T0 + (i + 1) * 10_000_000


@st.composite
def book_stream(draw: st.DrawFn) -> list[Record]:
    """Books in publishing order: around fair prices, some dislocated by 2 % (which pays every fee),
    some broken (a bad number, levels out of order, empty, crossed), some with a timestamp fault: the
    same exchange time as the newest book of that venue and symbol (a duplicate: passes), older than
    it (out of order), or a day ahead of the receive time (far future)."""
    out: list[Record] = []
    newest: dict[tuple[str, str], int] = {}
    for i in range(draw(st.integers(10, 40))):
        venue, symbol = draw(st.sampled_from(VENUES)), draw(st.sampled_from(sorted(FAIR)))
        mid = FAIR[symbol] * draw(st.sampled_from([1.0, 1.0, 1.0, 0.98, 1.02]))
        bids = [[mid * (1 - 0.0002 * (i + 1)), 1.0] for i in range(3)]
        asks = [[mid * (1 + 0.0002 * (i + 1)), 1.0] for i in range(3)]
        harm = draw(st.sampled_from(["none", "none", "number", "order", "empty", "crossed"]))
        side = bids if draw(st.booleans()) else asks
        if harm == "number":
            side[draw(st.integers(0, 2))][draw(st.integers(0, 1))] = draw(st.sampled_from(BAD_NUMBERS))
        elif harm == "order":
            side[0], side[2] = side[2], side[0]
        elif harm == "empty":
            bids, asks = [], []
        elif harm == "crossed":
            bids = [[mid * 1.01, 1.0]]
        key = (venue, symbol)
        when = draw(st.sampled_from(["now", "now", "now", "duplicate", "older", "future"]))
        ts = receive_time(i) - 1_000_000
        if when == "duplicate" and key in newest:
            ts = newest[key]
        elif when == "older" and key in newest:
            ts = newest[key] - 1_000_000
        elif when == "future":
            ts = receive_time(i) + 86_400 * 10**9
        else:
            when = "now"
        why = HARMS[harm] or {"older": "older", "future": "future"}.get(when)
        if why is None:
            newest[key] = ts
        out.append((venue, symbol, tuple(map(tuple, bids)), tuple(map(tuple, asks)), ts, why))  # type: ignore[arg-type]
    return out


class RawSource(Plugin):
    """Publishes books as given, one per 10 ms of receive time, unchecked, or (``gated``) through
    the gate every live source applies (``sources.gate.BookGate``); records every opportunity with
    the books the store held for its legs."""

    name = "raw"
    kind = "source"

    def __init__(self, books: list[Record], gated: bool) -> None:
        self.books = books
        self.gated = gated
        self.used: list[list[tuple[str, BookUpdate | None]]] = []
        self.published: dict[int, tuple[BookUpdate, Record]] = {}
        """id of each book published -> its record."""

    def setup(self, ctx: t.Any) -> None:
        super().setup(ctx)
        ctx.bus.subscribe(Opportunity, self._on_opportunity, name="raw")
        self.gate = BookGate(ctx.log, "raw")

    def _on_opportunity(self, opportunity: Opportunity) -> None:
        self.used.append([(leg.side, self.ctx.books.get(leg.venue, leg.symbol)) for leg in opportunity.legs])

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._play())

    async def _play(self) -> None:
        bus, clock = self.ctx.bus, t.cast(SimClock, self.ctx.clock)
        markets = tuple(Market(symbol=s, base=s.split("/")[0], quote=s.split("/")[1], taker_fee=0.001)
                        for s in FAIR)
        for venue in VENUES:
            bus.publish(MarketsLoaded(venue=venue, markets=markets, staleness_ms=2000.0, ts_init=T0), venue)
        for i, record in enumerate(self.books):
            venue, symbol, bids, asks, ts_event, _ = record
            now = receive_time(i)
            clock.advance_to(now)
            if not self.gated or self.gate.check(venue, symbol, bids, asks, ts_event, now) is None:
                book = BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks, ts_event=ts_event,
                                  ts_init=now)
                self.published[id(book)] = (book, record)  # the book kept: its id stays its own
                bus.publish(book, venue)
            for _ in range(10):
                await asyncio.sleep(0)
        for _ in range(10):  # let orders in flight reach their venues and finish
            clock.advance_to(clock.time_ns() + 100_000_000)
            for _ in range(20):
                await asyncio.sleep(0)
        self.ctx.request_stop("done")

    async def stop(self) -> None:
        await self._task


@pytest.mark.parametrize("gated", [False, True], ids=["unchecked", "gated"])
@pytest.mark.parametrize("strategy", ["cross_exchange", "triangular"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(book_stream())
def test_malformed_books_crash_nothing_and_no_opportunity_stands_on_one(
        tmp_path: Path, strategy: str, gated: bool, books: list[Record]) -> None:
    source = RawSource(books, gated)
    engine = Engine(backtest_settings(tmp_path, strategy={"cooldown_ms": 0.0}), clock=SimClock(0),
                    run_id="bad", plugins=[source, load_plugin(strategy)(), load_plugin("trader")()])
    summary = asyncio.run(engine.run(duration=0))
    assert summary["handler_errors"] == 0 and summary["stop_reason"] == "done"
    for legs in source.used:
        for side, book in legs:
            assert book is not None and not is_crossed(book.bids, book.asks)
            assert check_book(book.bids, book.asks) is None, side  # both sides: the record is whole
            if gated:  # a live source's gate: no opportunity on an out-of-order or far-future book
                assert source.published[id(book)][1][5] is None
                assert book.ts_event <= book.ts_init
    for quote, pnl in summary["net_pnl"].items():
        assert math.isfinite(pnl), quote
    if gated:
        wanted: dict[str, int] = {}
        for *_, why in books:
            if why is not None:
                wanted[why] = wanted.get(why, 0) + 1
        assert source.gate.rejected == wanted
        kept = sorted(id(r) for _, r in source.published.values())
        assert kept == sorted(id(r) for r in books if r[5] is None)
