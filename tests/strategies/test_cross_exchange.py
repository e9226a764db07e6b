"""Cross-exchange sizing by hand, against a brute-force oracle, and the plugin on a real bus."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.events import BalanceUpdate, BookUpdate, Market, MarketsLoaded, Opportunity
from arbitrage.plugin import Context
from arbitrage.settings import Settings
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy, leg_amounts, price_route, size_route

ASKS_A = ((100.0, 1.0), (101.0, 2.0))
BIDS_B = ((102.0, 0.5), (101.5, 1.0), (100.5, 5.0))
FEE = 0.001


def test_size_route_walks_levels_while_the_marginal_unit_pays() -> None:
    # unit profits (bid*(1-0.001) - ask*(1.001)): 100|102 -> 1.798 (0.5), 100|101.5 -> 1.2985 (0.5),
    # 101|101.5 -> 0.2975 (0.5), 101|100.5 -> -0.7015: stop. Amount 1.5.
    amount = size_route(ASKS_A, BIDS_B, FEE, FEE, min_profit_bps=0.0)
    assert amount == pytest.approx(1.5)
    sized = price_route(ASKS_A, BIDS_B, amount, FEE, FEE)
    assert sized is not None
    # 0.5*1.798 + 0.5*1.2985 + 0.5*0.2975 = 1.697; buy notional 100 + 50.5 = 150.5
    assert sized.profit == pytest.approx(1.697)
    assert sized.buy_notional == pytest.approx(150.5)
    assert (sized.buy_limit, sized.sell_limit) == (101.0, 101.5)


def test_size_route_stops_inside_a_level_where_the_average_would_fall_below_min_profit() -> None:
    # m = 0.012: after 1.0 unit profit 1.54825 on notional 100; level 101|101.5 earns 0.2975 < 0.012*101,
    # so take x with (1.54825 + 0.2975x) / (100 + 101x) = 0.012 -> x = 0.34825 / 0.9145
    amount = size_route(ASKS_A, BIDS_B, FEE, FEE, min_profit_bps=120.0)
    assert amount == pytest.approx(1.0 + 0.34825 / 0.9145)
    sized = price_route(ASKS_A, BIDS_B, amount, FEE, FEE)
    assert sized is not None
    assert sized.profit / sized.buy_notional * 1e4 == pytest.approx(120.0)


def test_size_route_respects_balances_and_notional() -> None:
    assert size_route(ASKS_A, BIDS_B, FEE, FEE, min_profit_bps=0, base_balance=0.7) == pytest.approx(0.7)
    assert size_route(ASKS_A, BIDS_B, FEE, FEE, min_profit_bps=0, max_notional=120.0) == pytest.approx(
        1.0 + 20.0 / 101.0)
    # quote balance covers cost plus fee: 100.1 buys 1.0 at 100 with 0.1 fee
    assert size_route(ASKS_A, BIDS_B, FEE, FEE, min_profit_bps=0, quote_balance=100.1) == pytest.approx(1.0)
    # into the second level the whole amount is held at the limit (101): 150 / (101 * 1.001)
    amount = size_route(ASKS_A, BIDS_B, FEE, FEE, min_profit_bps=0, quote_balance=150.0)
    assert amount == pytest.approx(150.0 / (101 * 1.001))
    assert amount * 101 * (1 + FEE) <= 150.0 + 1e-9


def test_size_route_is_zero_when_the_spread_does_not_cover_fees() -> None:
    # 100.15 * 0.999 = 100.04985 < 100 * 1.001 = 100.1
    assert size_route(((100.0, 1.0),), ((100.15, 1.0),), FEE, FEE, min_profit_bps=0) == 0.0


levels = st.lists(st.tuples(st.integers(1, 40), st.floats(0.01, 3.0)), min_size=1, max_size=6)


def _book(base: float, steps: list[tuple[int, float]], sign: int) -> tuple[tuple[float, float], ...]:
    out, price = [], base
    for gap, amount in steps:
        price += sign * gap * 0.01
        out.append((round(price, 4), amount))
    return tuple(out)


def _notional(levels: tuple[tuple[float, float], ...], amount: float) -> float:
    """Quote value of taking ``amount`` from ``levels`` best first (the book must hold it)."""
    out = 0.0
    for price, size in levels:
        take = min(size, amount)
        out += take * price
        amount -= take
    assert amount <= 1e-9
    return out


@settings(max_examples=200, deadline=None)
@given(levels, levels, st.floats(0.0, 0.003), st.floats(0.0, 0.003), st.sampled_from([0.0, 5.0, 20.0]),
       st.floats(0.1, 1e4), st.booleans(), st.booleans())
def test_size_route_matches_brute_force_best_amount(
    ask_steps: list[tuple[int, float]], bid_steps: list[tuple[int, float]], buy_fee: float, sell_fee: float,
    min_bps: float, base_cap: float, buy_in_base: bool, sell_in_base: bool,
) -> None:
    asks = _book(99.9, ask_steps, +1)
    bids = _book(100.5, bid_steps, -1)
    amount = size_route(asks, bids, buy_fee, sell_fee, min_profit_bps=min_bps, base_balance=base_cap,
                        buy_fee_in_base=buy_in_base, sell_fee_in_base=sell_in_base)
    # the oracle's own fee rule: selling x gives x * (1 + sell fee) base where that fee is in base,
    # which the buy must deliver: x * k bought, k = that / (1 - buy fee) where the buy's is in base
    gives = 1 + sell_fee if sell_in_base else 1.0
    k = gives / (1 - buy_fee if buy_in_base else 1.0)
    depth = min(sum(a for _, a in asks) / k, sum(a for _, a in bids), base_cap / gives)
    assert 0.0 <= amount <= depth + 1e-9

    def profit(x: float) -> tuple[float, float]:
        """(profit, buy notional) of selling x, by the oracle's rule."""
        buy = _notional(asks, x * k)
        sell = _notional(bids, x)
        return (sell * (1.0 if sell_in_base else 1 - sell_fee)
                - buy * (1.0 if buy_in_base else 1 + buy_fee)), buy

    best = profit(amount)[0] if amount > 0 else 0.0
    if amount > 0:
        sized = price_route(asks, bids, amount, buy_fee, sell_fee, buy_fee_in_base=buy_in_base,
                            sell_fee_in_base=sell_in_base)
        assert sized is not None and sized.profit >= min_bps / 1e4 * sized.buy_notional - 1e-7
        assert sized.profit == pytest.approx(best, rel=1e-9, abs=1e-9)
        assert sized.buy_amount == pytest.approx(amount * k, rel=1e-12)
    # oracle: no feasible amount on a fine grid (or at a level boundary) beats it
    candidates = {depth * i / 200 for i in range(1, 201)}
    for book, scale in ((asks, k), (bids, 1.0)):
        total = 0.0
        for _, a in book:
            total += a
            if total / scale <= depth:
                candidates.add(total / scale)
    for x in candidates:
        gain, notional = profit(x)
        if gain >= min_bps / 1e4 * notional and gain > 0:
            assert gain <= best + 1e-7


