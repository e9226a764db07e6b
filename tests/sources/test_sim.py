"""The simulated market source: determinism, well-formed books, consistency, dislocations, lifecycle."""

from __future__ import annotations

import asyncio
import itertools
import math
import typing as t

import msgspec
import pytest

from arbitrage.book import check_book, is_crossed
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import BookUpdate, FeedStatus, Fill, MarketsLoaded, decode_json, encode_json
from arbitrage.plugin import Context
from arbitrage.settings import Settings, SimVenue
from arbitrage.sources.sim import SimMarket, SimSource, asset_prices

replace = msgspec.structs.replace
TRIANGLE = {"BTC/USDT": 60000.0, "ETH/USDT": 3000.0, "ETH/BTC": 0.05}


def make_settings(seed: int = 7, **sim: t.Any) -> Settings:
    """Defaults plus overrides, without reading ./settings.toml or the environment."""
    base = Settings()
    return replace(base, run=replace(base.run, seed=seed), sim=replace(base.sim, **sim))


def content(book: BookUpdate) -> tuple[t.Any, ...]:
    return book.venue, book.symbol, book.bids, book.asks


def mid(book: BookUpdate) -> float:
    return (book.bids[0][0] + book.asks[0][0]) / 2


def test_events_for_same_seed_are_identical_and_other_seed_differs() -> None:
    settings = make_settings(symbols=TRIANGLE, dislocations_per_minute=120.0)
    first = [content(b) for b in SimMarket(settings.sim, 7).events(2000)]
    second = [content(b) for b in SimMarket(settings.sim, 7).events(2000)]
    other = [content(b) for b in SimMarket(settings.sim, 8).events(2000)]
    assert first == second
    assert first != other


def test_books_are_sorted_positive_uncrossed_on_grid_and_levels_deep() -> None:
    settings = make_settings(symbols=TRIANGLE, levels=7, dislocations_per_minute=300.0,
                             venues=[SimVenue(name="a", spread_bps=0.0), SimVenue(name="b")])
    market = SimMarket(settings.sim, 3)
    steps = {m.symbol: m.price_step for m in market.markets}
    for book in market.events(5000):
        assert len(book.bids) == len(book.asks) == 7
        assert all(p > 0 and a > 0 for p, a in book.bids + book.asks)
        assert [p for p, _ in book.bids] == sorted({p for p, _ in book.bids}, reverse=True)
        assert [p for p, _ in book.asks] == sorted({p for p, _ in book.asks})
        assert not is_crossed(book.bids, book.asks)
        assert check_book(book.bids, book.asks) is None  # what the source checks before publishing
        step = steps[book.symbol]
        assert all(abs(p / step - round(p / step)) < 1e-6 for p, _ in book.bids + book.asks)
    assert market.dislocations > 0


def test_cross_market_mid_matches_ratio_of_usdt_mids_within_noise() -> None:
    noise = 2.0
    symbols = {**TRIANGLE, "ETH/BTC": 0.055}  # inconsistent on purpose: derived from the USDT legs
    settings = make_settings(symbols=symbols, dislocations_per_minute=0.0,
                             venues=[SimVenue(name=n, noise_bps=noise) for n in ("a", "b")])
    latest: dict[tuple[str, str], BookUpdate] = {}
    deviations = []
    for i, book in enumerate(SimMarket(settings.sim, 11).events(20000)):
        latest[book.venue, book.symbol] = book
        if i > 100 and i % 50 == 0:
            for venue in ("a", "b"):
                implied = mid(latest[venue, "ETH/USDT"]) / mid(latest[venue, "BTC/USDT"])
                deviations.append(abs(mid(latest[venue, "ETH/BTC"]) / implied - 1) * 1e4)
    combined_std = noise * math.sqrt(3)
    assert max(deviations) < 5 * combined_std
    assert sum(deviations) / len(deviations) < 1.5 * combined_std


def test_asset_prices_derive_an_asset_quoted_only_against_a_cross() -> None:
    prices = asset_prices({"BTC/USDT": 60000.0, "ETH/BTC": 0.05, "SOL/ETH": 0.05})
    assert prices["USDT"] == 1.0
    assert prices["ETH"] == pytest.approx(3000.0)
    assert prices["SOL"] == pytest.approx(150.0)


