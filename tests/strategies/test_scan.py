"""The one-shot scanner, checked against brute force on real Binance.US snapshots (MO-book, MIT)."""

from __future__ import annotations

import functools
import json
import typing as t
from pathlib import Path

import msgspec
import pytest

from arbitrage.events import BookUpdate, Market
from arbitrage.readers.snapshot import load_snapshot
from arbitrage.strategies.scan import scan

MOBOOK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mobook"
needs_mobook = pytest.mark.skipif(not MOBOOK.is_dir(), reason=f"MO-book snapshots not found at {MOBOOK}")

SNAPSHOTS = [  # 2022 layout (unnamed symbol column, bids/asks lists) and 2023 layout (symbol column)
    "Binance_US_orderbook_2022-08-02_22_24_37.csv",
    "Binance_US_orderbook_2022-08-03_00_40_28.csv",
    "Binance_US_orderbook_2022-08-08_16_49_49.csv",
    "Binance_US_orderbook_20221025_10_47_25.csv",
    "Binance_US_orderbook_20230309_04_22_02.csv",
    "Binance_US_orderbook_20230312_203153.csv",
    "Binance_US_orderbook_20230313_152613.csv",
    "Binance_US_orderbook_20230312_204412.csv",
    "Binance_US_orderbook_20230416_214743.csv",
]


def rotate(assets: tuple[str, ...]) -> tuple[str, ...]:
    i = assets.index(min(assets))
    return assets[i:] + assets[:i]


def brute_force(books: tuple[BookUpdate, ...], markets: tuple[Market, ...], fee: float = 0.0,
                fee_side: str = "quote") -> dict[tuple[str, ...], float]:
    """Every directed 3-cycle of assets with a top-of-book rate product above 1, after ``fee``.

    Rate of A -> B: the bid of market A/B (sell A), or 1 / the ask of market B/A (buy B). Books
    with an empty side lack that direction; crossed books are not used at all. The fee, ccxt's way:
    a sale whose fee is in base ("base", "give") gives ``1 + fee`` A per unit sold, else it keeps
    ``1 - fee`` of the proceeds; a buy whose fee is in base ("base", "get") keeps ``1 - fee`` of
    what it buys, else it pays ``1 + fee`` per unit of notional.
    """
    sell_in_base = fee_side in ("base", "give")
    buy_in_base = fee_side in ("base", "get")
    rate: dict[tuple[str, str], float] = {}
    by_symbol = {b.symbol: b for b in books}
    for m in markets:
        b = by_symbol.get(m.symbol)
        if b is None or (b.bids and b.asks and b.bids[0][0] >= b.asks[0][0]):
            continue
        if b.bids:
            bid = b.bids[0][0]
            rate[(m.base, m.quote)] = bid / (1 + fee) if sell_in_base else bid * (1 - fee)
        if b.asks:
            ask = b.asks[0][0]
            rate[(m.quote, m.base)] = (1 - fee) / ask if buy_in_base else 1.0 / (ask * (1 + fee))
    assets = sorted({a for pair in rate for a in pair})
    linked = {frozenset(pair) for pair in rate}
    out = {}
    for i, a in enumerate(assets):  # every triple a < b < c, both directions
        for j in range(i + 1, len(assets)):
            b = assets[j]
            if frozenset((a, b)) not in linked:
                continue  # no market between a and b: no triple (a, b, *) closes
            for c in assets[j + 1:]:
                for cycle in ((a, b, c), (a, c, b)):
                    r = [rate.get(pair) for pair in ((cycle[0], cycle[1]), (cycle[1], cycle[2]),
                                                     (cycle[2], cycle[0]))]
                    if None in r:
                        continue
                    product = r[0] * r[1] * r[2]  # type: ignore[operator]
                    if product > 1.0:
                        out[cycle] = product
    return out


@functools.cache
def oracle_case(name: str) -> tuple[t.Any, dict[tuple[str, ...], float]]:
    snap = load_snapshot(MOBOOK / name)
    return snap, brute_force(snap.books, snap.markets)


