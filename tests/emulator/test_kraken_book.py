"""Kraken's recorded books re-encoded as websocket v2, against Kraken's own checksums, an
independent reference book and the unmodified ccxt.pro 4.5 ``watch_order_book``."""

from __future__ import annotations

import asyncio
import heapq
import json
import typing as t
from decimal import Decimal as D

import aiohttp
import ccxt
import pytest

from tests.emulator.core import Fault
from tests.emulator.kraken import RECORDED_DEPTH, KrakenEmulator
from tests.emulator.kraken_feed import BookFrame, Precision, checksum, load_recording
from tests.emulator.kraken_reference import ReferenceBooks
from tests.emulator.kraken_testing import emulator, run
from tests.emulator.recordings import DATA
from tests.emulator.server import serve

V1_NAMES = {"XMR/USD": "XMR/USD", "ADA/BTC": "ADA/XBT", "BTC/CHF": "XBT/CHF"}


def test_the_reference_books_reproduce_every_checksum_kraken_sent() -> None:
    reference, checked = ReferenceBooks(), 0
    for message in ReferenceBooks.messages():
        pair, sent = reference.apply(message)
        if sent is not None:
            assert reference.checksum(pair) == sent, (pair, checked)
            checked += 1
    assert checked == 4269 and len(reference.books) == 10


def test_the_emulators_books_fed_the_re_encoded_frames_carry_the_checksums_kraken_sent() -> None:
    em, frames = emulator(), load_recording().frames
    assert len(frames) == sum(1 for _ in ReferenceBooks.messages())
    checked = 0
    for frame in frames:
        em.feed(frame)
        if frame.recorded_checksum is not None:
            book = em.exchange.book(frame.symbol)
            asks = heapq.nsmallest(10, book.asks.items())
            bids = heapq.nlargest(10, book.bids.items())
            assert checksum(asks, bids, em.precision(frame.symbol)) == frame.recorded_checksum
            checked += 1
    assert checked == 4269


def test_a_fed_book_keeps_the_recorded_depth_dropping_the_levels_kraken_stops_sending() -> None:
    em = emulator()
    asks = tuple((D(100 + i), D(1)) for i in range(RECORDED_DEPTH))
    em.feed(BookFrame("BTC/USD", True, asks, ((D(99), D(1)),), 1.0, None))
    em.feed(BookFrame("BTC/USD", False, ((D("99.5"), D(2)),), (), 2.0, None))
    book = em.exchange.book("BTC/USD")
    assert len(book.asks) == RECORDED_DEPTH and min(book.asks) == D("99.5") and max(book.asks) == D(1098)


def _kraken_v2_book() -> dict[str, t.Any]:
    """Kraken's real v2 BTC/USD depth-10 snapshot and the update after it (ccxt's ws recording)."""
    cases = json.loads((DATA / "ccxt" / "ws" / "kraken.json").read_text(), parse_float=D)
    messages = cases["methods"]["watchOrderBook"][0]["messages"]
    return {m["type"]: m["data"][0] for m in messages if m.get("channel") == "book"}


