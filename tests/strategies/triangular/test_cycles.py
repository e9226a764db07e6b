"""The cycle index: which cycles exist, where they start, and which cycles each market reaches."""

from __future__ import annotations

import itertools

import pytest

from arbitrage.events import Market
from arbitrage.strategies.triangular.cycles import CycleIndex, edge_is_buy, edge_market


def market(symbol: str, fee: float = 0.001) -> Market:
    base, quote = symbol.split("/")
    return Market(symbol=symbol, base=base, quote=quote, taker_fee=fee)


TRIANGLE = [market("BTC/USDT"), market("ETH/BTC"), market("ETH/USDT")]


def test_triangle_gives_both_directions_starting_in_the_stablecoin() -> None:
    index = CycleIndex(TRIANGLE)
    assert sorted(c.assets for c in index.cycles) == [("USDT", "BTC", "ETH"), ("USDT", "ETH", "BTC")]
    by_assets = {c.assets: index.describe(c) for c in index.cycles}
    assert by_assets[("USDT", "BTC", "ETH")] == [
        ("BTC/USDT", "buy"), ("ETH/BTC", "buy"), ("ETH/USDT", "sell")]
    assert by_assets[("USDT", "ETH", "BTC")] == [
        ("ETH/USDT", "buy"), ("ETH/BTC", "sell"), ("BTC/USDT", "sell")]


def test_edge_ids_encode_market_and_direction() -> None:
    index = CycleIndex(TRIANGLE)
    for cycle in index.cycles:
        for i, edge in enumerate(cycle.edges):
            m = index.markets[edge_market(edge)]
            src, dst = cycle.assets[i], cycle.assets[(i + 1) % 3]
            assert (m.quote, m.base) == (src, dst) if edge_is_buy(edge) else (m.base, m.quote) == (src, dst)


def test_every_market_of_a_triangle_indexes_both_cycles_once_per_direction() -> None:
    index = CycleIndex(TRIANGLE)
    for mid in range(3):
        sells, buys = index.through3[mid]
        assert len(sells) == 3 and len(buys) == 3  # one cycle each way: (edge, edge, cycle id)
        assert len(index.cycles_through(TRIANGLE[mid].symbol)) == 2


def test_cycles_through_unknown_symbol_is_empty() -> None:
    assert CycleIndex(TRIANGLE).cycles_through("DOGE/USDT") == []


def test_markets_without_a_closing_market_make_no_cycle() -> None:
    assert len(CycleIndex([market("BTC/USDT"), market("ETH/USDT"), market("SOL/BTC")])) == 0


def test_start_assets_filter_and_rotate_cycles() -> None:
    markets = [*TRIANGLE, market("BNB/BTC"), market("BNB/ETH")]
    index = CycleIndex(markets, start_assets=["BTC"])
    assert {c.start for c in index.cycles} == {"BTC"}
    assert len(index) == 4  # BTC-ETH-USDT and BTC-BNB-ETH, both directions
    index = CycleIndex(markets, start_assets=["USDT"])
    assert {c.assets for c in index.cycles} == {("USDT", "BTC", "ETH"), ("USDT", "ETH", "BTC")}


def test_cycles_without_a_preferred_asset_start_at_the_alphabetically_first() -> None:
    index = CycleIndex([market("XRP/ADA"), market("DOT/ADA"), market("XRP/DOT")])
    assert {c.start for c in index.cycles} == {"ADA"}


def test_max_legs_4_adds_four_asset_cycles() -> None:
    markets = [market("BTC/USDT"), market("ETH/BTC"), market("SOL/ETH"), market("SOL/USDT")]
    assert len(CycleIndex(markets)) == 0
    index = CycleIndex(markets, max_legs=4)
    assert len(index) == 2
    assert all(len(c.edges) == 4 for c in index.cycles)
    sells, buys = index.through4[0]
    assert len(sells) + len(buys) == 8  # both cycles, 4 ints each


def test_max_legs_other_than_3_or_4_raises() -> None:
    with pytest.raises(ValueError, match="max_legs"):
        CycleIndex(TRIANGLE, max_legs=5)


def test_complete_graph_has_every_directed_triangle_once() -> None:
    assets = ["A", "B", "C", "D", "E"]
    markets = [market(f"{a}/{b}") for a, b in itertools.combinations(assets, 2)]
    index = CycleIndex(markets)
    # C(5,3) triangles x 2 directions
    assert len(index) == 20
    keys = set()
    for c in index.cycles:
        i = c.assets.index(min(c.assets))
        keys.add(c.assets[i:] + c.assets[:i])
    assert len(keys) == 20
    # each market lies on 3 triangles, each crossed once per direction of the cycle
    assert all(len(index.cycles_through(m.symbol)) == 6 for m in markets)
    index4 = CycleIndex(markets, max_legs=4)
    # plus C(5,4) * 3 undirected 4-cycles x 2 directions
    assert len(index4) == 20 + 5 * 3 * 2