@needs_mobook
@pytest.mark.parametrize("name", SNAPSHOTS)
def test_scan_finds_exactly_the_profitable_cycles_brute_force_finds(name: str) -> None:
    # Compared quantity: the gross rate of the cycle, received / spent in the start asset. With no
    # fees, no precision and single-level books it equals the top-of-book rate product whatever the
    # size, and must match it to 1e-9 relative (it does to 1e-12). Profit itself (received - spent,
    # a difference of near-equal numbers: some cycles pay 0.0004 bps) is compared to 1e-9 of the
    # amount traded, the precision float64 can give it.
    snap, expected = oracle_case(name)
    found = scan(snap.books, snap.markets, fee_override=0.0, min_profit_bps=0.0)
    got = {rotate(tuple(item["assets"][:-1])): item for item in found}
    assert len(got) == len(found), "a cycle was reported twice"
    assert set(got) == set(expected)
    for key, product in expected.items():
        item = got[key]
        assert item["received"] / item["amount"] == pytest.approx(product, rel=1e-12)
        assert item["profit"] == pytest.approx((product - 1.0) * item["amount"], abs=1e-9 * item["amount"])
        assert item["profit_bps"] == pytest.approx((product - 1.0) * 1e4, abs=1e-5)
        assert item["profit"] > 0


@needs_mobook
@pytest.mark.parametrize("fee_side", ["quote", "base", "get", "give"])
def test_scan_with_fees_finds_exactly_what_brute_force_finds_where_each_venue_charges_them(
        fee_side: str) -> None:
    # 5 bps on every market, taken where ``fee_side`` says: the cycles that still pay after three
    # fees (81 over the 60 snapshots) and their net rate, received / spent
    found_any = 0
    for path in sorted(MOBOOK.glob("*.csv")):
        snap = load_snapshot(path)
        markets = [msgspec.structs.replace(m, taker_fee=0.0005, fee_side=fee_side) for m in snap.markets]
        expected = brute_force(snap.books, tuple(markets), 0.0005, fee_side)
        got = {rotate(tuple(item["assets"][:-1])): item["received"] / item["amount"]
               for item in scan(snap.books, markets)}
        assert got.keys() == expected.keys(), path.name
        assert all(got[k] == pytest.approx(v, rel=1e-9) for k, v in expected.items()), path.name
        found_any += len(got)
    assert found_any >= 50


@needs_mobook
def test_oracle_is_not_vacuous() -> None:
    counts = [len(oracle_case(name)[1]) for name in SNAPSHOTS]
    assert sum(counts) >= 30 and sum(1 for c in counts if c) >= 7


@needs_mobook
def test_fees_remove_most_snapshot_cycles_and_results_are_sorted_best_first() -> None:
    snap = load_snapshot(MOBOOK / "Binance_US_orderbook_20230312_203153.csv")
    free = scan(snap.books, snap.markets, fee_override=0.0)
    paid = scan(snap.books, snap.markets, fee_override=0.001)
    assert len(paid) < len(free)
    bps = [item["profit_bps"] for item in free]
    assert bps == sorted(bps, reverse=True)


def market(symbol: str) -> Market:
    base, quote = symbol.split("/")
    return Market(symbol=symbol, base=base, quote=quote, taker_fee=0.001)


Levels = tuple[tuple[float, float], ...]


def book(symbol: str, bids: Levels, asks: Levels) -> BookUpdate:
    return BookUpdate(venue="v", symbol=symbol, bids=bids, asks=asks, ts_event=0, ts_init=0)


BOOKS = [
    book("BTC/USDT", ((99.0, 5.0),), ((100.0, 1.0),)),
    book("ETH/BTC", ((0.049, 100.0),), ((0.05, 10.0),)),
    book("ETH/USDT", ((5.1, 15.0),), ((5.2, 100.0),)),
]
MARKETS = [market(b.symbol) for b in BOOKS]


def test_scan_item_has_the_documented_shape_and_is_json() -> None:
    (item,) = scan(BOOKS, MARKETS, fee_override=0.0)
    json.dumps(item)
    assert item["strategy"] == "triangular" and item["venue"] == "v"
    assert item["assets"] == ["USDT", "BTC", "ETH", "USDT"]
    assert item["start_asset"] == item["quote"] == "USDT"
    assert item["amount"] == pytest.approx(50.0)
    assert item["profit"] == pytest.approx(1.0)
    assert item["profit_bps"] == pytest.approx(200.0)
    assert [(leg["symbol"], leg["side"], leg["price"]) for leg in item["legs"]] == [
        ("BTC/USDT", "buy", 100.0), ("ETH/BTC", "buy", 0.05), ("ETH/USDT", "sell", 5.1)]
    assert [leg["amount"] for leg in item["legs"]] == [pytest.approx(0.5), pytest.approx(10.0),
                                                       pytest.approx(10.0)]


