"""ccxt-shaped order books of every kind of damage fed to the ccxt source's publish path (no
network): nothing raises, only sound books are published, each rejected book is counted by reason.

The expected outcome of each payload is worked out here on its own (``expect``), from the rules of
``arbitrage.sources.gate``: the payload read (symbol watched, the best ``DEPTH`` levels of each side
pairs of numbers, timestamp and nonce None or whole numbers >= 0), then ``check_book``'s rules,
then time (more than 5 s ahead of our clock: ``future``; an exchange timestamp below the newest one
passed for that symbol: ``older``; a book without timestamp is dated now and not compared).
"""

from __future__ import annotations

import asyncio
import math
import typing as t

from hypothesis import given, settings
from hypothesis import strategies as st

from arbitrage.book import check_book
from arbitrage.clock import SimClock
from arbitrage.events import BookUpdate
from arbitrage.plugin import Context
from arbitrage.settings import CcxtSettings, Settings
from arbitrage.sources import gate
from arbitrage.sources.ccxt_venue import VenueFeed

T0_MS = 1_700_000_000_000
DEPTH = 3
SYMBOLS = ("BTC/USDT", "ETH/USDT")
FUTURE_MS = 5_000
BAD_CELLS: list[t.Any] = [math.nan, math.inf, -math.inf, -1.0, 0.0, -0.0, "abc", "nan", "", None, [1.0], {}]
BAD_SIDES: list[t.Any] = [None, "abc", 5, {"a": 1}, [[1.0]], [5.0]]


class Bus:
    """Collects what is published."""

    def __init__(self) -> None:
        self.events: list[t.Any] = []

    def publish(self, event: t.Any, sender: t.Any = None) -> None:
        self.events.append(event)


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str, *args: t.Any) -> None:
        self.lines.append(text.format(*args))


def make_feed() -> tuple[VenueFeed, Bus, SimClock, Log]:
    bus, clock, log = Bus(), SimClock(T0_MS * 1_000_000), Log()
    cfg = Settings(ccxt=CcxtSettings(exchanges=["binance"], symbols=list(SYMBOLS), depth=DEPTH))
    ctx = Context(bus=bus, settings=cfg, clock=clock, run_id="bad", log=log)  # type: ignore[arg-type]
    feed = VenueFeed("binance", ctx, asyncio.Semaphore(1))
    feed.symbols = SYMBOLS
    feed.status = "connected"
    return feed, bus, clock, log


@st.composite
def payload(draw: st.DrawFn, stamp: int) -> dict[str, t.Any]:
    """One ccxt order book near 100, maybe damaged; ``stamp`` a plausible exchange time (ms)."""
    bids: t.Any = [[100.0 - i, 1.0 + i] for i in range(draw(st.integers(0, 5)))]
    asks: t.Any = [[101.0 + i, 1.0 + i] for i in range(draw(st.integers(0, 5)))]
    for _ in range(draw(st.integers(0, 2))):
        side = bids if draw(st.booleans()) else asks
        harm = draw(st.sampled_from(["cell", "swap", "repeat", "crossed", "extra", "short"]))
        if not side:
            continue
        i = draw(st.integers(0, len(side) - 1))
        if harm == "cell":
            side[i][draw(st.integers(0, len(side[i]) - 1))] = draw(st.sampled_from(BAD_CELLS))
        elif harm == "swap" and len(side) > 1:
            side[0], side[-1] = side[-1], side[0]
        elif harm == "repeat":
            side.append(list(side[-1]))
        elif harm == "crossed" and side is bids:
            side[0][0] = 150.0 + i  # above every ask, still falling (a crossed book passes)
        elif harm == "extra":
            side[i] = [*side[i], 123]  # Kraken's levels carry a timestamp: fine
        elif harm == "short":
            side[i] = side[i][:1]
    if draw(st.integers(0, 9)) == 0:
        bids = draw(st.sampled_from(BAD_SIDES))
    timestamp = draw(st.sampled_from([
        stamp, stamp, stamp, None, 0, stamp - 5_000, 4_102_444_800_000,  # 2100-01-01
        T0_MS + FUTURE_MS + 1, float(stamp), math.nan, "abc", -5, 1.5, True]))
    nonce = draw(st.sampled_from([None, 7, 8, "x", -1, math.nan, 2**70]))
    book: dict[str, t.Any] = {"symbol": draw(st.sampled_from([*SYMBOLS, *SYMBOLS, "XRP/USDT", None])),
                              "bids": bids, "asks": asks, "timestamp": timestamp, "nonce": nonce}
    if draw(st.integers(0, 19)) == 0:
        del book[draw(st.sampled_from(["bids", "asks"]))]
    return book


