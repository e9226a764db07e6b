"""Triangular sizing by hand, by property (hypothesis), and the plugin on a real bus."""

from __future__ import annotations

import math
import typing as t

import msgspec
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.events import BalanceUpdate, BookUpdate, FeeSide, Market, MarketsLoaded, Opportunity
from arbitrage.plugin import Context
from arbitrage.settings import Settings
from arbitrage.strategies.triangular import Found, TriangularDetector, TriangularStrategy
from arbitrage.strategies.triangular.sizing import reserved

Levels = tuple[tuple[float, float], ...]


def market(symbol: str, fee: float = 0.0, fee_side: FeeSide = "quote", **rules: float) -> Market:
    base, quote = symbol.split("/")
    return Market(symbol=symbol, base=base, quote=quote, taker_fee=fee, fee_side=fee_side, **rules)


def book(symbol: str, bids: Levels, asks: Levels, ts: int = 0, venue: str = "v") -> BookUpdate:
    return BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks, ts_event=ts, ts_init=ts)


# USDT -> BTC -> ETH -> USDT pays 1/100 * 1/0.05 * 5.1 = 1.02 at the top; the reverse cycle loses.
BTC_USDT = book("BTC/USDT", ((99.0, 5.0),), ((100.0, 1.0), (101.0, 1.0)))
ETH_BTC = book("ETH/BTC", ((0.049, 100.0),), ((0.05, 10.0), (0.0505, 100.0)))
ETH_USDT = book("ETH/USDT", ((5.1, 15.0), (5.0, 100.0)), ((5.2, 100.0),))
BOOKS = (BTC_USDT, ETH_BTC, ETH_USDT)


def detect(fee: float = 0.0, books: tuple[BookUpdate, ...] = BOOKS, balances: dict[str, float] | None = None,
           fee_side: FeeSide = "quote", **kwargs: object) -> list[Found]:
    rules = kwargs.pop("rules", {})
    assert isinstance(rules, dict)
    markets = [market(b.symbol, fee, fee_side, **rules.get(b.symbol, {})) for b in books]
    store = BookStore()
    detector = TriangularDetector("v", markets, store, **kwargs)  # type: ignore[arg-type]
    detector.set_balances(balances)
    for b in books:
        store.update(b)
        detector.refresh(b)
    return detector.evaluate_all()


class Fed:
    """A detector with its own store, fed as the engine feeds the strategy: store first, then update."""

    def __init__(self, markets: list[Market], **kwargs: t.Any) -> None:
        self.store = BookStore()
        self.detector = TriangularDetector("v", markets, self.store, **kwargs)

    def update(self, b: BookUpdate, now: int) -> t.Sequence[Found]:
        self.store.update(b)
        return self.detector.update(b, now)


def only(found: list[Found]) -> Found:
    assert len(found) == 1, found
    return found[0]


def test_depth_walk_takes_levels_while_the_marginal_unit_pays() -> None:
    # x in USDT. Segment 1: ETH/BTC's first level (0.5 BTC = 50 USDT) binds, marginal 1.02.
    # Segment 2: ETH/BTC at 0.0505, until ETH/USDT's 15 ETH at 5.1 are used: 25.25 USDT more,
    # marginal 0.01 / 0.0505 * 5.1 = 1.0099. Next ETH/USDT level (5.0) gives 0.990: stop.
    f = only(detect())
    assert f.cycle.assets == ("USDT", "BTC", "ETH")
    assert f.spent == pytest.approx(75.25)
    assert f.received == pytest.approx(76.5)
    assert f.profit == pytest.approx(1.25)
    assert f.profit_bps == pytest.approx(1.25 / 75.25 * 1e4)
    btc, eth, sell = f.legs
    assert (btc.symbol, btc.side, btc.amount, btc.price, btc.expected_price) == (
        "BTC/USDT", "buy", pytest.approx(0.7525), 100.0, pytest.approx(100.0))
    assert (eth.symbol, eth.side, eth.amount, eth.price) == ("ETH/BTC", "buy", pytest.approx(15.0), 0.0505)
    assert eth.expected_price == pytest.approx(0.7525 / 15)
    assert (sell.symbol, sell.side, sell.amount, sell.price, sell.expected_price) == (
        "ETH/USDT", "sell", pytest.approx(15.0), 5.1, pytest.approx(5.1))


