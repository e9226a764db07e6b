"""The Binance emulator driven by the unmodified ccxt (async_support) and ccxt.pro.

Numbers are worked out by hand in the comments; books are checked against ``reference.py``, built
from the recording by Binance's documented rules without ccxt or the emulator's book.
"""

from __future__ import annotations

import asyncio
import typing as t
from decimal import Decimal as D

import pytest

from tests.emulator.binance import API_KEY, SECRET, BinanceEmulator, binance_exchange
from tests.emulator.binance_replay import BinanceReplay
from tests.emulator.core import Fault
from tests.emulator.fixtures import ccxt_client, run_against
from tests.emulator.reference import reference_books

ccxt = pytest.importorskip("ccxt")

BTC = "BTC/USDT"
NKN = "NKN/USDT"
WAIT = 20.0  # only so that a broken test fails instead of hanging; never reached when it passes


def planted(**balances: str) -> BinanceEmulator:
    """BTC/USDT with a planted book: asks 0.01 @ 30000, 0.02 @ 30010, 1 @ 30100; bids 0.015 @
    29995, 0.1 @ 29990; no replay."""
    em = BinanceEmulator(binance_exchange(balances or {"USDT": "1000", "BTC": "0.05"}))
    em.exchange.set_book(BTC, [("29995", "0.015"), ("29990", "0.1")],
                         [("30000", "0.01"), ("30010", "0.02"), ("30100", "1")])
    return em


def client(base: str, *, api_key: str = API_KEY, secret: str = SECRET, **config: t.Any) -> t.Any:
    return ccxt_client("binance", base, api_key=api_key, secret=secret, **config)


IOC = {"timeInForce": "IOC"}


def ioc(client_order_id: str) -> dict[str, str]:
    return {**IOC, "clientOrderId": client_order_id}


def test_load_markets_and_a_trade_touch_exactly_these_endpoints() -> None:
    """The list a ccxt upgrade must keep (or this test says what it calls now)."""
    em = planted()

    async def scenario(base: str) -> None:
        async with client(base) as ex:
            await ex.load_markets()
            assert em.exchange.endpoints() == ["GET /api/v3/exchangeInfo"]
            await ex.fetch_balance()
            await ex.fetch_order_book(BTC, 5)
            await ex.create_order(BTC, "limit", "buy", 0.001, 30000, {**IOC, "clientOrderId": "arb-e1"})
            await ex.fetch_order(None, BTC, {"clientOrderId": "arb-e1"})
            await ex.fetch_open_orders(BTC)
            await ex.fetch_my_trades(BTC)

    run_against(em, scenario)
    assert em.exchange.endpoints() == [
        "GET /api/v3/exchangeInfo", "GET /api/v3/account", "GET /api/v3/depth", "POST /api/v3/order",
        "GET /api/v3/order", "GET /api/v3/openOrders", "GET /api/v3/myTrades"]
    assert {r.status for r in em.exchange.requests} == {200}


def test_markets_come_from_the_recorded_exchange_info_with_binance_fee_side() -> None:
    async def scenario(base: str) -> dict[str, t.Any]:
        async with client(base) as ex:
            return t.cast(dict[str, t.Any], await ex.load_markets())

    markets = run_against(BinanceEmulator(), scenario)
    assert {BTC, "ETH/USDT", NKN, "BLZ/ETH", "LRC/BTC", "RUNE/EUR"} <= set(markets)
    nkn = markets[NKN]
    precision, limits = nkn["precision"], nkn["limits"]
    assert (precision["amount"], precision["price"], limits["cost"]["min"]) == (1, 0.0001, 10)
    assert (nkn["taker"], nkn["feeSide"]) == (0.001, "get")