def test_leg_amounts_buy_what_covers_a_fee_taken_in_base_and_sell_what_arrives() -> None:
    def m(step: float, fee_side: str) -> Market:
        return Market(symbol="BTC/USDT", base="BTC", quote="USDT", taker_fee=0.001, amount_step=step,
                      fee_side=fee_side)  # type: ignore[arg-type]

    # both fees in quote: the same amount on both grids
    assert leg_amounts(0.5004, m(0.001, "quote"), m(0.0001, "quote")) == (0.5, 0.5)
    # buy on "get" (step 0.001): selling 0.5 needs 0.5 / 0.999 = 0.5005005 bought, rounded up to
    # 0.501, which delivers 0.500499: 0.000499 over, below the sale's step 0.001
    assert leg_amounts(0.5, m(0.001, "get"), m(0.001, "quote")) == (0.501, 0.5)
    # a coarser buy step (0.01): 0.51 bought delivers 0.50949; the sale (step 0.001) grows to 0.509
    # (0.00049 over) -- unless the sale's venue holds less than that
    assert leg_amounts(0.5, m(0.01, "get"), m(0.001, "quote")) == (0.51, 0.509)
    assert leg_amounts(0.5, m(0.01, "get"), m(0.001, "quote"), base_balance=0.505) == (0.51, 0.5)
    # the sale's fee in base ("give" sell): it gives 0.5 * 1.001 = 0.5005, so 0.501 is bought
    assert leg_amounts(0.5, m(0.001, "quote"), m(0.001, "give")) == (0.501, 0.5)
    # both: 0.5005 / 0.999 = 0.501001 -> 0.502, delivering 0.501498; 0.501498 / 1.001 = 0.500997 -> 0.5
    assert leg_amounts(0.5, m(0.001, "get"), m(0.001, "base")) == (0.502, 0.5)