def _number(x: t.Any) -> bool:
    return isinstance(x, (int, float)) or (isinstance(x, str) and x in ("nan",))


def _whole(x: t.Any) -> bool:
    if x is None:
        return True
    if isinstance(x, bool):
        return False
    if isinstance(x, float):
        return math.isfinite(x) and x == int(x) and 0 <= x < 2**62
    return isinstance(x, int) and 0 <= x < 2**62


def expect(book: dict[str, t.Any], now_ms: int, newest: dict[str, int]) -> str | None:
    """The reason ``book`` is rejected, or None (``newest``: symbol -> newest exchange ms passed)."""
    if book["symbol"] not in SYMBOLS:
        return "schema"
    sides = []
    for name in ("bids", "asks"):
        side = book.get(name)
        if not isinstance(side, list):
            return "level"
        levels = side[:DEPTH]
        if not all(isinstance(level, list) and len(level) >= 2 and _number(level[0]) and _number(level[1])
                   for level in levels):
            return "level"
        sides.append([(float(level[0]), float(level[1])) for level in levels])
    if not (_whole(book["timestamp"]) and _whole(book["nonce"])):
        return "timestamp"
    bids, asks = sides
    if not bids and not asks:
        return "empty"
    for levels, falling in ((bids, True), (asks, False)):  # the first problem, side by side
        last = math.inf if falling else 0.0
        for price, amount in levels:
            if not (0 < price < math.inf and 0 < amount < math.inf):
                return "level"
            if (price >= last) if falling else (price <= last):
                return "unsorted"
            last = price
    stamp = book["timestamp"]
    if stamp and int(stamp) > now_ms + FUTURE_MS:
        return "future"
    if stamp:
        if int(stamp) < newest.get(book["symbol"], 0):
            return "older"
        newest[book["symbol"]] = int(stamp)
    return None


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_bad_ccxt_books_never_raise_never_publish_and_are_counted_by_reason(data: st.DataObject) -> None:
    feed, bus, clock, _ = make_feed()
    newest: dict[str, int] = {}
    wanted: list[tuple[t.Any, ...]] = []
    counts: dict[str, int] = {}
    for n in range(data.draw(st.integers(1, 25))):
        now_ms = T0_MS + 10 * n
        clock.advance_to(now_ms * 1_000_000)
        book = data.draw(payload(now_ms - 3))
        why = expect(book, now_ms, newest)
        feed._publish(book)
        if why is not None:
            counts[why] = counts.get(why, 0) + 1
        elif book["bids"] and book["asks"]:
            stamp = book["timestamp"]
            wanted.append((book["symbol"], int(stamp) * 1_000_000 if stamp else now_ms * 1_000_000,
                           int(book["nonce"] or 0),
                           tuple((float(p), float(a)) for p, a, *_ in book["bids"][:DEPTH]),
                           tuple((float(p), float(a)) for p, a, *_ in book["asks"][:DEPTH])))
    published = [e for e in bus.events if isinstance(e, BookUpdate)]
    assert [(b.symbol, b.ts_event, b.seq, b.bids, b.asks) for b in published] == wanted
    for book in published:
        assert check_book(book.bids, book.asks) is None and book.bids and book.asks
    assert feed.summary()["rejected"] == dict(sorted(counts.items()))
    assert feed.books == len(published)