@pytest.mark.parametrize(("setup", "error"), [
    ({"secret": "not-the-secret"}, "AuthenticationError"),  # -1022 bad signature
    ({"api_key": "someone-else"}, "AuthenticationError"),  # -2015
])
def test_bad_credentials_are_refused_as_authentication_errors(setup: dict[str, str], error: str) -> None:
    em = planted()

    async def scenario(base: str) -> None:
        async with client(base, **setup) as ex:
            with pytest.raises(getattr(ccxt, error)):
                await ex.fetch_balance()

    run_against(em, scenario)
    assert [(r.endpoint, r.status) for r in em.exchange.requests] == [
        ("GET /api/v3/exchangeInfo", 200), ("GET /api/v3/account", 401 if "api_key" in setup else 400)]


@pytest.mark.parametrize("skew", [-20.0, 5.0])  # server 20 s ahead (beyond recvWindow 10 s), 5 s behind
def test_a_timestamp_outside_the_recv_window_is_refused_as_invalid_nonce(skew: float) -> None:
    import time

    em = planted()
    em.exchange.clock = lambda: time.time() - skew

    async def scenario(base: str) -> None:
        async with client(base) as ex:
            with pytest.raises(ccxt.InvalidNonce, match="-1021"):
                await ex.fetch_balance()

    run_against(em, scenario)


def test_ioc_orders_fill_against_the_book_and_move_balances_by_the_get_fee_rule() -> None:
    em = planted()

    async def scenario(base: str) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any]]:
        async with client(base) as ex:
            buy = await ex.create_order(BTC, "limit", "buy", 0.025, 30010, ioc("arb-b1"))
            sell = await ex.create_order(BTC, "limit", "sell", 0.02, 29990, ioc("arb-s1"))
            return buy, sell, await ex.fetch_balance()

    buy, sell, balance = run_against(em, scenario)
    # buy: 0.01 @ 30000 + 0.015 @ 30010 = 300 + 450.15 = 750.15 USDT; fee 0.1 % of 0.025 BTC in BTC
    assert (buy["status"], buy["filled"], buy["cost"], buy["average"]) == ("closed", 0.025, 750.15, 30006.0)
    assert buy["fee"] == {"currency": "BTC", "cost": 0.000025} and buy["clientOrderId"] == "arb-b1"
    # sell: 0.015 @ 29995 + 0.005 @ 29990 = 449.925 + 149.95 = 599.875 USDT; fee 0.599875 USDT
    assert (sell["status"], sell["cost"]) == ("closed", 599.875)
    assert sell["fee"] == {"currency": "USDT", "cost": 0.599875}
    # BTC 0.05 + 0.025 - 0.000025 - 0.02; USDT 1000 - 750.15 + 599.875 - 0.599875
    assert balance["total"] == {"BTC": 0.054975, "USDT": 849.125125}
    assert em.exchange.balance("BTC").free == D("0.054975")
    assert em.exchange.balance("USDT").free == D("849.125125")
    assert em.exchange.book(BTC).levels("asks") == [(D("30010"), D("0.005")), (D("30100"), D("1"))]


def test_an_ioc_remainder_expires_and_fetch_order_by_client_id_reports_it() -> None:
    em = planted(USDT="1600")  # 0.05 at the limit 30010 reserves 1500.5

    async def scenario(base: str) -> tuple[dict[str, t.Any], ...]:
        async with client(base) as ex:
            created = await ex.create_order(BTC, "limit", "buy", 0.05, 30010, ioc("arb-p1"))
            by_client_id = await ex.fetch_order(None, BTC, {"clientOrderId": "arb-p1"})
            return created, by_client_id, await ex.fetch_order(created["id"], BTC)

    created, fetched, by_id = run_against(em, scenario)
    for order in (created, fetched, by_id):  # 0.01 + 0.02 of 0.05 fill at or below 30010, the rest expires
        assert (order["status"], order["filled"], order["remaining"]) == ("expired", 0.03, 0.02)
        assert order["id"] == "1"
    assert fetched["clientOrderId"] == "arb-p1"
    assert em.exchange.order(client_order_id="arb-p1").status == "expired"


def test_a_duplicate_client_order_id_is_refused_and_not_placed_twice() -> None:
    em = planted()

    async def scenario(base: str) -> None:
        async with client(base) as ex:
            await ex.create_order(BTC, "limit", "buy", 0.001, 30000, {**IOC, "clientOrderId": "arb-d1"})
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                await ex.create_order(BTC, "limit", "buy", 0.001, 30000, {**IOC, "clientOrderId": "arb-d1"})

    run_against(em, scenario)
    assert len(em.exchange.orders) == 1


