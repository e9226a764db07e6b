"""The positions ledger: netting at average cost, re-marks on books, last known prices."""

from __future__ import annotations

import pytest

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.events import Position, PositionUpdate
from arbitrage.trading.positions import Positions
from tests.trading.helpers import T0, book, market

A = "alpha"


def ledger() -> tuple[Positions, Bus, BookStore, SimClock]:
    bus, store, clock = Bus(), BookStore(), SimClock(T0)
    positions = Positions(bus=bus, clock=clock, books=store, markets={A: {"BTC/USDT": market()}},
                          staleness_ms={A: 1000.0})
    return positions, bus, store, clock


def held(amount: float, cost: float, mark: float) -> Position:
    return Position(venue=A, asset="BTC", quote="USDT", amount=amount, cost=cost, mark=mark)


def test_an_opposite_residual_closes_the_position_at_average_cost_and_realizes_the_difference() -> None:
    positions, bus, store, _ = ledger()
    store.update(book(A, "BTC/USDT", [(104.0, 1.0)], [(106.0, 1.0)], T0))
    with bus.collect(PositionUpdate) as seen:
        positions.apply([held(0.6, 60.06, 104.0)])   # bought 0.6 at 100.1 a BTC
        positions.apply([held(-0.4, -42.0, 106.0)])  # sold 0.4 for 105 a BTC
        positions.apply([held(-0.2, -21.0, 106.0)])  # and the last 0.2
    # first close: 0.4 of 0.6 -> cost share 60.06 * 0.4 / 0.6 = 40.04; realized 42 - 40.04 = 1.96;
    # left 0.2 costing 20.02, marked at the bid 104: 20.8 - 20.02 = 0.78 unrealized
    # second close: 0.2 costing 20.02 for 21: +0.98; realized in all 2.94, flat
    assert [(u.position.amount, u.realized) for u in seen] == [
        (0.6, 0.0), (pytest.approx(0.2), pytest.approx(1.96)), (0.0, pytest.approx(2.94))]
    assert seen[1].position.cost == pytest.approx(20.02) and seen[1].position.mark == 104.0
    assert seen[1].position.unrealized == pytest.approx(0.78)
    assert positions.open() == () and positions.realized() == {"USDT": pytest.approx(2.94)}


def test_a_held_position_is_re_marked_on_its_books_at_most_once_a_second_and_flushed_at_stop() -> None:
    positions, bus, store, clock = ledger()
    store.update(book(A, "BTC/USDT", [(99.0, 1.0)], [(101.0, 1.0)], T0))
    positions.apply([held(1.0, 100.1, 99.0)])
    with bus.collect(PositionUpdate) as seen:
        for ms, bid in ((100, 98.0), (200, 97.0), (1100, 96.0)):
            clock.advance_to(T0 + ms * 1_000_000)
            update = book(A, "BTC/USDT", [(bid, 1.0)], [(101.0, 1.0)], clock.time_ns())
            store.update(update)
            positions.on_book(update)
        positions.on_book(book(A, "ETH/USDT", [(5.0, 1.0)], [(5.1, 1.0)], clock.time_ns()))  # not held
        positions.flush()
    # 98 at 100 ms: 0.1 s since the update of the open at T0 -> held back; 97 at 200 ms held back;
    # 96 at 1100 ms: 1.1 s since the last update -> published; flush: nothing new since
    assert [u.position.mark for u in seen] == [96.0]
    assert positions.unrealized() == {"USDT": pytest.approx(96.0 - 100.1)}


def test_without_a_usable_book_the_mark_is_the_last_known_price_flagged_stale() -> None:
    positions, _, store, clock = ledger()
    store.update(book(A, "BTC/USDT", [(99.0, 1.0)], [(101.0, 1.0)], T0))
    assert positions.mark(A, "BTC", "USDT", 1.0) == (99.0, False)   # long: best bid
    assert positions.mark(A, "BTC", "USDT", -1.0) == (101.0, False)  # short: best ask
    clock.advance_to(T0 + 2_000_000_000)  # the book is now older than alpha's 1 s limit
    assert positions.mark(A, "BTC", "USDT", 1.0) == (99.0, True)
    assert positions.mark(A, "ETH", "USDT", 1.0) == (0.0, True)  # no market: no price at all


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 0.0])
def test_a_malformed_side_never_becomes_a_mark(bad: float) -> None:
    """A book a source let through with a bad ask is a corrupt record: a short and a long are both
    marked at the last good prices (stale), never at NaN, inf or a negative price, nor at the bids
    of that record."""
    positions, _, store, _ = ledger()
    store.update(book(A, "BTC/USDT", [(99.0, 1.0)], [(101.0, 1.0)], T0))
    assert positions.mark(A, "BTC", "USDT", -1.0) == (101.0, False)
    assert positions.mark(A, "BTC", "USDT", 1.0) == (99.0, False)
    store.update(book(A, "BTC/USDT", [(99.5, 1.0)], [(bad, 1.0), (102.0, 1.0)], T0 + 1))
    assert positions.mark(A, "BTC", "USDT", -1.0) == (101.0, True)
    assert positions.mark(A, "BTC", "USDT", 1.0) == (99.0, True)


def test_with_no_market_against_the_quote_the_mark_goes_through_another_asset_then_mids_stale() -> None:
    bus, store, clock = Bus(), BookStore(), SimClock(T0)
    positions = Positions(bus=bus, clock=clock, books=store, staleness_ms={A: 1000.0},
                          markets={A: {"ETH/BTC": market("ETH/BTC"), "BTC/USDT": market()}})
    store.update(book(A, "ETH/BTC", [(0.05, 1.0)], [(0.052, 1.0)], T0))
    store.update(book(A, "BTC/USDT", [(100.0, 1.0)], [(102.0, 1.0)], T0))
    # a long sells ETH for BTC at 0.05, the BTC at 100: 5.0; a short buys back at 0.052 * 102 = 5.304
    assert positions.mark(A, "ETH", "USDT", 1.0) == (pytest.approx(5.0), False)
    assert positions.mark(A, "ETH", "USDT", -1.0) == (pytest.approx(5.304), False)
    clock.advance_to(T0 + 2_000_000_000)  # both books older than the 1 s limit: mids, flagged
    assert positions.mark(A, "ETH", "USDT", 1.0) == (pytest.approx(0.051 * 101.0), True)