def test_the_audit_cases_are_rejected_each_under_its_reason() -> None:
    feed, bus, _, log = make_feed()
    now = T0_MS
    good = {"symbol": "BTC/USDT", "bids": [[100.0, 1.0]], "asks": [[101.0, 1.0]], "nonce": 1}
    cases = [({"bids": [[math.nan, 1.0]]}, "level"), ({"bids": [[-100.0, 1.0]]}, "level"),
             ({"asks": [[102.0, 1.0], [101.0, 1.0]]}, "unsorted"), ({"asks": [[101.0, -1.0]]}, "level"),
             ({"timestamp": 4_102_444_800_000}, "future"), ({"bids": [["abc", 1.0]]}, "level"),
             ({"bids": [], "asks": []}, "empty"), ({"timestamp": now}, None),
             ({"timestamp": now - 1}, "older"), ({"timestamp": now}, None), ({"timestamp": None}, None)]
    for change, reason in cases:
        before = dict(feed.gate.rejected)
        feed._publish({**good, "timestamp": now, **change})
        grown = {why for why, n in feed.gate.rejected.items() if n != before.get(why, 0)}
        assert grown == ({reason} if reason else set()), change
    assert len([e for e in bus.events if isinstance(e, BookUpdate)]) == 3
    assert feed.summary()["rejected"] == {"empty": 1, "future": 1, "level": 4, "older": 1, "unsorted": 1}
    assert len(log.lines) == 1 and "book rejected: level" in log.lines[0]  # one line per LOG_EVERY_S


def test_a_flood_of_bad_books_logs_one_line_per_period_with_the_count_of_the_others(
        monkeypatch: t.Any) -> None:
    feed, _, _, log = make_feed()
    clock = [1000.0]
    monkeypatch.setattr(gate.time, "monotonic", lambda: clock[0])
    for n in range(1001):
        clock[0] = 1000.0 + n * 0.01  # 10 s of books
        feed._publish({"symbol": "BTC/USDT", "bids": [[math.nan, 1.0]], "asks": [], "timestamp": None})
    assert feed.summary()["rejected"] == {"level": 1001}
    assert len(log.lines) == 2  # at 1000 s and 1010 s
    assert "999 more rejected since the last line" in log.lines[1] and "so far: level 1001" in log.lines[1]


def test_a_resubscription_forgets_the_timestamps() -> None:
    feed, bus, _, _ = make_feed()
    book = {"symbol": "ETH/USDT", "bids": [[100.0, 1.0]], "asks": [[101.0, 1.0]], "nonce": None}
    feed._publish({**book, "timestamp": T0_MS})
    feed.gate.forget("binance")
    feed._publish({**book, "timestamp": T0_MS - 100})
    assert len(bus.events) == 2 and not feed.gate.rejected


def test_rejections_are_on_metrics_by_venue_and_reason() -> None:
    from prometheus_client import generate_latest

    from arbitrage.sources.ccxt_feed import CcxtSource

    feed, _, _, _ = make_feed()
    source = CcxtSource()
    source.setup(feed.ctx)
    source.feeds.append(feed)
    feed._publish({"symbol": "BTC/USDT", "bids": [[100.0, 1.0]], "asks": [[99.0, 1.0], [98.0, 1.0]]})
    text = generate_latest(feed.ctx.metrics).decode()  # type: ignore[arg-type]
    assert 'arb_books_rejected_total{reason="unsorted",venue="binance"} 1.0' in text


def test_the_run_summary_shows_the_rejected_books(capsys: t.Any) -> None:
    from arbitrage.cli.run import print_summary
    from arbitrage.sources.gate import books_rejected

    plugins = {"ccxt": {"binance": {"books": 3, "rejected": {"level": 2, "older": 1}, "missing": {}},
                        "kraken": {"books": 1, "rejected": {"level": 4}}},
               "trader": {"rejected": {"liquidity": 9}}}
    assert books_rejected(plugins["ccxt"]) == {"level": 6, "older": 1}
    assert books_rejected({"events": 1, "rejected": {"future": 2}}) == {"future": 2}  # the Redis feed
    summary = {"run_id": "r", "source": "ccxt", "elapsed_s": 1.0, "stop_reason": "done",
               "events_processed": 4,
               "opportunities": 0, "rejected": 0, "orders": 0, "arbs_executed": 0, "arbs_by_status": {},
               "net_pnl": {}, "realized_pnl": {}, "unrealized_pnl": {}, "fees": {}, "handler_errors": 0,
               "plugins": plugins}
    print_summary(summary)
    out = capsys.readouterr().out
    assert "books rejected" in out and "7 (level 6, older 1)" in out