def test_insufficient_balance_unknown_order_and_cancel_map_to_ccxt_classes() -> None:
    em = planted(USDT="100", BTC="0")

    async def scenario(base: str) -> dict[str, t.Any]:
        async with client(base) as ex:
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order(BTC, "limit", "buy", 0.01, 30000, IOC)  # 300 USDT needed
            with pytest.raises(ccxt.OrderNotFound):
                await ex.fetch_order(None, BTC, {"clientOrderId": "never-sent"})
            resting = await ex.create_order(BTC, "limit", "buy", 0.001, 29000, {"clientOrderId": "arb-g1"})
            assert resting["status"] == "open" and (await ex.fetch_balance())["used"]["USDT"] == 29.0
            canceled = await ex.cancel_order(resting["id"], BTC)
            with pytest.raises(ccxt.OrderNotFound):
                await ex.cancel_order(resting["id"], BTC)
            return t.cast(dict[str, t.Any], canceled)

    canceled = run_against(em, scenario)
    assert canceled["status"] == "canceled" and em.exchange.balance("USDT").free == D(100)


def test_fetch_tickers_and_fetch_ticker_show_the_top_of_the_book() -> None:
    em = planted()

    async def scenario(base: str) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
        async with client(base) as ex:
            return await ex.fetch_tickers([BTC, NKN]), await ex.fetch_ticker(BTC)

    tickers, ticker = run_against(em, scenario)
    assert set(tickers) == {BTC, NKN}
    for one in (tickers[BTC], ticker):  # the planted best bid 0.015 @ 29995, best ask 0.01 @ 30000
        assert (one["bid"], one["bidVolume"], one["ask"], one["askVolume"]) == (29995, 0.015, 30000, 0.01)
    assert em.exchange.endpoints()[1:] == ["GET /api/v3/ticker/24hr", "GET /api/v3/ticker/24hr"]


def test_the_subprocess_entry_prints_its_url_and_serves_ccxt() -> None:
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-m", "tests.emulator", "binance", "--port", "0", "--pace", "0"],
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")

        async def scenario() -> dict[str, t.Any]:
            async with ccxt_client("binance", base, api_key=API_KEY, secret=SECRET) as ex:
                await ex.load_markets()
                return t.cast(dict[str, t.Any], await ex.fetch_order_book(NKN, 5))

        try:
            book = asyncio.run(scenario())
        finally:
            proc.terminate()
            proc.wait(WAIT)
    reference = reference_books("NKNUSDT")
    assert book["nonce"] in reference  # the recorded snapshot, or a later state if a client subscribed
    assert [(float(p), float(q)) for p, q in reference[book["nonce"]].asks[:5]] == \
        [tuple(a) for a in book["asks"]]


def test_a_missing_route_answers_404_and_is_in_the_request_log() -> None:
    em = planted()

    async def scenario(base: str) -> None:
        async with client(base) as ex:
            with pytest.raises(ccxt.BaseError):
                await ex.fetch_trades(BTC)

    run_against(em, scenario)
    assert "404 GET /api/v3/aggTrades" in em.exchange.request_log()


ORDER = "POST /api/v3/order"


@pytest.mark.parametrize(("fault", "error"), [
    (Fault("status", ORDER, status=429, retry_after=7), "DDoSProtection"),
    (Fault("status", ORDER, status=418, retry_after=120), "DDoSProtection"),
    (Fault("status", ORDER, status=503), "ExchangeNotAvailable"),
    (Fault("status", ORDER, status=502), "ExchangeNotAvailable"),
    (Fault("timeout", ORDER), "RequestTimeout"),
    (Fault("reject", reason="insufficient_funds"), "InsufficientFunds"),
])
def test_faults_that_refuse_an_order_raise_what_binance_would_and_place_nothing(fault: Fault,
                                                                                 error: str) -> None:
    em = planted()
    em.exchange.inject(fault)

    async def scenario(base: str) -> dict[str, str]:
        async with client(base, timeout=300) as ex:
            with pytest.raises(getattr(ccxt, error)):
                await ex.create_order(BTC, "limit", "buy", 0.001, 30000, {**IOC, "clientOrderId": "arb-f1"})
            return t.cast(dict[str, str], ex.last_response_headers or {})

    headers = run_against(em, scenario)
    assert not em.exchange.orders and not em.exchange.faults
    if fault.retry_after is not None:
        assert headers["Retry-After"] == f"{fault.retry_after:g}"