def make_strategy(**strategy: float) -> tuple[CrossExchangeStrategy, Bus, SimClock]:
    base = Settings()
    settings_ = msgspec.structs.replace(
        base, strategy=msgspec.structs.replace(base.strategy, **strategy))
    bus, clock, store = Bus(), SimClock(start_ns=10_000_000_000), BookStore()
    bus.subscribe(BookUpdate, store.update, name="books")  # first, as the engine does
    plugin = CrossExchangeStrategy()
    plugin.setup(Context(bus=bus, settings=settings_, clock=clock, run_id="t", books=store, liquidity=store))
    for venue in ("a", "b"):
        market = Market(symbol="BTC/USDT", base="BTC", quote="USDT", taker_fee=FEE, amount_step=0.001,
                        min_amount=0.001, min_cost=5.0)
        bus.publish(MarketsLoaded(venue=venue, markets=(market,), staleness_ms=1000.0, ts_init=0))
    return plugin, bus, clock


def publish_book(bus: Bus, venue: str, bids: tuple[tuple[float, float], ...],
                 asks: tuple[tuple[float, float], ...], ts: int) -> None:
    bus.publish(BookUpdate(venue=venue, symbol="BTC/USDT", bids=bids, asks=asks, ts_event=ts, ts_init=ts))


def test_plugin_emits_a_two_leg_opportunity_with_limits_at_the_last_level_used() -> None:
    _, bus, clock = make_strategy(min_profit_bps=0.0, max_notional=1e9)
    now = clock.time_ns()
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "a", ((99.0, 1.0),), ASKS_A, now)
        publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now)
    assert len(seen) == 1
    opp = seen[0]
    buy, sell = opp.legs
    assert (buy.venue, buy.side, buy.price, sell.venue, sell.side, sell.price) == (
        "a", "buy", 101.0, "b", "sell", 101.5)
    assert buy.amount == sell.amount == pytest.approx(1.5)
    assert opp.profit == pytest.approx(1.697)
    assert opp.profit_bps == pytest.approx(1.697 / 150.5 * 1e4)
    assert opp.book_ts == (now, now)


def test_plugin_ignores_a_stale_book() -> None:
    plugin, bus, clock = make_strategy(min_profit_bps=0.0)
    now = clock.time_ns()
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "a", ((99.0, 1.0),), ASKS_A, now - 2_000_000_000)  # 2 s old, limit 1 s
        publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now)
    assert seen == []
    assert plugin.skipped_stale >= 1


def test_plugin_ignores_a_crossed_book() -> None:
    plugin, bus, clock = make_strategy(min_profit_bps=0.0)
    now = clock.time_ns()
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "a", ((99.0, 1.0),), ASKS_A, now)
        publish_book(bus, "b", ((102.0, 0.5),), ((101.0, 1.0),), now)  # bid above ask
    assert seen == []
    assert plugin.skipped_crossed == 1