def test_snapshot_and_update_checksums_equal_those_kraken_sent_over_v2_and_bad_requests_are_refused() -> None:
    real = _kraken_v2_book()
    em = emulator()
    em.exchange.set_book("BTC/USD", [(b["price"], b["qty"]) for b in real["snapshot"]["bids"]],
                         [(a["price"], a["qty"]) for a in real["snapshot"]["asks"]])

    async def main() -> None:
        async with serve(em) as base, aiohttp.ClientSession() as session, session.ws_connect(
                f"{base.replace('http', 'ws')}/ws.kraken.com/v2") as ws:
            status = await ws.receive_json()
            assert (status["channel"], status["data"][0]["api_version"]) == ("status", "v2")
            await ws.send_json({"method": "ping", "req_id": 7})
            pong = await ws.receive_json()
            assert (pong["method"], pong["req_id"]) == ("pong", 7)
            await ws.send_json({"method": "subscribe", "req_id": 8,
                                "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 7}})
            refused = await ws.receive_json()
            assert (refused["success"], refused["req_id"]) == (False, 8) and "depth" in refused["error"]
            await ws.send_json({"method": "subscribe", "req_id": 9,
                                "params": {"channel": "book", "symbol": ["NOPE/USD", "BTC/USD"]}})
            unknown = await ws.receive_json()
            assert (unknown["success"], unknown["symbol"]) == (False, "NOPE/USD")
            ack = await ws.receive_json()
            assert (ack["method"], ack["req_id"], ack["success"], ack["result"]) == (
                "subscribe", 9, True, {"channel": "book", "depth": 10, "snapshot": True, "symbol": "BTC/USD"})
            snapshot = json.loads(await ws.receive_str(), parse_float=D)
            data = snapshot["data"][0]
            assert (snapshot["type"], data["symbol"], data["checksum"]) == (
                "snapshot", "BTC/USD", real["snapshot"]["checksum"])  # 1490766955
            assert (data["asks"], data["bids"]) == (real["snapshot"]["asks"], real["snapshot"]["bids"])
            update = real["update"]
            em.exchange.feed_diff("BTC/USD", [(b["price"], b["qty"]) for b in update["bids"]], [])
            sent = json.loads(await ws.receive_str(), parse_float=D)["data"][0]
            assert (sent["bids"], sent["asks"], sent["checksum"]) == (update["bids"], [], update["checksum"])

    asyncio.run(main())


def _as_floats(levels: list[tuple[str, str]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in levels]


def _reference_until(symbol: str) -> tuple[ReferenceBooks, list[list[t.Any]], int]:
    """The reference fed up to and including ``symbol``'s snapshot; the messages; that index."""
    messages = list(ReferenceBooks.messages())
    first = next(i for i, m in enumerate(messages) if m[-1] == V1_NAMES[symbol])
    reference = ReferenceBooks()
    for message in messages[:first + 1]:
        reference.apply(message)
    return reference, messages, first


@pytest.mark.parametrize(("symbol", "depth"), [("XMR/USD", 10), ("ADA/BTC", 1000)])
def test_watch_order_book_equals_the_reference_after_every_recorded_update(symbol: str, depth: int) -> None:
    reference, messages, first = _reference_until(symbol)
    frames, pair = load_recording().frames, V1_NAMES[symbol]
    seen = []

    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        for frame in frames[:first + 1]:
            em.feed(frame)
        book = await ex.watch_order_book(symbol, depth)
        asks, bids = reference.top(pair, depth)
        assert (book["asks"], book["bids"]) == (_as_floats(asks), _as_floats(bids))
        for frame, message in zip(frames[first + 1:], messages[first + 1:], strict=True):
            before = reference.top(pair, depth) if frame.symbol == symbol else None
            reference.apply(message)
            after = reference.top(pair, depth) if frame.symbol == symbol else None
            if before == after:  # another market, or nothing within the subscribed depth changed
                em.feed(frame)
                continue
            assert after is not None
            watch = asyncio.ensure_future(ex.watch_order_book(symbol, depth))
            await asyncio.sleep(0)  # the watch now waits for the next message
            em.feed(frame)
            book = await watch
            assert (book["asks"], book["bids"]) == (_as_floats(after[0]), _as_floats(after[1])), len(seen)
            seen.append(book["timestamp"])

    run(scenario, pro=True)
    assert len(seen) == {10: 604, 1000: 347}[depth]  # of 846 XMR/USD updates, 604 change the best 10


def test_a_dropped_websocket_fails_the_pending_watch_and_the_next_watch_resubscribes_to_the_book() -> None:
    reference, messages, first = _reference_until("BTC/CHF")
    frames = load_recording().frames

    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        for frame in frames[:first + 1]:
            em.feed(frame)
        await ex.watch_order_book("BTC/CHF", 10)
        pending = asyncio.ensure_future(ex.watch_order_book("BTC/CHF", 10))
        await asyncio.sleep(0)
        em.exchange.inject(Fault("drop_ws"))
        with pytest.raises(ccxt.NetworkError):
            await pending
        later = slice(first + 1, first + 600)
        for frame, message in zip(frames[later], messages[later], strict=True):
            em.feed(frame)
            reference.apply(message)
        book = await ex.watch_order_book("BTC/CHF", 10)
        asks, bids = reference.top("XBT/CHF", 10)
        assert (book["asks"], book["bids"]) == (_as_floats(asks), _as_floats(bids))
        assert [r.method for r in em.exchange.requests].count("WS") == 2 and not em.exchange.faults

    run(scenario, pro=True)


def test_consumed_liquidity_reaches_the_websocket_book_like_a_recorded_update() -> None:
    _, _, first = _reference_until("XMR/USD")

    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        for frame in load_recording().frames[:first + 1]:
            em.feed(frame)
        em.exchange.set_balance("USD", 10_000)
        book = await ex.watch_order_book("XMR/USD", 10)
        (price, qty), second = book["asks"][0], book["asks"][1]
        watch = asyncio.ensure_future(ex.watch_order_book("XMR/USD", 10))
        await asyncio.sleep(0)
        await ex.create_order("XMR/USD", "limit", "buy", 0.1, price, {"timeInForce": "IOC"})
        book = await watch
        assert book["asks"][:2] == [[price, pytest.approx(qty - 0.1)], second]
        assert em.exchange.balance("XMR").free == D("0.1")

    run(scenario, pro=True)


def test_a_gap_withholds_one_update_and_the_next_checksum_no_longer_matches_the_clients_book() -> None:
    em = emulator()
    em.exchange.set_book("BTC/USD", [("99.0", "1")], [("101.0", "1"), ("102.0", "2")])
    precision: Precision = em.precision("BTC/USD")

    async def main() -> None:
        async with serve(em) as base, aiohttp.ClientSession() as session, session.ws_connect(
                f"{base.replace('http', 'ws')}/ws.kraken.com/v2") as ws:
            await ws.send_json({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
            book: dict[str, dict[D, D]] = {"asks": {}, "bids": {}}

            async def next_book_message() -> dict[str, t.Any]:
                while (message := json.loads(await ws.receive_str(), parse_float=D)).get("channel") != "book":
                    pass
                data = message["data"][0]
                for side in ("asks", "bids"):
                    for level in data[side]:
                        book[side][level["price"]] = level["qty"]
                        if level["qty"] == 0:
                            del book[side][level["price"]]
                asks, bids = sorted(book["asks"].items()), sorted(book["bids"].items(), reverse=True)
                return {"sent": data["checksum"], "ours": checksum(asks, bids, precision)}

            first = await next_book_message()
            assert first["sent"] == first["ours"]
            em.exchange.inject(Fault("gap", symbol="BTC/USD"))
            em.exchange.feed_diff("BTC/USD", [], [("101.0", "0.5")])  # withheld
            em.exchange.feed_diff("BTC/USD", [("99.5", "3")], [])
            after = await next_book_message()
            assert after["sent"] != after["ours"]  # 101.0 is still 1 on the client
            assert after["sent"] == checksum([(D("101.0"), D("0.5")), (D("102.0"), D(2))],
                                             [(D("99.5"), D(3)), (D("99.0"), D(1))], precision)

    asyncio.run(main())


def test_a_stale_stream_withholds_its_symbols_updates_while_other_symbols_flow() -> None:
    em = emulator()
    em.exchange.set_book("BTC/USD", [("99.0", "1")], [("101.0", "1")])
    em.exchange.set_book("ETH/USDT", [("9.0", "1")], [("11.0", "1")])

    async def main() -> None:
        async with serve(em) as base, aiohttp.ClientSession() as session, session.ws_connect(
                f"{base.replace('http', 'ws')}/ws.kraken.com/v2") as ws:
            await ws.send_json({"method": "subscribe",
                                "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USDT"]}})
            snapshots = 0
            while snapshots < 2:
                snapshots += (await ws.receive_json()).get("type") == "snapshot"
            em.exchange.inject(Fault("stale", symbol="BTC/USD"))
            em.exchange.feed_diff("BTC/USD", [], [("101.0", "2")])
            em.exchange.feed_diff("BTC/USD", [], [("101.0", "3")])
            em.exchange.feed_diff("ETH/USDT", [], [("11.0", "2")])
            update = await ws.receive_json()
            assert (update["type"], update["data"][0]["symbol"]) == ("update", "ETH/USDT")

    asyncio.run(main())