def test_dislocations_occur_at_configured_rate_and_beat_two_taker_fees() -> None:
    def run(per_minute: float) -> tuple[int, int, list[float]]:
        settings = make_settings(symbols={"BTC/USDT": 60000.0}, levels=5,  # short: few overlaps
                                 dislocations_per_minute=per_minute, dislocation_ms=400.0)
        fees = {v.name: v.taker_fee for v in settings.sim.venues}
        market = SimMarket(settings.sim, 5)
        latest: dict[str, BookUpdate] = {}
        episodes, profitable_before, sizes = 0, False, []
        for book in market.events(int(120 * settings.sim.update_hz * 3)):  # ~2 simulated minutes
            latest[book.venue] = book
            edges = [(s.bids[0][0] / b.asks[0][0] - 1 - fees[s.venue] - fees[b.venue],
                      min(s.bids[0][1], b.asks[0][1]) * b.asks[0][0])
                     for b, s in itertools.permutations(latest.values(), 2)]
            profitable = [size for edge, size in edges if edge > 0]
            sizes += profitable
            episodes += bool(profitable) and not profitable_before
            profitable_before = bool(profitable)
        return market.dislocations, episodes, sizes

    dislocations, episodes, sizes = run(30.0)
    assert 35 <= dislocations <= 90  # expected 60, Poisson std ~8
    assert episodes >= 0.6 * dislocations
    assert max(sizes) < 2.0 * 10_000  # thin dislocated top: a realistic trade, not the whole book
    assert run(0.0)[:2] == (0, 0)


def run_plugin(source: SimSource, settings: Settings, seconds: float) -> tuple[list[t.Any], Context]:
    """Run ``source`` on a bare bus (no engine) for ``seconds`` or until it asks to stop."""
    async def main() -> tuple[list[t.Any], Context]:
        bus = Bus()
        ctx = Context(bus=bus, settings=settings, clock=Clock(), run_id="t")
        source.setup(ctx)
        await bus.start()
        with bus.collect(MarketsLoaded, FeedStatus, BookUpdate) as seen:
            await source.start()
            with pytest.raises(TimeoutError) if seconds else _nothing():
                await asyncio.wait_for(ctx.stop.event.wait(), seconds or None)
            await source.stop()
        await bus.stop()
        return seen, ctx

    return asyncio.run(main())


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def test_markets_loaded_and_connected_published_before_first_book_update() -> None:
    settings = make_settings(symbols=TRIANGLE)
    seen, _ = run_plugin(SimSource(realtime=False, max_events=50), settings, 0)
    first_book = next(i for i, e in enumerate(seen) if isinstance(e, BookUpdate))
    head = seen[:first_book]
    loaded = {e.venue: e for e in head if isinstance(e, MarketsLoaded)}
    assert set(loaded) == {v.name for v in settings.sim.venues}
    assert {e.venue for e in head if isinstance(e, FeedStatus) and e.status == "connected"} == set(loaded)
    beta = {m.symbol: m for m in loaded["beta"].markets}
    assert set(beta) == set(TRIANGLE)
    assert beta["BTC/USDT"].taker_fee == 0.0008 and beta["BTC/USDT"].amount_step == 1e-5
    assert beta["ETH/USDT"].min_cost == 5.0 and beta["ETH/BTC"].min_cost < 1e-3
    assert loaded["beta"].staleness_ms == settings.sim.venues[1].staleness_ms


def test_fast_mode_publishes_max_events_in_seed_order_then_requests_stop() -> None:
    settings = make_settings()
    source = SimSource(realtime=False, max_events=700)
    seen, ctx = run_plugin(source, settings, 0)
    books = [e for e in seen if isinstance(e, BookUpdate)]
    assert ctx.stop.reason == "sim: max events"
    assert [content(b) for b in books] == [content(b) for b in SimMarket(settings.sim, 7).events(700)]
    assert source.summary() == {"books_published": 700, "dislocations": source.market.dislocations}
    spacing = (books[-1].ts_init - books[0].ts_init) / 699 / 1e9
    books_per_tick = len(settings.sim.symbols) * len(settings.sim.venues)
    assert spacing == pytest.approx(1 / (settings.sim.update_hz * books_per_tick), rel=0.2)
    assert [e.status for e in seen[-3:]] == ["stopped"] * 3


def test_realtime_mode_updates_each_book_near_update_hz_with_fresh_timestamps() -> None:
    settings = make_settings()
    seconds = 0.3
    source = SimSource()
    seen, _ = run_plugin(source, settings, seconds)
    books = [e for e in seen if isinstance(e, BookUpdate)]
    expected = settings.sim.update_hz * len(settings.sim.symbols) * len(settings.sim.venues) * seconds
    assert 0.5 * expected <= len(books) <= 1.5 * expected
    assert [content(b) for b in books] == [content(b) for b in SimMarket(settings.sim, 7).events(len(books))]
    assert all(0 < b.ts_init - b.ts_event < 10_000_000 for b in books)  # a few ms of exchange latency
    assert source.summary()["books_published"] == len(books)
    assert [e.status for e in seen if isinstance(e, FeedStatus)] == ["connected"] * 3 + ["stopped"] * 3