def test_a_lost_answer_raises_a_network_error_but_the_order_exists_and_is_found_by_client_id() -> None:
    em = planted()
    em.exchange.inject(Fault("lost", ORDER))

    async def scenario(base: str) -> dict[str, t.Any]:
        async with client(base) as ex:
            with pytest.raises(ccxt.NetworkError):
                await ex.create_order(BTC, "limit", "buy", 0.01, 30000, {**IOC, "clientOrderId": "arb-l1"})
            return t.cast(dict[str, t.Any], await ex.fetch_order(None, BTC, {"clientOrderId": "arb-l1"}))

    found = run_against(em, scenario)
    assert (found["status"], found["filled"]) == ("closed", 0.01)
    assert len(em.exchange.orders) == 1 and em.exchange.balance("BTC").free == D("0.05") + D("0.00999")


def test_delayed_and_partial_fill_faults_still_answer_with_the_true_fill() -> None:
    em = planted()
    em.exchange.inject(Fault("delay", ORDER, delay=0.05), Fault("partial", fill=D("0.004")))

    async def scenario(base: str) -> dict[str, t.Any]:
        async with client(base) as ex:
            return t.cast(dict[str, t.Any], await ex.create_order(BTC, "limit", "buy", 0.01, 30000, IOC))

    order = run_against(em, scenario)
    assert (order["status"], order["filled"], order["cost"]) == ("expired", 0.004, 120.0)


# -- the websocket ---------------------------------------------------------------------------------

DEPTH = 100  # ccxt's book starts from a 1000-level snapshot: compare the levels it can know


def _levels(side: list[list[float]]) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in side[:DEPTH]]


def _same_as_reference(book: dict[str, t.Any], reference: dict[int, t.Any]) -> None:
    ref = reference[book["nonce"]]
    assert _levels(book["bids"]) == [(float(p), float(q)) for p, q in ref.bids[:DEPTH]], book["nonce"]
    assert _levels(book["asks"]) == [(float(p), float(q)) for p, q in ref.asks[:DEPTH]], book["nonce"]


async def _watch_until(ex: t.Any, symbol: str, last: int, seen: list[int],
                       reference: dict[int, t.Any]) -> None:
    while not seen or seen[-1] < last:
        book = await asyncio.wait_for(ex.watch_order_book(symbol), WAIT)
        _same_as_reference(book, reference)
        seen.append(book["nonce"])


async def _until_fed(replay: BinanceReplay | None, count: int) -> None:
    async def wait() -> None:
        while replay is not None and replay.fed < count:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(wait(), WAIT)


def test_the_emulator_book_after_each_replayed_diff_equals_the_reference() -> None:
    references = {market_id: reference_books(market_id)
                  for market_id in ("NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR")}
    em = BinanceEmulator(replay=BinanceReplay(pace=0, start="listen"))
    checked: list[int] = []

    def check(diff: t.Any) -> None:
        if diff.snapshot:  # the recorded REST snapshots loaded at start: the references' first states
            return
        book = em.exchange.book(diff.symbol)
        reference = references[em.exchange.market(diff.symbol).id][diff.last_id]
        assert (book.levels("bids"), book.levels("asks")) == (reference.bids, reference.asks)
        checked.append(diff.last_id)

    em.exchange.add_book_listener(check)

    async def scenario(base: str) -> None:
        await asyncio.wait_for(em.replay.done.wait(), WAIT)  # type: ignore[union-attr]

    run_against(em, scenario)
    # every state but the snapshots
    assert len(checked) == sum(len(r) - 1 for r in references.values()) == 172


