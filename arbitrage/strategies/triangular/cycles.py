"""The cycle index: every 3-cycle (optionally 4-cycle) of assets on one venue, indexed by market.

A market ``BASE/QUOTE`` is an edge between two assets that can be crossed both ways: selling
base at the bid (``BASE -> QUOTE``) or buying base at the ask (``QUOTE -> BASE``). Each direction
is an *edge id*: ``2 * market_id`` for the sell, ``2 * market_id + 1`` for the buy, so a strategy
keeps one flat list of rates indexed by edge id and a cycle is a tuple of edge ids.

The index is built once from a venue's market list. For every market it keeps the cycles that
pass through it, split by the direction the cycle crosses it and stored as flat tuples of the
*other* edges, so a book update for one market touches only the cycles through that market and
evaluates each with one multiplication per leg. The work per update grows with the cycles through
the updated market, never with the size of the venue.
"""

from __future__ import annotations

import typing as t

from arbitrage.events import Market

DEFAULT_START_ASSETS: tuple[str, ...] = (
    "USDT", "USD", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP", "EUR", "BTC", "ETH", "BNB",
)
"""Preferred starting assets, best first, when none are configured: a cycle starts (and its
profit is counted) in the first of these it contains, otherwise in its alphabetically first asset."""

USD_ASSETS: frozenset[str] = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP"})
"""Assets valued at 1 when a notional limit is applied (dollar stablecoins and USD itself)."""


def edge_market(edge: int) -> int:
    """The market id an edge id belongs to."""
    return edge >> 1


def edge_is_buy(edge: int) -> bool:
    """True when the edge buys base at the ask (quote -> base), False when it sells at the bid."""
    return bool(edge & 1)


class Cycle(t.NamedTuple):
    """One directed cycle of assets, rotated to start at its starting asset."""

    assets: tuple[str, ...]
    """Assets in trading order, starting asset first (it is not repeated at the end)."""
    edges: tuple[int, ...]
    """Edge id of each leg: leg ``i`` turns ``assets[i]`` into ``assets[i + 1]`` (wrapping)."""

    @property
    def start(self) -> str:
        """The asset the cycle starts and ends in; profit is counted in it."""
        return self.assets[0]