def _next_of(market: SimMarket, name: tuple[str, str]) -> BookUpdate:
    """Step ``market`` until the book ``name`` (venue, symbol) comes up again."""
    while True:
        book = market.step(0)
        if (book.venue, book.symbol) == name:
            return book


def test_our_fills_take_liquidity_out_of_the_simulated_book_until_the_market_replenishes_it() -> None:
    settings = make_settings(dislocations_per_minute=0.0)
    ours, untouched = SimMarket(settings.sim, 7), SimMarket(settings.sim, 7)
    first = ours.step(0)
    assert untouched.step(0) == first
    name = (first.venue, first.symbol)
    (p0, a0), (p1, a1) = first.asks[:2]
    # we bought all of the best ask and half of the second: the next snapshots of this book show that
    # much less at those prices or better (the same seed without our fills shows it all)
    ours.take(*name, "asks", p0, a0)
    ours.take(*name, "asks", p1, a1 / 2)
    ours.take("nowhere", first.symbol, "asks", p0, a0)  # not a simulated book: ignored
    step = 10.0 ** -math.floor(-math.log10(min(a for _, a in first.asks)))  # one amount step or finer
    mine, theirs = _next_of(ours, name), _next_of(untouched, name)
    assert ours.time == untouched.time and mine.bids == theirs.bids
    cheap = [a for p, a in theirs.asks if p <= p1]
    left = [a for p, a in mine.asks if p <= p1]
    decay = 0.5 ** (ours.time / 1.0)  # REFILL_HALF_LIFE_S = 1: a little has come back already
    assert sum(cheap) - sum(left) == pytest.approx((a0 + a1 / 2) * decay, abs=2 * step + 1e-9)
    assert [x for x in mine.asks if x[0] > p1] == [x for x in theirs.asks if x[0] > p1]
    # later snapshots: still what decays from the fill's time (a decay per snapshot must not compound)
    while ours.time < 0.7:  # many snapshots within a half-life or so
        mine, theirs = _next_of(ours, name), _next_of(untouched, name)
        cheap = [a for p, a in theirs.asks if p <= p1]
        left = [a for p, a in mine.asks if p <= p1]
        missing, taken = sum(cheap) - sum(left), a0 + a1 / 2
        # decayed for the time since the fill, give or take the book's last 0.1 s update interval
        assert taken * 0.5 ** ours.time - 1e-4 <= missing <= taken * 0.5 ** (ours.time - 0.1) + 1e-4
    # the rest of the world is the same: fills draw no random numbers
    while ours.time < 30.0:  # 30 half-lives: less than half an amount step is still missing
        ours.step(0)
        untouched.step(0)
    assert content(_next_of(ours, name)) == content(_next_of(untouched, name))


def test_sim_source_learns_our_fills_from_fill_events() -> None:
    async def scenario() -> tuple[BookUpdate, BookUpdate]:
        settings = make_settings(dislocations_per_minute=0.0)
        bus = Bus()
        source = SimSource(realtime=False)
        source.setup(Context(bus=bus, settings=settings, clock=Clock(), run_id="t"))
        first = source.market.step(0)
        bought = sum(a for _, a in first.asks[:3])
        bus.publish(Fill(client_order_id="o-L0", opportunity_id="o", venue=first.venue, symbol=first.symbol,
                         side="buy", price=first.asks[2][0], amount=bought, fee=0.0, fee_currency="USDT",
                         ts_event=0, ts_init=0))
        return first, _next_of(source.market, (first.venue, first.symbol))

    first, after = asyncio.run(scenario())
    untouched = SimMarket(make_settings(dislocations_per_minute=0.0).sim, 7)
    untouched.step(0)
    theirs = _next_of(untouched, (first.venue, first.symbol))
    limit = first.asks[2][0]
    assert sum(a for p, a in after.asks if p <= limit) < sum(a for p, a in theirs.asks if p <= limit)


def test_each_venue_announces_its_markets_with_its_fee_and_fee_side() -> None:
    settings = make_settings(symbols=TRIANGLE, venues=[SimVenue(name="a", taker_fee=0.001, fee_side="get"),
                                                       SimVenue(name="b", taker_fee=0.0026)])
    loaded = {e.venue: e.markets for e in SimMarket(settings.sim, 7).markets_loaded(0)}
    assert {(m.taker_fee, m.fee_side) for m in loaded["a"]} == {(0.001, "get")}
    assert {(m.taker_fee, m.fee_side) for m in loaded["b"]} == {(0.0026, "quote")}
    # the recording's form keeps it: a MarketsLoaded decodes with its markets' fee sides
    assert decode_json(encode_json(MarketsLoaded(venue="a", markets=loaded["a"], staleness_ms=1.0,
                                                 ts_init=0))).markets == loaded["a"]  # type: ignore[attr-defined]