def test_watch_order_book_on_the_replayed_recording_equals_the_reference_at_each_update_id() -> None:
    reference = reference_books("NKNUSDT")
    em = BinanceEmulator(replay=BinanceReplay(pace=0.002, start="listen", pause_after=80))
    seen: list[int] = []

    async def scenario(base: str) -> None:
        assert em.replay is not None
        await asyncio.wait_for(em.replay.paused.wait(), WAIT)
        async with ccxt_client("binance", base, pro=True) as ex:  # mid-replay: the snapshot is the book now
            await _watch_until(ex, NKN, min(reference), seen, reference)
            em.replay.resume()
            await _watch_until(ex, NKN, max(reference), seen, reference)

    run_against(em, scenario)
    assert min(reference) < seen[0] and seen[-1] == max(reference) == 499870179
    assert len(set(seen)) > 10 and seen == sorted(seen)
    assert em.exchange.endpoints()[-1] == "GET /api/v3/depth"  # one snapshot, nothing else after


def test_a_sequence_gap_makes_ccxt_drop_the_book_and_resync_from_a_new_snapshot() -> None:
    reference = reference_books("NKNUSDT")
    em = BinanceEmulator(replay=BinanceReplay(pace=0.002, start="manual"))
    seen: list[int] = []
    gap_after = sorted(reference)[60]  # past some deletions

    def gap(diff: t.Any) -> None:  # the frame after this id is not sent, wherever the client is
        if diff.symbol == NKN and diff.last_id == gap_after:
            em.exchange.inject(Fault("gap", symbol=NKN))

    em.exchange.add_book_listener(gap)

    async def scenario(base: str) -> None:
        async with ccxt_client("binance", base, pro=True) as ex:
            await _watch_until(ex, NKN, min(reference), seen, reference)  # the snapshot, before any diff
            em.replay.begin()  # type: ignore[union-attr]
            with pytest.raises(ccxt.ChecksumError):
                await _watch_until(ex, NKN, max(reference), seen, reference)
            await _watch_until(ex, NKN, max(reference), seen, reference)  # resubscribed, resynced

    run_against(em, scenario)
    assert em.exchange.endpoints().count("GET /api/v3/depth") == 2 and seen[-1] == max(reference)
    assert sum(r.method == "WS<" and "SUBSCRIBE" in r.params["message"] for r in em.exchange.requests) == 2


def test_a_dropped_websocket_fails_the_watch_and_the_next_watch_reconnects() -> None:
    reference = reference_books("NKNUSDT")
    em = BinanceEmulator(replay=BinanceReplay(pace=0.002, start="manual"))
    seen: list[int] = []

    async def scenario(base: str) -> None:
        async with ccxt_client("binance", base, pro=True) as ex:
            seen.append((await asyncio.wait_for(ex.watch_order_book(NKN), WAIT))["nonce"])  # the snapshot
            em.exchange.inject(Fault("drop_ws"))  # cut at once, no frame in flight
            with pytest.raises(ccxt.NetworkError):  # the close fails the pending watch
                await asyncio.wait_for(ex.watch_order_book(NKN), WAIT)
            em.replay.begin()  # type: ignore[union-attr]
            await _watch_until(ex, NKN, max(reference), seen, reference)  # reconnected, resynced

    run_against(em, scenario)
    assert [r.path for r in em.exchange.requests if r.method == "WS"] == ["/ws/0", "/ws/0"]
    assert seen[-1] == max(reference)