def test_taker_fees_apply_on_every_leg_in_quote() -> None:
    # Fee 0.1 %: buys cost notional * 1.001, sells pay notional * 0.999. Marginal rates fall to
    # 1.0169 and 1.0069, both > 1, so the same 15 ETH are traded: 0.7525 BTC of ETH costs
    # 0.7532525 BTC, bought for 75.40057525 USDT; 15 ETH sell for 76.5 * 0.999 = 76.4235.
    f = only(detect(fee=0.001))
    assert f.spent == pytest.approx(75.40057525)
    assert f.received == pytest.approx(76.4235)
    assert f.legs[0].amount == pytest.approx(0.7532525)
    assert all(leg.fee_rate == 0.001 for leg in f.legs)


def test_on_a_get_venue_each_leg_passes_on_what_arrives_net_of_a_fee_taken_from_it() -> None:
    # Fee 0.1 % where Binance takes it: a buy pays its notional and receives 0.999 of what it buys,
    # a sale pays in USDT. Marginal rates 0.999^3 * 1.02 = 1.01694 and 0.999^3 * 1.0099 = 1.00687, so
    # the 15 ETH bid at 5.1 is sold again -- and must arrive: 15 / 0.999 = 15.015015 ETH are bought
    # for 0.5 + 5.015015 * 0.0505 = 0.75325826 BTC, which arrive from 0.75325826 / 0.999 =
    # 0.75401227 BTC bought for 75.401227 USDT. 15 ETH sell for 76.5 * 0.999 = 76.4235 USDT.
    f = only(detect(fee=0.001, fee_side="get"))
    btc, eth, sell = f.legs
    assert [leg.amount for leg in f.legs] == [pytest.approx(0.754012270528787, rel=1e-12),
                                              pytest.approx(15.015015015015015, rel=1e-12),
                                              pytest.approx(15.0, rel=1e-12)]
    assert [leg.fee_in_base for leg in f.legs] == [True, True, False]
    assert btc.received == pytest.approx(eth.spent, rel=1e-12)  # each leg spends what arrived
    assert eth.received == pytest.approx(sell.spent, rel=1e-12)
    assert f.spent == pytest.approx(75.40122705287871, rel=1e-12)
    assert f.received == pytest.approx(76.4235, rel=1e-12)
    assert f.profit == pytest.approx(1.0222729471212944, rel=1e-9)
    assert f.profit_bps == pytest.approx(135.57776008, rel=1e-9)
    # a buy on a "get" market reserves only amount * limit: 0.754012 * 100 USDT
    assert reserved(btc) == pytest.approx(75.4012270528787, rel=1e-12)
    # the top-of-book rates, fee included: BTC/USDT sold at 99 * 0.999 (the sale pays in USDT),
    # bought at 0.999 BTC per 100 USDT ("get"); on a "give" market the other way round
    for fee_side, sell_rate, buy_rate in (("get", 99 * 0.999, 0.999 / 100), ("give", 99 / 1.001, 1 / 100.1)):
        store = BookStore()
        detector = TriangularDetector("v", [market(b.symbol, 0.001, fee_side) for b in BOOKS], store)
        store.update(BTC_USDT)
        detector.refresh(BTC_USDT)
        assert detector.check.rate(0) == pytest.approx(sell_rate, rel=1e-15)
        assert detector.check.rate(1) == pytest.approx(buy_rate, rel=1e-15)


def test_average_rate_bound_cuts_a_level_at_min_profit() -> None:
    # min 180 bps: segment 2's marginal 1.0099 < 1.018, so x grows only until the average is
    # 1.018: (51 - 1.018 * 50) / (1.018 - 1.0099009901) = 12.3472 USDT past 50.
    f = only(detect(min_profit_bps=180.0))
    assert f.spent == pytest.approx(50.0 + 0.1 / (1.018 - 0.2 / 1.01 * 5.1), rel=1e-6)
    assert f.profit_bps == pytest.approx(180.0, abs=1e-4)
    assert f.profit_bps >= 180.0


def test_nothing_when_min_profit_exceeds_the_top_of_book_rate() -> None:
    assert detect(min_profit_bps=201.0) == []


