"""The exchange-neutral emulator state: matching, fees by fee side, balances, ids, faults."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.emulator.core import BookDiff, EmulatedExchange, Fault, MarketRules, Rejected


def exchange(fee_side: str = "get") -> EmulatedExchange:
    ex = EmulatedExchange("test", clock=lambda: 1000.0)
    ex.add_market(MarketRules("BTC/USDT", "BTCUSDT", "BTC", "USDT", amount_step=D("0.001"),
                              price_step=D("0.01"), min_amount=D("0.001"), min_cost=D(5),
                              taker_fee=D("0.001"), fee_side=fee_side))  # type: ignore[arg-type]
    ex.set_balance("USDT", 10_000)
    ex.set_balance("BTC", 1)
    ex.load_snapshot("BTC/USDT", [("99", "1"), ("98", "2")], [("100", "0.5"), ("101", "1")], update_id=10)
    return ex


def test_ioc_buy_takes_the_crossing_levels_expires_the_rest_and_pays_the_fee_in_base_received() -> None:
    ex = exchange("get")
    order = ex.place_order("BTC/USDT", "buy", "limit", "2", "101", "IOC", "c1")
    # 0.5 @ 100 + 1 @ 101 = 151 USDT; fee 0.1 % of 1.5 BTC = 0.0015 BTC
    assert (order.status, order.filled, order.cost, order.fee, order.fee_currency) == (
        "expired", D("1.5"), D("151.0"), D("0.0015"), "BTC")
    assert ex.balance("USDT").free == D("9849.0") and ex.balance("BTC").free == D("2.4985")
    assert ex.book("BTC/USDT").asks == {} and ex.order(client_order_id="c1") is order


def test_sell_pays_the_fee_in_quote_under_get_and_quote_rules() -> None:
    for side in ("get", "quote"):
        ex = exchange(side)
        ex.set_balance("BTC", 2)
        order = ex.place_order("BTC/USDT", "sell", "limit", "1.5", "98", "IOC")
        # 1 @ 99 + 0.5 @ 98 = 148 USDT; fee 0.148 USDT
        assert (order.status, order.cost, order.fee, order.fee_currency) == (
            "closed", D("148.0"), D("0.148"), "USDT")
        assert ex.balance("USDT").free == D("10147.852") and ex.balance("BTC").free == D("0.5")


def test_a_quote_fee_buy_pays_cost_plus_fee_in_quote() -> None:
    ex = exchange("quote")
    order = ex.place_order("BTC/USDT", "buy", "limit", "0.5", "100", "IOC")
    assert (order.fee, order.fee_currency) == (D("0.0500"), "USDT")
    assert ex.balance("USDT").free == D("10000") - D("50.0") - D("0.05")
    assert ex.balance("BTC").free == D("1.5")


def test_consumed_liquidity_is_published_as_one_own_diff_and_later_fed_ids_are_shifted() -> None:
    ex = exchange()
    seen: list[BookDiff] = []
    ex.add_book_listener(seen.append)
    ex.place_order("BTC/USDT", "buy", "limit", "0.7", "101", "IOC")
    assert [(d.asks, d.first_id, d.last_id, d.own) for d in seen] == [
        (((D(100), D(0)), (D(101), D("0.8"))), 11, 11, True)]
    assert ex.feed_diff("BTC/USDT", [], [("102", "3")], 9, 10) is None  # older than the book
    diff = ex.feed_diff("BTC/USDT", [("99", "0")], [], 11, 12)
    assert diff is not None and (diff.first_id, diff.last_id) == (12, 13)
    assert ex.book("BTC/USDT").levels("bids") == [(D(98), D(2))]


def test_set_book_sends_the_difference_with_removed_levels_at_zero() -> None:
    ex = exchange()
    diff = ex.set_book("BTC/USDT", [("99", "1")], [("100", "0.5"), ("100.5", "2")])
    assert sorted(diff.bids) == [(D(98), D(0))] and sorted(diff.asks) == [(D("100.5"), D(2)), (D(101), D(0))]
    assert diff.first_id == diff.last_id == 11


def test_duplicate_client_order_id_is_refused_even_after_the_first_order_closed() -> None:
    ex = exchange()
    ex.place_order("BTC/USDT", "buy", "limit", "0.1", "100", "IOC", "dup")
    with pytest.raises(Rejected) as info:
        ex.place_order("BTC/USDT", "buy", "limit", "0.1", "100", "IOC", "dup")
    assert info.value.reason == "duplicate_client_order_id" and len(ex.orders) == 1


@pytest.mark.parametrize(("amount", "price", "reason"), [
    ("0.0005", "100", "invalid_order"),  # below the minimum and off the step
    ("0.01", "100.001", "invalid_order"),  # price off its step
    ("0.01", "100", "invalid_order"),  # cost 1 < 5
    ("200", "100", "insufficient_funds"),  # 20,000 USDT needed
])
def test_orders_off_the_rules_or_beyond_the_balance_are_refused_and_leave_no_trace(amount: str, price: str,
                                                                                   reason: str) -> None:
    ex = exchange()
    with pytest.raises(Rejected) as info:
        ex.place_order("BTC/USDT", "buy", "limit", amount, price, "IOC")
    assert info.value.reason == reason and not ex.orders and not ex.trades


def test_gtc_remainder_rests_reserving_funds_and_cancel_releases_them() -> None:
    ex = exchange()
    order = ex.place_order("BTC/USDT", "buy", "limit", "1", "100", "GTC")
    assert (order.status, order.filled) == ("open", D("0.5"))
    assert ex.balance("USDT").used == D("50.0") and ex.balance("USDT").free == D("10000") - 50 - 50
    trade = ex.fill_resting(order.id, "0.2")
    assert trade.maker and ex.balance("USDT").used == D("30.0")
    ex.cancel_order(order.id)
    assert order.status == "canceled" and ex.balance("USDT").used == 0
    assert ex.balance("USDT").free == D("10000") - 50 - 20
    with pytest.raises(Rejected):
        ex.cancel_order(order.id)


def test_reject_and_partial_faults_apply_to_the_next_order_once() -> None:
    ex = exchange()
    ex.inject(Fault("reject", reason="insufficient_funds"), Fault("partial", fill=D("0.2")))
    with pytest.raises(Rejected):
        ex.place_order("BTC/USDT", "buy", "limit", "1", "101", "IOC")
    assert ex.place_order("BTC/USDT", "buy", "limit", "1", "101", "IOC").filled == D("0.2")
    assert ex.place_order("BTC/USDT", "buy", "limit", "0.1", "101", "IOC").filled == D("0.1")
    assert not ex.faults


def test_a_fill_on_cancel_order_rests_unfilled_and_its_cancel_fills_it_then_is_refused() -> None:
    ex = exchange()
    ex.inject(Fault("fill_on_cancel"))
    order = ex.place_order("BTC/USDT", "buy", "limit", "0.5", "100", "GTC", "c1")
    assert (order.status, order.filled, ex.balance("USDT").used) == ("open", 0, D("50.0"))
    with pytest.raises(Rejected, match="Unknown order"):
        ex.cancel_order(client_order_id="c1")
    # filled whole at its limit as a maker: 50 USDT, fee 0.1 % of the 0.5 BTC received
    assert (order.status, order.filled, order.fee, order.trades[0].maker) == (
        "closed", D("0.5"), D("0.0005"), True)
    assert (ex.balance("USDT").free, ex.balance("USDT").used, ex.balance("BTC").free) == (
        D("9950.0"), 0, D("1.4995"))
    assert ex.book("BTC/USDT").levels("asks")[0] == (D("100"), D("0.5"))  # a counterparty of its own


def test_http_faults_match_their_endpoint_pattern_and_symbol() -> None:
    ex = exchange()
    ex.inject(Fault("status", endpoint="POST /api/v3/order", status=429, times=2), Fault("gap", symbol="B"))
    assert ex.take_fault({"status"}, endpoint="GET /api/v3/depth") is None
    assert ex.take_fault({"status"}, endpoint="POST /api/v3/order") is not None
    assert ex.take_fault({"gap"}, symbol="A") is None and ex.take_fault({"gap"}, symbol="B") is not None
    assert len(ex.faults) == 1
