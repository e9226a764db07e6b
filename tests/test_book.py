"""The one book store: latest book per venue and symbol, minus what our own orders took or have in flight."""

from __future__ import annotations

from decimal import Decimal

import hypothesis
import hypothesis.strategies as st
import pytest

from arbitrage.book import EPS, BookStore, round_down, round_price
from arbitrage.book_check import check_book
from tests.trading.helpers import book


def test_store_hides_what_we_took_until_the_level_changes():
    store = BookStore()
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0), (101.0, 2.0)], 1))
    store.take("a", "BTC/USDT", "asks", 100.0, 0.4)
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(100.0, pytest.approx(0.6)), (101.0, 2.0)]
    store.take("a", "BTC/USDT", "asks", 100.0, 0.6)
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(101.0, 2.0)]
    assert list(store.levels("a", "BTC/USDT", "bids")) == [(99.0, 1.0)]
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0), (101.0, 2.0)], 2))
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(101.0, 2.0)]  # same level, same size: still ours
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(101.0, 2.0)], 3))
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0), (101.0, 2.0)], 4))
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(100.0, 1.0), (101.0, 2.0)]  # gone and back: fresh
    assert store.taken() == {}


def test_taking_is_kept_per_venue_and_symbol_and_the_raw_snapshot_is_untouched():
    store = BookStore()
    a = book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0)], 1)
    b = book("b", "BTC/USDT", [(99.5, 2.0)], [(100.5, 2.0)], 1)
    for snapshot in (a, b):
        store.update(snapshot)
    store.take("a", "BTC/USDT", "bids", 99.0, 0.25)
    assert list(store.levels("a", "BTC/USDT", "bids")) == [(99.0, 0.75)]
    assert list(store.levels("b", "BTC/USDT", "bids")) == [(99.5, 2.0)]
    assert store.get("a", "BTC/USDT") is a  # the snapshot as the venue published it
    assert dict(store.venues("BTC/USDT")) == {"a": a, "b": b}
    assert store.by_symbol == {"BTC/USDT": {"a": a, "b": b}}


def test_a_take_never_exceeds_the_level_and_unknown_books_or_prices_are_ignored():
    store = BookStore()
    store.take("a", "BTC/USDT", "asks", 100.0, 1.0)  # no book yet: nothing to reduce
    assert store.taken() == {} and list(store.levels("a", "BTC/USDT", "asks")) == []
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0)], 1))
    store.take("a", "BTC/USDT", "asks", 100.5, 1.0)  # a price the snapshot does not show
    assert store.taken() == {}
    store.take("a", "BTC/USDT", "asks", 100.0, 0.7)
    store.take("a", "BTC/USDT", "asks", 100.0, 0.7)
    assert store.taken() == {("a", "BTC/USDT"): {"asks@100.0": 1.0}}
    assert list(store.levels("a", "BTC/USDT", "asks")) == []


def test_an_order_in_flight_holds_its_levels_until_released_and_the_venue_still_fills_them():
    store = BookStore()
    snapshot = book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)], 1)
    store.update(snapshot)
    assert not store.touched("a", "BTC/USDT")
    assert store.levels("a", "BTC/USDT", "asks") is snapshot.asks  # untouched: the snapshot's own side
    # a buy of 2.5 limited at 101 may take 1 @ 100 and 1.5 @ 101 (102 is past its limit)
    assert store.reserve("o1", "a", "BTC/USDT", "asks", 101.0, 2.5) == 0.0  # nothing of ours in the way
    assert store.touched("a", "BTC/USDT")
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(101.0, 0.5), (102.0, 5.0)]
    assert list(store.fillable("a", "BTC/USDT", "asks")) == list(snapshot.asks)  # unknown to the venue
    # a second order of 1 limited at 101 finds only 0.5 left: the other 0.5 is held by o1
    assert store.reserve("o2", "a", "BTC/USDT", "asks", 101.0, 1.0) == pytest.approx(0.5)
    assert store.reserve("o2", "a", "BTC/USDT", "asks", 103.0, 1.0) == 0.0  # 102 is free
    store.release("o2")
    # a new snapshot does not free what an order still in flight may take
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 3.0), (101.0, 2.0), (102.0, 5.0)], 2))
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(100.0, 2.0), (101.0, 0.5), (102.0, 5.0)]
    # the result is known: the fill is taken, the reservation gone
    store.take("a", "BTC/USDT", "asks", 100.0, 1.0)
    store.release("o1")
    store.release("o1")  # idempotent
    assert store.reserved() == {}
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(100.0, 2.0), (101.0, 2.0), (102.0, 5.0)]
    assert list(store.levels("a", "BTC/USDT", "bids")) == [(99.0, 1.0)]