def test_precision_rounds_down_then_trims_the_first_leg_to_what_the_second_uses() -> None:
    # Steps: BTC 0.001, ETH 0.1. Forward: 0.7525 -> 0.752 BTC; it buys 14.990 -> 14.9 ETH for
    # 0.5 + 4.9 * 0.0505 = 0.74745 BTC; trimmed back, leg 1 buys 0.748 BTC for 74.8 USDT.
    rules = {"BTC/USDT": {"amount_step": 0.001}, "ETH/BTC": {"amount_step": 0.1},
             "ETH/USDT": {"amount_step": 0.1}}
    f = only(detect(rules=rules))
    assert [leg.amount for leg in f.legs] == [pytest.approx(0.748), pytest.approx(14.9), pytest.approx(14.9)]
    assert f.spent == pytest.approx(74.8)
    assert f.received == pytest.approx(14.9 * 5.1)
    assert f.profit == pytest.approx(75.99 - 74.8)


def test_minimum_cost_or_amount_not_met_gives_nothing() -> None:
    assert detect(rules={"ETH/USDT": {"min_cost": 100.0}}) == []
    assert detect(rules={"ETH/BTC": {"min_amount": 20.0}}) == []
    assert len(detect(rules={"ETH/USDT": {"min_cost": 70.0}, "ETH/BTC": {"min_amount": 14.0}})) == 1


def test_start_balance_caps_the_size() -> None:
    f = only(detect(balances={"USDT": 30.0, "BTC": 10.0, "ETH": 100.0}))
    assert f.spent == pytest.approx(30.0)
    assert f.received == pytest.approx(30.6)


def test_every_legs_input_fits_its_balance_when_legs_run_concurrently() -> None:
    f = only(detect(balances={"USDT": 1000.0, "BTC": 0.1, "ETH": 100.0}))
    assert f.legs[1].spent == pytest.approx(0.1)
    assert f.spent == pytest.approx(10.0)
    f = only(detect(balances={"USDT": 1000.0, "BTC": 10.0, "ETH": 2.0}))
    assert f.legs[2].amount == pytest.approx(2.0)


def test_sequential_legs_need_only_the_start_asset() -> None:
    f = only(detect(balances={"USDT": 1000.0}, sequential=True))
    assert f.spent == pytest.approx(75.25)
    assert detect(balances={"USDT": 1000.0}) == []  # concurrent legs need BTC and ETH on hand


def test_max_notional_caps_the_start_amount_in_dollars() -> None:
    assert only(detect(max_notional=20.0)).spent == pytest.approx(20.0)


def test_max_notional_converts_a_non_dollar_start_through_its_dollar_market() -> None:
    # start BTC (configured); 40 dollars at BTC/USDT's bid 99 is 0.40404 BTC, more than the
    # 0.0505 * 100 BTC the cycle can use? No: BTC -> ETH -> USDT -> BTC is the losing direction,
    # so use the winning one from BTC: BTC -> ETH (buy at 0.05) -> USDT (5.1) -> BTC (ask 100).
    # BTC is valued at BTC/USDT's mid (99 + 100) / 2 = 99.5, the risk gate's rule (arbitrage.valuation)
    f = only(detect(max_notional=19.9, start_assets=["BTC"]))
    assert f.cycle.assets == ("BTC", "ETH", "USDT")
    assert f.spent == pytest.approx(19.9 / 99.5)


def test_cycle_whose_start_cannot_be_valued_is_skipped_under_max_notional() -> None:
    books = (book("ETH/BTC", ((0.05, 10.0),), ((0.0501, 10.0),)),
             book("BNB/BTC", ((0.0102, 10.0),), ((0.0103, 10.0),)),
             book("BNB/ETH", ((0.19, 10.0),), ((0.195, 10.0),)))
    assert detect(books=books) != []
    assert detect(books=books, max_notional=100.0) == []


def test_crossed_book_is_never_used() -> None:
    crossed = book("ETH/USDT", ((5.3, 15.0),), ((5.2, 100.0),))
    assert detect(books=(BTC_USDT, ETH_BTC, crossed)) == []


def test_empty_side_gives_nothing_through_that_side() -> None:
    assert detect(books=(BTC_USDT, ETH_BTC, book("ETH/USDT", (), ((5.2, 1.0),)))) == []


def test_update_evaluates_only_cycles_through_the_updated_market() -> None:
    markets = [market(b.symbol) for b in BOOKS] + [market("SOL/USDT"), market("SOL/BTC")]
    fed = Fed(markets)
    assert [len(fed.update(b, 0)) for b in BOOKS] == [0, 0, 1]
    assert fed.detector.passed == 1  # sized once: when the last of the three books arrived
    sol = book("SOL/USDT", ((10.0, 1.0),), ((10.1, 1.0),))
    assert not fed.update(sol, 0)
    assert fed.detector.passed == 1


