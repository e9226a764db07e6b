"""The Kraken emulator's REST API against the unmodified ccxt 4.5 ``async_support.kraken``.

Numbers are worked out by hand from a planted BTC/USDT book: asks 0.5 @ 50000.0 and 1 @ 50010.0,
a bid 1 @ 49990.0; Kraken's first-tier taker fee 0.26 %, charged in the quote currency.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import typing as t
import uuid
from decimal import Decimal as D

import ccxt
import pytest

from tests.emulator.core import Fault
from tests.emulator.kraken import TRADES_PAGE, KrakenEmulator
from tests.emulator.kraken_testing import KEY, SECRET, emulator, run
from tests.emulator.kraken_wire import kraken_id
from tests.emulator.recordings import ccxt_markets

OTHER_SECRET = base64.b64encode(bytes(range(64, 128))).decode()


def planted(usdt: str = "100000", btc: str = "1") -> KrakenEmulator:
    em = emulator()
    em.exchange.set_balance("USDT", usdt)
    em.exchange.set_balance("BTC", btc)
    em.exchange.set_book("BTC/USDT", [("49990.0", "1")], [("50000.0", "0.5"), ("50010.0", "1")])
    return em


def test_load_markets_calls_assets_and_asset_pairs_only_and_parses_to_ccxts_recorded_markets() -> None:
    recorded = ccxt_markets("kraken")

    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        await ex.load_markets()
        # keep this: a ccxt release that calls more (or other) endpoints shows up here first
        assert em.exchange.endpoints() == ["GET /0/public/Assets", "GET /0/public/AssetPairs"]
        assert len(ex.markets) == 18
        for symbol, market in recorded.items():
            ours = ex.markets[symbol]
            assert (ours["id"], ours["precision"], ours["taker"], ours["maker"], ours["active"]) == (
                market["id"], market["precision"], market["taker"], market["maker"], True)
            assert ours["limits"]["amount"]["min"] == market["limits"]["amount"]["min"]
        chf = ex.markets["BTC/CHF"]  # from the cryptofeed recording's AssetPairs
        assert (chf["id"], chf["base"], chf["quote"], chf["precision"]["price"], chf["info"]["wsname"]) == (
            "XBTCHF", "BTC", "CHF", 0.1, "XBT/CHF")
        assert {"ADA/BTC", "XMR/USD", "KSM/BTC", "OCEAN/BTC"} <= set(ex.symbols)
        assert (await ex.fetch_status())["status"] == "ok" and await ex.fetch_time() > 0

    run(scenario)


def test_load_markets_and_a_trade_touch_exactly_these_endpoints() -> None:
    """What ``load_markets`` and the calls a live venue trades with reach through ccxt 4.5's
    kraken.py: ``fetch_balance`` is ``BalanceEx``, ``fetch_order`` is ``QueryOrders`` (a client id
    goes as the integer ``userref`` there, so lookups by ours go through ``OpenOrders`` and
    ``ClosedOrders`` with ``cl_ord_id``), ``fetch_my_trades`` is ``TradesHistory``. The list a ccxt
    upgrade must keep (or this test says what it calls now)."""
    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        await ex.load_markets()
        await ex.fetch_balance()
        await ex.fetch_order_book("BTC/USDT", 10)
        placed = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 50000,
                                       {"clientOrderId": "arb-e1", "timeInForce": "IOC"})
        await ex.fetch_order(placed["id"])
        await ex.fetch_open_orders(params={"clientOrderId": "arb-e1"})
        await ex.fetch_closed_orders(params={"clientOrderId": "arb-e1"})
        await ex.fetch_my_trades("BTC/USDT")
        resting = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "arb-e2"})
        await ex.cancel_order(resting["id"])

    em = run(scenario, planted())
    assert em.exchange.endpoints() == [
        "GET /0/public/Assets", "GET /0/public/AssetPairs", "POST /0/private/BalanceEx",
        "GET /0/public/Depth", "POST /0/private/AddOrder",
        "POST /0/private/QueryOrders", "POST /0/private/OpenOrders", "POST /0/private/ClosedOrders",
        "POST /0/private/TradesHistory", "POST /0/private/AddOrder", "POST /0/private/CancelOrder"], \
        em.exchange.request_log()
    assert {r.status for r in em.exchange.requests} == {200}


def test_ioc_buy_with_client_order_id_takes_two_levels_pays_the_fee_in_quote_and_is_found_again() -> None:
    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        placed = await ex.create_order("BTC/USDT", "limit", "buy", 0.7, 50010,
                                       {"clientOrderId": "arb-1", "timeInForce": "IOC"})
        sent = em.exchange.requests[-1].params
        assert (sent["cl_ord_id"], sent["timeinforce"], sent["ordertype"]) == ("arb-1", "IOC", "limit")
        assert placed["status"] is None and placed["filled"] is None  # AddOrder answers the txid only
        assert await ex.fetch_open_orders(params={"clientOrderId": "arb-1"}) == []
        [order] = await ex.fetch_closed_orders(params={"clientOrderId": "arb-1"})
        # 0.5 @ 50000.0 + 0.2 @ 50010.0 = 25000 + 10002 = 35002 USDT; fee 0.26 % = 65 + 26.0052
        assert (order["id"], order["clientOrderId"], order["status"]) == (placed["id"], "arb-1", "closed")
        assert (order["filled"], order["remaining"]) == (0.7, 0.0)
        assert order["fee"] == {"cost": "91.00520", "rate": None, "currency": "USDT"}
        assert order["info"]["cost"] == "35002.00000"
        # ccxt takes cost as average x filled, and Kraken's average has the pair's decimals:
        # 50002.857... prints 50002.9, so ccxt says 35002.03; the trades carry the exact figures
        assert (order["average"], order["cost"]) == (50002.9, pytest.approx(35002.03))
        trades = await ex.fetch_my_trades("BTC/USDT")
        assert sorted((tr["price"], tr["amount"], tr["cost"], tr["fee"]["cost"], tr["fee"]["currency"],
                       tr["order"], tr["takerOrMaker"]) for tr in trades) == [
            (50000.0, 0.5, 25000.0, 65.0, "USDT", placed["id"], "taker"),
            (50010.0, 0.2, 10002.0, 26.0052, "USDT", placed["id"], "taker")]
        balance = await ex.fetch_balance()
        # 100000 - 35002 - 91.0052
        assert (balance["USDT"]["total"], balance["BTC"]["total"]) == (64906.9948, 1.7)
        book = await ex.fetch_order_book("BTC/USDT")
        assert [level[:2] for level in book["asks"]] == [[50010.0, 0.8]]
        assert [level[:2] for level in book["bids"]] == [[49990.0, 1.0]]

    em = run(scenario, planted())
    assert em.exchange.balance("USDT").free == D("64906.9948")


def test_ioc_rest_is_canceled_with_what_filled_and_a_sell_pays_its_fee_in_quote() -> None:
    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        buy = await ex.create_order("BTC/USDT", "limit", "buy", 2, 50010, {"timeInForce": "IOC"})
        order = await ex.fetch_order(buy["id"])
        assert (order["status"], order["filled"], order["remaining"], order["clientOrderId"]) == (
            "canceled", 1.5, 0.5, "0")  # no cl_ord_id: ccxt falls back to userref 0, as on Kraken
        sell = await ex.create_order("BTC/USDT", "limit", "sell", 0.6, 49990, {"timeInForce": "IOC",
                                                                                "oflags": "fciq"})
        order = await ex.fetch_order(sell["id"])
        # 0.6 @ 49990.0 = 29994 USDT; fee 0.26 % = 77.9844 USDT
        assert (order["status"], order["filled"], order["fee"]["cost"], order["fee"]["currency"]) == (
            "closed", 0.6, "77.98440", "USDT")

    em = run(scenario, planted(usdt="200000"))
    # 200000 - (25000 + 50010) - 195.026 (fee of 75010) + 29994 - 77.9844
    assert em.exchange.balance("USDT").free == D("200000") - D("75010") - D("195.026") + D("29994") - D(
        "77.9844")
    assert em.exchange.balance("BTC").free == D("1.9")


def test_a_sell_without_oflags_pays_its_fee_in_base_which_ccxts_trades_label_quote() -> None:
    trades: list[t.Any] = []

    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        sell = await ex.create_order("BTC/USDT", "limit", "sell", 0.5, 49990, {"timeInForce": "IOC"})
        order = await ex.fetch_order(sell["id"])
        # Kraken's default for a sell is fcib: 0.26 % of 0.5 BTC = 0.0013 BTC
        assert (order["info"]["oflags"], order["fee"]["cost"], order["fee"]["currency"]) == (
            "fcib", "0.00130", "BTC")
        mine = await ex.fetch_my_trades("BTC/USDT")
        trades.extend((tr["fee"]["cost"], tr["fee"]["currency"]) for tr in mine)

    em = run(scenario, planted())
    assert trades == [(0.0013, "USDT")]  # ccxt's parse_trade: every Kraken fee in quote, wrongly
    assert (em.exchange.balance("BTC").free, em.exchange.balance("USDT").free) == (
        D("1") - D("0.5") - D("0.0013"), D("100000") + D("24995"))


def test_cl_ord_id_is_checked_refused_while_an_open_order_carries_it_and_free_once_it_closed() -> None:
    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        with pytest.raises(ccxt.BadRequest, match="EGeneral:Invalid arguments"):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "x" * 19})
        resting = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "rest-1"})
        with pytest.raises(ccxt.ExchangeError, match="EOrder:Duplicate order"):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": "rest-1"})
        # ccxt's fetch_order sends a clientOrderId as Kraken's integer userref, not as cl_ord_id
        with pytest.raises(ccxt.ExchangeError, match="EGeneral:Invalid arguments:userref"):
            await ex.fetch_order(resting["id"], params={"clientOrderId": "rest-1"})
        [found] = await ex.fetch_open_orders(params={"clientOrderId": "rest-1"})
        assert (found["id"], found["status"], found["price"], found["amount"]) == (
            resting["id"], "open", 49000.0, 0.1)
        assert (await ex.fetch_balance())["USDT"]["used"] == 4912.74  # 4900 + 0.26 % held for the fee
        await ex.cancel_order(resting["id"], params={"clientOrderId": "rest-1"})
        assert await ex.fetch_open_orders() == []
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(resting["id"])
        again = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 50000, {"clientOrderId": "rest-1",
                                                                                 "timeInForce": "IOC"})
        closed = await ex.fetch_closed_orders(params={"clientOrderId": "rest-1"})
        assert [(o["id"], o["status"]) for o in closed] == [  # ccxt sorts oldest first
            (resting["id"], "canceled"), (again["id"], "closed")]
        uid = str(uuid.uuid4())
        await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 49000, {"clientOrderId": uid})
        found_by_uuid = await ex.fetch_open_orders(params={"clientOrderId": uid})
        assert [o["clientOrderId"] for o in found_by_uuid] == [uid]

    run(scenario, planted())


def test_a_bad_signature_an_unknown_key_and_a_reused_nonce_are_refused_with_ccxts_exceptions() -> None:
    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        import ccxt.async_support as ccxt_async

        wrong = ccxt_async.kraken({"apiKey": KEY, "secret": OTHER_SECRET, "enableRateLimit": False})
        unknown = ccxt_async.kraken({"apiKey": "nobody", "secret": SECRET, "enableRateLimit": False})
        for other in (wrong, unknown):
            other.urls["api"] = ex.urls["api"]
        try:
            with pytest.raises(ccxt.ExchangeError, match="EAPI:Invalid signature") as info:
                await wrong.create_order("BTC/USDT", "limit", "buy", 0.1, 50000)
            assert type(info.value) is ccxt.ExchangeError  # ccxt 4.5 has no finer class for it
            with pytest.raises(ccxt.AuthenticationError, match="EAPI:Invalid key"):
                await unknown.fetch_balance()
        finally:
            await wrong.close()
            await unknown.close()
        ahead = ccxt_async.kraken({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False,
                                   "options": {"timeDifference": -3_600_000}})  # nonces an hour ahead
        ahead.urls["api"] = ex.urls["api"]
        try:
            await ahead.fetch_balance()
        finally:
            await ahead.close()
        with pytest.raises(ccxt.InvalidNonce, match="EAPI:Invalid nonce"):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 50000)
        assert not em.exchange.orders

    run(scenario, planted())


def test_rate_limit_5xx_and_rejection_faults_reach_ccxt_as_its_exception_classes() -> None:
    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        em.exchange.inject(Fault("status", endpoint="POST /0/private/AddOrder", status=429))
        with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded"):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 50000)
        assert em.exchange.requests[-1].status == 200  # Kraken answers a rate limit with HTTP 200
        em.exchange.inject(Fault("status", endpoint="POST /0/private/BalanceEx", status=503))
        with pytest.raises(ccxt.ExchangeNotAvailable, match="EService:Unavailable"):
            await ex.fetch_balance()
        em.exchange.inject(Fault("status", endpoint="GET /0/public/Depth", status=200,
                                 message="EService:Unavailable"))
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.fetch_order_book("BTC/USDT")
        em.exchange.inject(Fault("reject", reason="insufficient_funds"))
        with pytest.raises(ccxt.InsufficientFunds, match="EOrder:Insufficient funds"):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 50000)
        assert not em.exchange.orders
        em.exchange.inject(Fault("partial", fill=D("0.3")))
        placed = await ex.create_order("BTC/USDT", "limit", "buy", 0.4, 50000, {"timeInForce": "IOC"})
        order = await ex.fetch_order(placed["id"])
        assert (order["status"], order["filled"]) == ("canceled", 0.3)

    run(scenario, planted())


def test_a_lost_answer_leaves_the_order_placed_and_found_by_client_id_and_a_timeout_places_nothing() -> None:
    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        em.exchange.inject(Fault("lost", endpoint="POST /0/private/AddOrder"))
        with pytest.raises(ccxt.NetworkError):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.5, 50000, {"clientOrderId": "lost-1",
                                                                            "timeInForce": "IOC"})
        [order] = await ex.fetch_closed_orders(params={"clientOrderId": "lost-1"})
        assert (order["status"], order["filled"], order["clientOrderId"]) == ("closed", 0.5, "lost-1")
        em.exchange.inject(Fault("timeout", endpoint="POST /0/private/AddOrder"))
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.5, 50010, {"clientOrderId": "late-1",
                                                                            "timeInForce": "IOC"})
        assert await ex.fetch_closed_orders(params={"clientOrderId": "late-1"}) == []
        assert [r.endpoint for r in em.exchange.requests].count("POST /0/private/AddOrder") == 2

    em = run(scenario, planted(), timeout=500)
    assert len(em.exchange.orders) == 1


def test_the_subprocess_serves_keys_balances_and_the_paced_recording_from_the_command_line() -> None:
    command = [sys.executable, "-m", "tests.emulator", "kraken", "--port", "0", "--key", f"{KEY}={SECRET}",
               "--balance", "USDT=1234.5", "--pace", "0.001"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            base = proc.stdout.readline().strip()
            assert base.startswith("http://127.0.0.1:")

            async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
                here, there = em.base_url.removeprefix("http://"), base.removeprefix("http://")
                ex.urls["api"] = json.loads(json.dumps(ex.urls["api"]).replace(here, there))
                assert (await ex.fetch_balance())["USDT"]["free"] == 1234.5
                book = await ex.watch_order_book("XMR/USD")  # --pace replays the recording
                assert len(book["asks"]) == len(book["bids"]) == 10
                assert book["asks"][0][0] > book["bids"][0][0]

            run(scenario, pro=True)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_trades_history_pages_fifty_trades_newest_first_back_through_ofs() -> None:
    em = planted(usdt="1000000")
    em.exchange.set_book("BTC/USDT", [("49990.0", "1")], [("50000.0", "10")])
    for _ in range(TRADES_PAGE * 2 + 20):  # 120 trades of 0.001 BTC
        em.exchange.place_order("BTC/USDT", "buy", "limit", "0.001", "50000", time_in_force="IOC")
    newest_first = [kraken_id("T", tr.id) for tr in reversed(em.exchange.trades)]

    async def scenario(em: KrakenEmulator, ex: t.Any) -> None:
        pages = [await ex.fetch_my_trades(params={"ofs": ofs}) for ofs in (0, 50, 100, 150)]
        assert [len(p) for p in pages] == [50, 50, 20, 0]
        assert [{tr["id"] for tr in p} for p in pages] == [
            set(newest_first[:50]), set(newest_first[50:100]), set(newest_first[100:]), set()]
        sent = [r.params.get("ofs") for r in em.exchange.requests
                if r.endpoint == "POST /0/private/TradesHistory"]
        assert sent == ["0", "50", "100", "150"]

    run(scenario, em)