def test_our_fill_during_the_replay_is_one_more_update_id_and_the_watched_book_stays_in_sequence() -> None:
    em = BinanceEmulator(binance_exchange({"USDT": "100"}), replay=BinanceReplay(pace=0.003))
    nonces: list[int] = []

    async def scenario(base: str) -> tuple[list[t.Any], list[t.Any]]:
        async with ccxt_client("binance", base, pro=True) as pro, client(base) as rest:
            nonces.append((await asyncio.wait_for(pro.watch_order_book(NKN), WAIT))["nonce"])
            await _until_fed(em.replay, 40)
            ask = em.exchange.book(NKN).levels("asks", 1)[0][0]
            await rest.create_order(NKN, "limit", "buy", 30, float(ask), IOC)
            while nonces[-1] < 499870179 + 1:  # every later recorded id is one higher
                book = await asyncio.wait_for(pro.watch_order_book(NKN), WAIT)
                nonces.append(book["nonce"])
            return [list(b) for b in book["bids"][:DEPTH]], [list(a) for a in book["asks"][:DEPTH]]

    bids, asks = run_against(em, scenario)
    own = em.exchange.book(NKN)
    assert own.update_id == 499870180 and own.offset == 1 and nonces == sorted(nonces)
    assert (bids, asks) == ([[float(p), float(q)] for p, q in own.levels("bids", DEPTH)],
                            [[float(p), float(q)] for p, q in own.levels("asks", DEPTH)])


def test_a_stale_stream_sends_nothing_more_while_the_book_moves_on() -> None:
    em = BinanceEmulator(replay=BinanceReplay(pace=0.001, start="manual"))

    async def scenario(base: str) -> tuple[int, int]:
        async with ccxt_client("binance", base, pro=True) as ex:
            book = await asyncio.wait_for(ex.watch_order_book(NKN), WAIT)  # the snapshot
            em.exchange.inject(Fault("stale", symbol=NKN))
            em.replay.begin()  # type: ignore[union-attr]
            sent = em.streams.frames_sent
            await asyncio.wait_for(em.replay.done.wait(), WAIT)  # type: ignore[union-attr]
            await asyncio.sleep(0.05)  # let any frame already queued reach ccxt
            assert em.streams.frames_sent == sent
            return book["nonce"], ex.orderbooks[NKN]["nonce"]

    first, last_seen = run_against(em, scenario)
    assert em.exchange.book(NKN).update_id == 499870179 > last_seen >= first


def test_liquidity_our_order_takes_is_published_as_a_diff_watchers_apply() -> None:
    em = planted()

    async def scenario(base: str) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
        async with ccxt_client("binance", base, pro=True) as pro, client(base) as rest:
            before = await asyncio.wait_for(pro.watch_order_book(BTC), WAIT)
            before = {"nonce": before["nonce"], "asks": [list(a) for a in before["asks"]]}
            await rest.create_order(BTC, "limit", "buy", 0.015, 30010, IOC)
            after = await asyncio.wait_for(pro.watch_order_book(BTC), WAIT)
            return before, {"nonce": after["nonce"], "asks": [list(a) for a in after["asks"]]}

    before, after = run_against(em, scenario)
    assert before["asks"] == [[30000.0, 0.01], [30010.0, 0.02], [30100.0, 1.0]]
    assert after["asks"] == [[30010.0, 0.015], [30100.0, 1.0]] and after["nonce"] == before["nonce"] + 1


def test_a_stream_url_connection_gets_the_recorded_frames_verbatim() -> None:
    import json

    import aiohttp

    from tests.emulator.binance_replay import recorded_snapshots
    from tests.emulator.recordings import cryptofeed

    last = recorded_snapshots()["NKNUSDT"]["lastUpdateId"]
    recorded = [json.loads(line["data"]) for line in cryptofeed("BINANCE") if line["t"] == "recv"]
    expected = [f for f in recorded if f["stream"] == "nknusdt@depth@100ms" and f["data"]["u"] > last]
    em = BinanceEmulator(replay=BinanceReplay(pace=0, start="manual"), retime=False)

    async def scenario(base: str) -> list[t.Any]:
        frames = []
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{base}/stream.binance.com/stream?streams=nknusdt@depth@100ms") as ws:
            em.replay.begin()  # type: ignore[union-attr]
            while len(frames) < len(expected):
                frames.append(json.loads((await asyncio.wait_for(ws.receive(), WAIT)).data))
        return frames

    assert run_against(em, scenario) == expected