def test_update_ignores_a_stale_book_and_stale_partners() -> None:
    markets = [market(b.symbol) for b in BOOKS]
    fed = Fed(markets, staleness_ms=1000.0)
    fed.update(BTC_USDT, 0)
    fed.update(ETH_BTC, 0)
    assert not fed.update(ETH_USDT, 2_000_000_000)  # ETH/USDT itself is stale (ts 0)
    fresh = msgspec.structs.replace(ETH_USDT, ts_event=2_000_000_000)
    assert not fed.update(fresh, 2_000_000_000)  # its partners are stale
    assert fed.detector.skipped_stale == 2
    assert len(fed.update(fresh, 900_000_000)) == 1


def test_update_sizes_at_most_max_candidates() -> None:
    fed = Fed([market(b.symbol) for b in BOOKS], max_candidates=0)
    for b in BOOKS:
        assert not fed.update(b, 0)


def test_update_sizes_the_best_top_of_book_cycles_first_when_more_pass_than_max_candidates() -> None:
    # Through BTC/USDT: USDT -> BTC -> ETH -> USDT pays 2 % at top of book, USDT -> BTC -> SOL -> USDT
    # pays 1 % (1/100 * 1/0.01 * 1.01); both pass once BTC/USDT arrives.
    sol_btc = book("SOL/BTC", ((0.0099, 100.0),), ((0.01, 100.0),))
    sol_usdt = book("SOL/USDT", ((1.01, 100.0),), ((1.02, 100.0),))
    books = (ETH_BTC, ETH_USDT, sol_btc, sol_usdt, BTC_USDT)
    via_eth, via_sol = ("USDT", "BTC", "ETH"), ("USDT", "BTC", "SOL")
    for limit, expected in ((1, [via_eth]), (2, [via_eth, via_sol])):
        fed = Fed([market(b.symbol) for b in books], max_candidates=limit)
        found = [fed.update(b, 0) for b in books][-1]
        assert [f.cycle.assets for f in found] == expected
        assert fed.detector.passed == limit
    assert found[1].profit_bps == pytest.approx(100.0)


def test_four_leg_cycles_are_found_with_max_legs_4() -> None:
    books = (book("BTC/USDT", ((99.0, 1.0),), ((100.0, 1.0),)),
             book("ETH/BTC", ((0.049, 100.0),), ((0.05, 100.0),)),
             book("SOL/ETH", ((0.09, 100.0),), ((0.1, 100.0),)),
             book("SOL/USDT", ((0.51, 100.0),), ((0.52, 100.0),)))
    assert detect(books=books) == []
    f = only(detect(books=books, max_legs=4))  # 1/100 * 1/0.05 * 1/0.1 * 0.51 = 1.02
    assert f.cycle.assets == ("USDT", "BTC", "ETH", "SOL")
    assert len(f.legs) == 4
    assert f.received / f.spent == pytest.approx(1.02)


# -- properties -----------------------------------------------------------------------------------

ASSETS = ("USDT", "BTC", "ETH", "SOL")
PRICE = {"USDT": 1.0, "BTC": 100.0, "ETH": 5.0, "SOL": 0.5}
SYMBOLS = ("BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "SOL/BTC", "SOL/ETH")


@st.composite
def venues(draw: st.DrawFn) -> tuple[list[Market], list[BookUpdate]]:
    fee = draw(st.sampled_from([0.0, 0.0005, 0.001, 0.002]))
    fee_side = draw(st.sampled_from(["quote", "quote", "get", "base", "give"]))
    markets, books = [], []
    for symbol in SYMBOLS:
        base, quote = symbol.split("/")
        fair = PRICE[base] / PRICE[quote] * (1.0 + draw(st.floats(-0.03, 0.03)))
        step = draw(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.1]))
        markets.append(Market(symbol=symbol, base=base, quote=quote, taker_fee=fee, fee_side=fee_side,
                              amount_step=step,
                              min_amount=draw(st.sampled_from([0.0, 0.0, 0.05])),
                              min_cost=draw(st.sampled_from([0.0, 0.0, 0.01 * PRICE[quote] ** -1]))))
        sides = []
        for sign in (-1, 1):
            levels, price = [], fair * (1.0 + sign * draw(st.floats(0.0, 0.005)))
            for _ in range(draw(st.integers(1, 5))):
                levels.append((price, draw(st.floats(0.01, 5.0)) * 10.0 / PRICE[base]))
                price *= 1.0 + sign * draw(st.floats(0.0001, 0.01))
            sides.append(tuple(levels))
        books.append(book(symbol, sides[0], sides[1]))
    return markets, books