def test_plugin_caps_size_by_the_balances_it_has_seen() -> None:
    _, bus, clock = make_strategy(min_profit_bps=0.0, max_notional=1e9)
    bus.publish(BalanceUpdate(venue="a", balances={"USDT": 1e6, "BTC": 0.0}, ts_init=0))
    bus.publish(BalanceUpdate(venue="b", balances={"USDT": 0.0, "BTC": 0.3333}, ts_init=0))
    now = clock.time_ns()
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "a", ((99.0, 1.0),), ASKS_A, now)
        publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now)
    assert [o.legs[0].amount for o in seen] == [0.333]  # rounded down to the 0.001 step


def test_plugin_does_not_repeat_a_route_within_the_cooldown_or_on_unchanged_books() -> None:
    _, bus, clock = make_strategy(min_profit_bps=0.0, cooldown_ms=100.0)
    now = clock.time_ns()
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "a", ((99.0, 1.0),), ASKS_A, now)
        publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now)
        clock.advance_to(now + 50_000_000)
        publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now + 50_000_000)  # within cooldown
        clock.advance_to(now + 200_000_000)
        publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now + 200_000_000)  # after: emits again
    assert len(seen) == 2
    assert len({o.id for o in seen}) == 2


def test_plugin_rejects_trades_below_market_minimum_cost() -> None:
    _, bus, clock = make_strategy(min_profit_bps=0.0)
    now = clock.time_ns()
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "a", ((99.0, 1.0),), ((100.0, 0.04),), now)  # 4 USDT of depth < min_cost 5
        publish_book(bus, "b", ((102.0, 1.0),), ((103.0, 1.0),), now)
    assert seen == []


@given(st.floats(0, 1e6), st.sampled_from([1e-5, 1e-4, 0.001, 0.01, 0.1, 1.0]))
def test_round_down_never_returns_more_than_it_was_given(amount: float, step: float) -> None:
    from arbitrage.book import round_down

    rounded = round_down(amount, step)
    assert 0 <= rounded <= amount
    assert amount - rounded < step + 1e-9


def test_plugin_sizes_on_the_books_net_of_what_our_orders_took() -> None:
    plugin, bus, clock = make_strategy(min_profit_bps=0.0, max_notional=1e9, cooldown_ms=0.0)
    now = clock.time_ns()
    publish_book(bus, "a", ((99.0, 1.0),), ASKS_A, now)
    publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now)
    # our fill took all of a's 100 level; a republishes the same levels (a new snapshot, same sizes)
    plugin.ctx.liquidity.take("a", "BTC/USDT", "asks", 100.0, 1.0)
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "a", ((99.0, 1.0),), ASKS_A, now + 1)
    # Net asks of a: 101 x 2 only. Per BTC after fees, buying at 101 costs 101.101; selling at 102
    # nets 101.898 (+0.797), at 101.5 nets 101.3985 (+0.2975), at 100.5 loses -> 1.5 BTC, all at 101:
    # 152.5 * 0.999 - 151.5 * 1.001 = 152.3475 - 151.6515 = 0.696 (1.697 on the raw book).
    [opp] = seen
    buy = opp.legs[0]
    assert buy.amount == pytest.approx(1.5) and buy.price == 101.0 and buy.expected_price == 101.0
    assert opp.profit == pytest.approx(0.696)
    # an order in flight holding the rest of a's asks within 101: nothing left to plan on
    plugin.ctx.liquidity.reserve("o-L0", "a", "BTC/USDT", "asks", 101.0, 2.0)
    with bus.collect(Opportunity) as seen:
        publish_book(bus, "b", BIDS_B, ((103.0, 1.0),), now + 2)
    assert seen == []