def test_scan_uses_market_fees_unless_overridden_and_applies_caps() -> None:
    # 1.02 at the top minus three 0.1 % fees: 1.02 * 0.999 / 1.001**2 = 1.01694
    (item,) = scan(BOOKS, MARKETS)
    assert item["profit_bps"] == pytest.approx((1.02 * 0.999 / 1.001**2 - 1) * 1e4)
    assert scan(BOOKS, MARKETS, fee_override=0.01) == []
    assert scan(BOOKS, MARKETS, min_profit_bps=170.0) == []
    (capped,) = scan(BOOKS, MARKETS, max_notional=10.0)
    assert capped["amount"] == pytest.approx(10.0)
    (bal,) = scan(BOOKS, MARKETS, balances={"USDT": 5.0, "BTC": 1.0, "ETH": 100.0})
    assert bal["amount"] == pytest.approx(5.0)
    (btc,) = scan(BOOKS, MARKETS, start_assets=["BTC"])
    assert btc["assets"] == ["BTC", "ETH", "USDT", "BTC"]


def test_scan_scans_each_venue_separately() -> None:
    other = [BookUpdate(venue="w", symbol=b.symbol, bids=b.bids, asks=b.asks, ts_event=1, ts_init=1)
             for b in BOOKS]
    assert [item["venue"] for item in scan(BOOKS + other[:2], MARKETS)] == ["v"]
    assert sorted(item["venue"] for item in scan(BOOKS + other, MARKETS)) == ["v", "w"]


@needs_mobook
def test_scan_agrees_with_brute_force_on_every_snapshot() -> None:
    files = sorted(MOBOOK.glob("*.csv"))
    assert len(files) >= 50
    for path in files:
        snap, expected = oracle_case(path.name)
        found = scan(snap.books, snap.markets, fee_override=0.0)
        got = {rotate(tuple(item["assets"][:-1])): item["received"] / item["amount"] for item in found}
        assert got.keys() == expected.keys(), path.name
        assert all(got[k] == pytest.approx(v, rel=1e-9) for k, v in expected.items()), path.name


@needs_mobook
def test_strategy_plugin_emits_what_scan_finds_on_a_snapshot() -> None:
    import msgspec

    from arbitrage.book import BookStore
    from arbitrage.bus import Bus
    from arbitrage.clock import SimClock
    from arbitrage.events import Opportunity
    from arbitrage.plugin import Context
    from arbitrage.settings import Settings
    from arbitrage.strategies.triangular import TriangularStrategy

    snap = load_snapshot(MOBOOK / "Binance_US_orderbook_20230312_203153.csv", taker_fee=0.0)
    unlimited = float("inf")  # valuing a start asset depends on which books arrived first: no cap
    # scan reports limits at the last level walked: the plugin's limit tolerance off to compare
    strategy = {"min_profit_bps": 1.0, "cooldown_ms": 0.0, "max_notional": unlimited,
                "limit_slippage_bps": 0.0}
    settings = msgspec.convert({"strategy": strategy, "trading": {"max_notional": unlimited}}, Settings)
    bus, store = Bus(), BookStore()
    bus.subscribe(BookUpdate, store.update, name="books")  # first, as the engine does
    plugin = TriangularStrategy()
    plugin.setup(Context(bus=bus, settings=settings, clock=SimClock(max(b.ts_event for b in snap.books)),
                         run_id="t", books=store, liquidity=store))
    with bus.collect(Opportunity) as seen:
        for loaded in snap.markets_loaded(staleness_ms=60_000.0):
            bus.publish(loaded)
        for book in snap.books:
            bus.publish(book)
    expected = scan(snap.books, snap.markets, min_profit_bps=1.0)
    assert expected
    assert sorted((o.legs[0].symbol, o.legs[0].side, o.notional) for o in seen) == sorted(
        (item["legs"][0]["symbol"], item["legs"][0]["side"], item["amount"]) for item in expected)