balances_st = st.one_of(st.none(),
                        st.fixed_dictionaries({a: st.floats(0.0, 30.0 / PRICE[a]) for a in ASSETS}))


def replay(found: Found, books: dict[str, BookUpdate], markets: dict[str, Market]) -> dict[str, float]:
    """Execute the legs as IOC limit orders against the books; net change per asset."""
    delta = dict.fromkeys(ASSETS, 0.0)
    for leg in found.legs:
        m, b = markets[leg.symbol], books[leg.symbol]
        levels = b.asks if leg.side == "buy" else b.bids
        left, notional = leg.amount, 0.0
        for price, size in levels:
            if left <= 0 or (price > leg.price if leg.side == "buy" else price < leg.price):
                break
            take = min(size, left)
            notional += take * price
            left -= take
        assert left <= leg.amount * 1e-12, "a leg does not fill within its limit"
        # the fee where the market takes it: the base's share of a buy ("get", "base") or on top of
        # what a sale gives ("give", "base"), else notional * fee in quote
        in_base = m.fee_side == "base" or m.fee_side == ("get" if leg.side == "buy" else "give")
        fee = m.taker_fee
        if leg.side == "buy":
            delta[m.quote] -= notional * (1.0 if in_base else 1 + fee)
            delta[m.base] += leg.amount * (1 - fee if in_base else 1.0)
        else:
            delta[m.base] -= leg.amount * (1 + fee if in_base else 1.0)
            delta[m.quote] += notional * (1.0 if in_base else 1 - fee)
        if m.amount_step:
            units = leg.amount / m.amount_step
            assert abs(units - round(units)) < 1e-6
        assert leg.amount >= m.min_amount and notional >= m.min_cost
    return delta


@settings(max_examples=300, deadline=None)
@given(venues(), st.sampled_from([0.0, 0.0, 5.0, 50.0]), balances_st, st.sampled_from([None, 10.0, 1e6]),
       st.booleans(), st.sampled_from([3, 4]))
def test_every_opportunity_is_profitable_when_replayed_and_fits_balances(
        venue: tuple[list[Market], list[BookUpdate]], min_bps: float, balances: dict[str, float] | None,
        max_notional: float | None, sequential: bool, max_legs: int) -> None:
    markets, books = venue
    store = BookStore()
    detector = TriangularDetector("v", markets, store, min_profit_bps=min_bps, max_notional=max_notional,
                                  sequential=sequential, max_legs=max_legs)
    detector.set_balances(balances)
    for b in books:
        store.update(b)
        detector.refresh(b)
    by_symbol = {b.symbol: b for b in books}
    by_market = {m.symbol: m for m in markets}
    found_all = detector.evaluate_all()
    event(f"opportunities: {min(len(found_all), 3)}")
    for found in found_all:
        delta = replay(found, by_symbol, by_market)
        start = found.cycle.start
        assert delta[start] == pytest.approx(found.profit, rel=1e-9, abs=1e-12)
        assert delta[start] >= min_bps / 1e4 * found.spent - 1e-12 * found.spent
        assert delta[start] > 0
        for asset in found.cycle.assets[1:]:
            assert delta[asset] >= -1e-12 * max(1.0, abs(found.legs[0].amount)), "used more than received"
        if balances is not None:
            assert found.spent <= balances[start]
            if not sequential:
                for leg, asset in zip(found.legs, found.cycle.assets, strict=True):
                    assert reserved(leg) <= balances[asset]  # what the venue holds back, not the VWAP spend
        if max_notional is not None:
            assert found.spent * PRICE[start] <= max_notional * 1.05  # valued at the book, not PRICE