def test_reserving_again_under_the_same_id_replaces_the_first_reservation():
    store = BookStore()
    store.update(book("a", "BTC/USDT", [(99.0, 1.0), (98.0, 1.0)], [(100.0, 1.0)], 1))
    assert store.reserve("o1", "a", "BTC/USDT", "bids", 98.0, 1.5) == 0.0
    assert store.reserve("o1", "a", "BTC/USDT", "bids", 98.0, 1.5) == 0.0  # not in its own way
    assert store.reserved() == {("a", "BTC/USDT"): {"bids@99.0": 1.0, "bids@98.0": pytest.approx(0.5)}}
    assert store.reserve("o2", "a", "BTC/USDT", "bids", 99.0, 1.0) == 1.0  # all of 99 is o1's
    assert store.reserve("o3", "a", "BTC/USDT", "bids", 99.5, 1.0) == 0.0  # thin, but not by us
    assert store.reserve("o4", "b", "BTC/USDT", "bids", 99.0, 1.0) == 0.0  # no book
    assert store.reserved() == {("a", "BTC/USDT"): {"bids@99.0": 1.0, "bids@98.0": pytest.approx(0.5)}}


def test_round_down_is_always_on_the_grid_and_forgives_only_float_noise() -> None:
    assert round_down(1.99999999999, 1.0) == 1.0  # a real shortfall of 1e-11: the step below
    assert round_down(0.3 - 0.2, 0.01) == 0.1  # 0.09999999999999998: noise of our own arithmetic
    assert round_down(0.3, 0.1) == 0.3
    assert round_down(0.29, 0.1) == 0.2
    assert round_down(5.0, 0.0) == 5.0
    assert round_down(0.0, 0.001) == 0.0


@hypothesis.given(st.floats(0, 1e6, allow_nan=False),
                  st.sampled_from([1e-8, 1e-5, 0.001, 0.01, 0.1, 1.0, 5.0]))
def test_round_down_never_leaves_the_grid_nor_exceeds_the_amount_by_more_than_eps(amount: float,
                                                                                  step: float) -> None:
    value = round_down(amount, step)
    assert value <= amount + EPS
    assert amount - value < step + EPS  # never a whole step too little
    units = round(value / step)
    assert value == round(units * step, 12)


def test_dropping_a_venue_forgets_its_books_and_what_was_taken_from_them_but_keeps_reservations():
    store = BookStore()
    for venue, symbol in (("a", "BTC/USDT"), ("a", "ETH/USDT"), ("b", "BTC/USDT")):
        store.update(book(venue, symbol, [(99.0, 1.0)], [(101.0, 1.0)], 1))
    store.take("a", "BTC/USDT", "asks", 101.0, 0.5)
    store.reserve("o1", "a", "ETH/USDT", "asks", 101.0, 0.25)
    store.drop("a", "BTC/USDT")
    assert store.get("a", "BTC/USDT") is None and store.get("a", "ETH/USDT") is not None
    assert store.get("b", "BTC/USDT") is not None and not store.touched("a", "BTC/USDT")
    store.drop("a")
    assert store.get("a", "ETH/USDT") is None and list(store.venues("BTC/USDT")) == ["b"]
    assert store.touched("a", "ETH/USDT")  # the order in flight still holds its levels
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(101.0, 1.0)], 2))
    assert list(store.levels("a", "BTC/USDT", "asks")) == [(101.0, 1.0)]  # the fresh book, nothing taken


TICKS = [1e-8, 1e-6, 0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0]
"""Price ticks of real spot markets (Binance's and Kraken's among them)."""


@hypothesis.given(st.sampled_from(TICKS), st.integers(1, 10_000_000), st.floats(0.0, 1.0, exclude_max=True),
                  st.booleans())
def test_a_limit_price_goes_on_the_grid_towards_the_book_never_further_than_asked(
        step: float, units: int, frac: float, sell: bool) -> None:
    # a buy's limit never rises above the price asked, a sale's never falls below it (a price a
    # hair under a grid point, float noise, counts as on it), and neither moves a whole tick
    price = (units + frac) * step
    limit = round_price(price, step, up=sell)
    on_grid = round(limit / step)
    assert abs(limit - on_grid * step) <= 1e-9 * step + 1e-12 * limit
    slack = 1e-9 * step + 1e-12 * price
    if sell:
        assert price - slack <= limit < price + step
    else:
        assert price - step < limit <= price + slack
    if frac == 0.0:  # already on the grid: unchanged
        assert limit == pytest.approx(price, rel=1e-12)


@pytest.mark.parametrize(("bids", "expected"), [
    ([(2.0, 1.0), (1.0, 3)], None),  # ints are numbers
    ([(2.0, 1.0), (2.0, 1.0)], "unsorted"),
    ([(10**400, 1.0)], "level"),  # beyond float range: an overflow, compiled or not
    ([(Decimal("2"), 1.0)], "level"),  # not a float: Decimals are converted by the sources
    ([("2", 1.0)], "level"),
    ([(None, 1.0)], "level"),
    ([(2.0,)], "level"),
    ([(float("nan"), 1.0)], "level"),
    ([(2.0, float("inf"))], "level"),
    ([(2.0, -1.0)], "level"),
])
def test_check_book_answers_the_same_compiled_and_interpreted(bids: list, expected: str | None) -> None:
    # make test runs this file both ways (ARB_INTERPRETED=1): the answers are pinned here
    assert check_book(bids, [(3.0, 1.0)]) == expected