class CycleIndex:
    """Every cycle of a venue's markets, and which cycles pass through each market.

    :param markets: the venue's markets; ids are positions in this sequence.
    :param max_legs: 3 (triangles) or 4 (triangles and 4-asset cycles).
    :param start_assets: if given, only cycles containing one of these assets are kept, each
        starting in the first of them it contains; if None, every cycle is kept and starts as
        ``DEFAULT_START_ASSETS`` prefers.
    :raises ValueError: if ``max_legs`` is not 3 or 4.
    """

    def __init__(self, markets: t.Sequence[Market], *, max_legs: int = 3,
                 start_assets: t.Sequence[str] | None = None) -> None:
        if max_legs not in (3, 4):
            raise ValueError(f"max_legs must be 3 or 4, got {max_legs}")
        self.markets: tuple[Market, ...] = tuple(markets)
        self.market_ids: dict[str, int] = {m.symbol: i for i, m in enumerate(self.markets)}
        """Symbol -> market id (a repeated symbol keeps its last position)."""
        self.max_legs = max_legs
        self.strict_start = start_assets is not None
        preference = tuple(start_assets) if start_assets is not None else DEFAULT_START_ASSETS
        self._rank = {asset: i for i, asset in enumerate(preference)}
        self.cycles: list[Cycle] = []
        n = len(self.markets)
        self.through3: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        """Per market id: (3-cycles crossing it as a sell, as a buy), each a flat tuple of triples
        ``edge, edge, cycle id`` naming the two other legs (in trading order after this market)."""
        self.through4: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        """Like ``through3`` for 4-cycles, in quadruples ``edge, edge, edge, cycle id``."""
        self._build()
        assert len(self.through3) == n

    # -- building --------------------------------------------------------------------------------

    def _edges_between(self) -> dict[str, dict[str, list[int]]]:
        """asset -> neighbour asset -> edge ids leading there."""
        out: dict[str, dict[str, list[int]]] = {}
        for mid, market in enumerate(self.markets):
            if self.market_ids.get(market.symbol) != mid or market.base == market.quote:
                continue
            out.setdefault(market.base, {}).setdefault(market.quote, []).append(2 * mid)
            out.setdefault(market.quote, {}).setdefault(market.base, []).append(2 * mid + 1)
        return out

    def _start_of(self, assets: tuple[str, ...]) -> int | None:
        """Position of the starting asset in ``assets``, or None if the cycle must be dropped."""
        ranked = [(self._rank[a], i) for i, a in enumerate(assets) if a in self._rank]
        if ranked:
            return min(ranked)[1]
        if self.strict_start:
            return None
        return min(range(len(assets)), key=lambda i: assets[i])

    def _build(self) -> None:
        graph = self._edges_between()
        order = sorted(graph)
        paths: list[tuple[str, ...]] = []
        for first in order:
            # each directed cycle once: from its smallest asset, through larger ones only
            for b in graph[first]:
                if b <= first:
                    continue
                for c in graph[b]:
                    if c <= first or c == b:
                        continue
                    if first in graph[c]:
                        paths.append((first, b, c))
                    if self.max_legs == 4:
                        for d in graph[c]:
                            if d <= first or d in (b, c) or first not in graph[d]:
                                continue
                            paths.append((first, b, c, d))
        for assets in paths:
            start = self._start_of(assets)
            if start is None:
                continue
            rotated = assets[start:] + assets[:start]
            choices: list[tuple[int, ...]] = [()]
            for i, asset in enumerate(rotated):
                nxt = rotated[(i + 1) % len(rotated)]
                choices = [(*c, e) for c in choices for e in graph[asset][nxt]]
            for edges in choices:
                self.cycles.append(Cycle(rotated, edges))
        # flat tuples of shared int objects: one contiguous tuple per market and direction, each
        # int object shared by every tuple naming it, so an update touches little memory
        ints = list(range(max(2 * len(self.markets), len(self.cycles)) + 1))
        sell3: list[list[int]] = [[] for _ in self.markets]
        buy3: list[list[int]] = [[] for _ in self.markets]
        sell4: list[list[int]] = [[] for _ in self.markets]
        buy4: list[list[int]] = [[] for _ in self.markets]
        for cid, cycle in enumerate(self.cycles):
            edges = cycle.edges
            for i, edge in enumerate(edges):
                others = edges[i + 1:] + edges[:i]
                target = (buy3 if edge & 1 else sell3) if len(edges) == 3 else (buy4 if edge & 1 else sell4)
                target[edge >> 1].extend([ints[e] for e in others] + [ints[cid]])
        self.through3 = [(tuple(s), tuple(b)) for s, b in zip(sell3, buy3, strict=True)]
        self.through4 = [(tuple(s), tuple(b)) for s, b in zip(sell4, buy4, strict=True)]

    # -- queries ---------------------------------------------------------------------------------

    def cycles_through(self, symbol: str) -> list[Cycle]:
        """Every cycle that trades ``symbol`` (empty if the symbol is unknown)."""
        mid = self.market_ids.get(symbol)
        if mid is None:
            return []
        ids = [cid for side in self.through3[mid] for cid in side[2::3]]
        ids += [cid for side in self.through4[mid] for cid in side[3::4]]
        return [self.cycles[i] for i in sorted(ids)]

    def describe(self, cycle: Cycle) -> list[tuple[str, str]]:
        """``(symbol, side)`` of each leg of ``cycle``."""
        return [(self.markets[e >> 1].symbol, "buy" if e & 1 else "sell") for e in cycle.edges]

    def __len__(self) -> int:
        return len(self.cycles)