def _output(found_legs: list[tuple[Levels, bool, float, bool]], x: float) -> float:
    """Continuous cycle output for input x (no rounding), or -inf when the books are too thin.
    A fee in base: a buy keeps ``1 - fee`` of what it buys, a sale gives ``1 + fee`` per unit sold."""
    for levels, buy, fee, in_base in found_legs:
        out, left = 0.0, x
        for price, size in levels:
            if buy:
                cap = price * size * (1.0 if in_base else 1 + fee)
                take = min(cap, left)
                out += take / price * (1 - fee) if in_base else take / (price * (1 + fee))
            else:
                cap = size * (1 + fee if in_base else 1.0)
                take = min(cap, left)
                out += take / (1 + fee) * price if in_base else take * price * (1 - fee)
            left -= take
            if left <= 0:
                break
        if left > 1e-12:
            return -math.inf
        x = out
    return x


@settings(max_examples=150, deadline=None)
@given(venues(), st.sampled_from([0.0, 5.0, 50.0]))
def test_size_is_the_best_on_a_grid_without_rounding(venue: tuple[list[Market], list[BookUpdate]],
                                                      min_bps: float) -> None:
    markets, books = venue
    markets = [msgspec.structs.replace(m, amount_step=0.0, min_amount=0.0, min_cost=0.0) for m in markets]
    store = BookStore()
    detector = TriangularDetector("v", markets, store, min_profit_bps=min_bps)
    for b in books:
        store.update(b)
        detector.refresh(b)
    found = detector.evaluate_all()
    assume(found)
    for f in found:
        legs = []
        for leg in f.legs:
            b = detector.book(detector.index.market_ids[leg.symbol])
            assert b is not None
            side = {m.symbol: m.fee_side for m in markets}[leg.symbol]
            in_base = side == "base" or side == ("get" if leg.side == "buy" else "give")
            legs.append((b.asks if leg.side == "buy" else b.bids, leg.side == "buy", leg.fee_rate, in_base))
        for k in range(1, 201):
            x = f.spent * k / 100  # up to twice the chosen size
            y = _output(legs, x)
            if y >= x * (1 + min_bps / 1e4):
                assert y - x <= f.profit * (1 + 1e-6) + 1e-12


# -- the plugin -----------------------------------------------------------------------------------

def make_plugin(**strategy: object) -> tuple[TriangularStrategy, Bus, SimClock, list[Opportunity]]:
    settings = Settings(strategy=msgspec.convert({"min_profit_bps": 5.0, "cooldown_ms": 0.0, **strategy},
                                                 type(Settings().strategy)))
    bus, clock, store = Bus(), SimClock(1_000), BookStore()
    bus.subscribe(BookUpdate, store.update, name="books")  # first, as the engine does
    plugin = TriangularStrategy()
    plugin.setup(Context(bus=bus, settings=settings, clock=clock, run_id="t", books=store, liquidity=store))
    seen: list[Opportunity] = []
    bus.subscribe(Opportunity, seen.append)
    return plugin, bus, clock, seen


def load(bus: Bus, fee: float = 0.001, staleness_ms: float = 1000.0) -> None:
    bus.publish(MarketsLoaded(venue="v", markets=tuple(market(b.symbol, fee) for b in BOOKS),
                              staleness_ms=staleness_ms, ts_init=0))


def test_plugin_publishes_a_three_leg_opportunity() -> None:
    plugin, bus, _, seen = make_plugin()
    load(bus)
    for b in BOOKS:
        bus.publish(msgspec.structs.replace(b, ts_event=900))
    assert len(seen) == 1
    opp = seen[0]
    assert opp.strategy == "triangular" and opp.quote == "USDT"
    assert [(leg.symbol, leg.side) for leg in opp.legs] == [
        ("BTC/USDT", "buy"), ("ETH/BTC", "buy"), ("ETH/USDT", "sell")]
    assert all(leg.venue == "v" and leg.fee_rate == 0.001 for leg in opp.legs)
    assert opp.notional == pytest.approx(75.40057525)
    assert opp.profit == pytest.approx(76.4235 - 75.40057525)
    assert opp.book_ts == (900, 900, 900) and opp.ts_event == 900 and opp.ts_init == 1_000
    assert plugin.summary()["opportunities"] == 1
    assert plugin.summary()["cycles"] == 2


def test_plugin_caps_by_max_notional_and_balances() -> None:
    _, bus, _, seen = make_plugin(max_notional=50.0)
    load(bus)
    bus.publish(BalanceUpdate(venue="v", balances={"USDT": 40.0, "BTC": 1.0, "ETH": 100.0}, ts_init=0))
    for b in BOOKS:
        bus.publish(msgspec.structs.replace(b, ts_event=900))
    # USDT -> BTC first: the buy must fit 40 USDT at its limit with fee (what the venue reserves),
    # the limit 1 bp (limit_slippage_bps) past the 100 ask: 100.01 * 1.001 per BTC
    first = seen[0].legs[0]
    assert (first.symbol, first.price) == ("BTC/USDT", pytest.approx(100.01))
    assert first.amount * first.price * 1.001 <= 40.0
    assert first.amount == pytest.approx(40.0 / (100.01 * 1.001), rel=1e-6)


def test_plugin_ignores_stale_books() -> None:
    _, bus, clock, seen = make_plugin()
    load(bus)
    clock.advance_to(10_000_000_000)
    for b in BOOKS:
        bus.publish(b)
    assert seen == []


def test_plugin_repeats_a_cycle_only_after_cooldown_and_on_new_books() -> None:
    _, bus, clock, seen = make_plugin(cooldown_ms=250.0)
    load(bus)
    for b in BOOKS:
        bus.publish(msgspec.structs.replace(b, ts_event=900))
    bus.publish(msgspec.structs.replace(ETH_USDT, ts_event=950))
    assert len(seen) == 1  # within the cooldown
    clock.advance_to(300_000_000)
    newer = msgspec.structs.replace(ETH_USDT, ts_event=299_000_000)
    bus.publish(newer)
    assert len(seen) == 2
    clock.advance_to(600_000_000)
    bus.publish(newer)
    assert len(seen) == 2  # the same books as the last emission


def test_plugin_sizes_on_the_books_net_of_what_our_orders_took() -> None:
    plugin, bus, _, seen = make_plugin()
    load(bus)
    for b in BOOKS:
        bus.publish(msgspec.structs.replace(b, ts_event=900))
    assert len(seen) == 1  # sells 15 ETH into the 5.1 bid (the first test of the plugin)
    # our fill took all of the 5.1 bid; the venue republishes the same levels
    plugin.ctx.liquidity.take("v", "ETH/USDT", "bids", 5.1, 15.0)
    bus.publish(msgspec.structs.replace(ETH_USDT, ts_event=950))
    # left: the 5.0 bid. 75.40057525 USDT spent for 15 ETH would come back as 15 * 5.0 * 0.999 =
    # 74.925: no cycle pays any more (on the raw book it would be emitted again)
    assert len(seen) == 1
    # the venue publishes the 5.1 level with another size: it is the venue's again
    bids = ((5.1, 16.0), (5.0, 100.0))
    bus.publish(msgspec.structs.replace(ETH_USDT, bids=bids, ts_event=990))
    assert len(seen) == 2
    # an order in flight holding that level is not counted on either
    plugin.ctx.liquidity.reserve("v-L2", "v", "ETH/USDT", "bids", 5.1, 16.0)
    bus.publish(msgspec.structs.replace(ETH_USDT, bids=bids, ts_event=995))
    assert len(seen) == 2


def test_leg_limits_reach_the_tolerance_past_the_last_level_while_the_worst_case_clears_min_profit() -> None:
    def worst_bps(f: Found) -> float:  # every leg filling wholly at its limit, fees included
        rate = 1.0
        for leg in f.legs:
            sell = leg.side == "sell"
            rate *= leg.price * (1 - leg.fee_rate) if sell else 1 / (leg.price * (1 + leg.fee_rate))
        return (rate - 1) * 1e4

    # BTC/USDT ask 100, ETH/BTC's second ask 0.0505, ETH/USDT bid 5.1 are the last levels walked:
    # at those limits the cycle still makes 68.8 bps after 0.1 % fees on each leg
    tight = only(detect(fee=0.001, min_profit_bps=10.0))
    assert worst_bps(tight) == pytest.approx(68.763, abs=1e-3)
    loose = only(detect(fee=0.001, min_profit_bps=10.0, limit_slippage_bps=15.0))
    for a, b in zip(tight.legs, loose.legs, strict=True):
        # buys 15 bps above the last ask walked, sells 15 bps below the last bid
        assert b.price == pytest.approx(a.price * (1.0015 if a.side == "buy" else 0.9985))
    assert worst_bps(loose) >= 10.0  # about 68.8 - 3 * 15
    # 3 * 25 bps is more than the 58.8 bps margin: the cycle is not reported
    assert detect(fee=0.001, min_profit_bps=10.0, limit_slippage_bps=25.0) == []
