"""The per-update test of the triangular detector: which cycles through an updated market might pay.

Compiled by Cython where a compiler exists (pure-Python mode, listed in ``arbitrage.compiled``),
run as it is where not; the same file either way.

A ``BookUpdate`` for market M refreshes M's two rates (top of book, fee included) and tests the
cycles through M: one product of the other legs' rates per cycle against ``threshold / rate of M``.
Most updates skip even that loop. Every edge keeps a *ceiling* (``slack`` above its rate when the
ceiling was set) and a *bound*: the largest product of the other edges' ceilings over the cycles
through it. While every rate stays under its ceiling, ``rate of M * bound`` below the threshold
proves that no cycle through M passes, in two multiplications. A rate that leaves the band
``[ceiling / slack², ceiling]`` gets a new ceiling and resets the bounds of every edge that shares
a cycle with it (recomputed by the next loop over their cycles): going up, because those bounds no
longer hold; going down, so that they do not stay loose. The test never misses a cycle: it only
decides when looping is needed.

The check keeps rates, not books (the books are in the engine's ``BookStore``). Its numbers sit in
contiguous arrays so that an update touches a handful of cache lines: per edge ``e`` the rate,
ceiling and bound are ``_st[3e]``, ``_st[3e + 1]``, ``_st[3e + 2]``, and the cycles through each
edge are one slice of a flat ``int`` array (``_cyc3[_off3[e]:_off3[e + 1]]``: the other edges of
each cycle, then its id). Edges and cycles are those of ``arbitrage.strategies.triangular.cycles``.
"""

from __future__ import annotations

import typing as t
from array import array

import cython

from arbitrage.events import BookUpdate

__all__ = ["CycleCheck"]

_INF = float("inf")
Through = t.Sequence[tuple[tuple[int, ...], tuple[int, ...]]]
"""Per market id: (cycles crossing it as a sell, as a buy), each a flat tuple of the other edges
and the cycle id."""


def _flatten(through: Through, n: int, width: int) -> tuple[array[int], array[int]]:
    """Per edge id, where its cycles start in one flat array (``2n + 1`` offsets), and that array.

    :raises ValueError: if ``through`` is not one (sells, buys) pair per market, a tuple does not
        hold whole cycles, or names an edge that does not exist (the compiled loops do not check).
    """
    if len(through) != n:
        raise ValueError(f"one (sells, buys) pair of cycles per market: {len(through)} for {n} markets")
    offsets = array("i", [0])
    flat = array("i")
    for pair in through:
        for cycles in pair:
            if len(cycles) % width:
                raise ValueError(f"flat cycle tuples have the wrong length: {len(cycles)} is not whole "
                                 f"cycles of {width}")
            for i in range(0, len(cycles), width):
                if not all(0 <= e < 2 * n for e in cycles[i:i + width - 1]):
                    raise ValueError(f"edge id out of range in {cycles[i:i + width]}")
            flat.extend(cycles)
            offsets.append(len(flat))
    return offsets, flat


@cython.final
@cython.cclass
class CycleCheck:
    """Rates, ceilings and bounds of one venue's edges, and the per-update cycle test.

    :param market_ids: symbol -> market id.
    :param sell_mult: per market, the factor from best bid to the sell rate (``1 - fee``, or
        ``1 / (1 + fee)`` where the sale's fee is taken in base).
    :param buy_mult: per market, the factor from best ask to the buy rate (``1 / (1 + fee)`` / ask,
        or ``(1 - fee)`` / ask where the buy's fee is taken from the base it receives).
    :param through3: 3-cycles through each market (``CycleIndex.through3``).
    :param through4: 4-cycles through each market, tested only when ``four``.
    :param threshold_eps: a cycle passes when its rate product exceeds this.
    :param staleness_ns: ``update`` tests nothing for a book older than this at ``now_ns``.
    :param slack: how far a rate may move from its value at the last reset of its bounds.
    :raises ValueError: if the cycle tuples or market ids do not fit the markets.
    """

    _ids: dict[str, int]
    _st: cython.double[::1]
    _sell_mult: cython.double[::1]
    _buy_mult: cython.double[::1]
    _off3: cython.int[::1]
    _cyc3: cython.int[::1]
    _off4: cython.int[::1]
    _cyc4: cython.int[::1]
    _n: cython.Py_ssize_t
    _four: cython.bint
    _eps: cython.double
    _staleness_ns: cython.double
    _slack: cython.double
    _slack2: cython.double
    scans = cython.declare(cython.Py_ssize_t, visibility="readonly")
    """Updates whose bound did not rule out every cycle, so the cycles were looped over."""
    skipped_crossed = cython.declare(cython.Py_ssize_t, visibility="readonly")
    skipped_stale = cython.declare(cython.Py_ssize_t, visibility="readonly")

    def __init__(self, market_ids: dict[str, int], sell_mult: t.Sequence[float], buy_mult: t.Sequence[float],
                 through3: Through, through4: Through, four: bool, threshold_eps: float, staleness_ns: float,
                 slack: float) -> None:
        n = len(sell_mult)
        if len(buy_mult) != n or not all(0 <= mid < n for mid in market_ids.values()):
            raise ValueError("one rate factor of each side per market, and market ids below their count")
        self._ids = dict(market_ids)
        self._n = n
        self._sell_mult = array("d", sell_mult)
        self._buy_mult = array("d", buy_mult)
        self._off3, self._cyc3 = _flatten(through3, n, 3)
        self._off4, self._cyc4 = _flatten(through4, n, 4)
        self._st = array("d", [0.0, 0.0, _INF] * (2 * n))
        self._four = four
        self._eps = threshold_eps
        self._staleness_ns = staleness_ns
        self._slack = slack
        self._slack2 = slack * slack
        self.scans = 0
        self.skipped_crossed = 0
        self.skipped_stale = 0

    @cython.locals(edge=cython.Py_ssize_t)
    def rate(self, edge: int) -> float:
        """Top-of-book rate of ``edge``, fee included; 0 when the side is empty or the book crossed.

        :raises IndexError: for an edge id that does not exist.
        """
        if not 0 <= edge < 2 * self._n:
            raise IndexError(f"edge id out of range: {edge}")
        return self._st[3 * edge]

    @cython.locals(e=cython.Py_ssize_t)
    def rates(self) -> list[float]:
        """Every edge's rate (a copy)."""
        return [self._st[3 * e] for e in range(2 * self._n)]

    def refresh(self, book: BookUpdate) -> int:
        """Refresh the rates of ``book``'s market. Returns the market id, or -1 for an unknown symbol
        or a crossed book (whose rates become 0)."""
        mid = self._ids.get(book.symbol)
        if mid is None:
            return -1
        return self._set_rates(mid, book)

    @cython.cfunc
    @cython.locals(e=cython.Py_ssize_t, rs=cython.double, rb=cython.double, ask=cython.double,
                   high=cython.double)
    def _set_rates(self, mid: cython.Py_ssize_t, book: BookUpdate) -> cython.Py_ssize_t:
        bids = book.bids
        asks = book.asks
        e = mid + mid
        rs = bids[0][0] if bids else 0.0
        ask = asks[0][0] if asks else 0.0
        if rs >= ask > 0.0:
            self._st[3 * e] = 0.0
            self._st[3 * e + 3] = 0.0
            self.skipped_crossed += 1
            return -1
        rs *= self._sell_mult[mid]
        rb = self._buy_mult[mid] / ask if ask > 0.0 else 0.0
        self._st[3 * e] = rs
        self._st[3 * e + 3] = rb
        high = self._st[3 * e + 1]
        if rs > high or rs * self._slack2 < high:
            self._reset_bounds(e)
            self._st[3 * e + 1] = rs * self._slack
        high = self._st[3 * e + 4]
        if rb > high or rb * self._slack2 < high:
            self._reset_bounds(e + 1)
            self._st[3 * e + 4] = rb * self._slack
        return mid

    @cython.locals(m=cython.Py_ssize_t, e=cython.Py_ssize_t, now=cython.longlong, ts=cython.longlong,
                   rs=cython.double, rb=cython.double, sell=cython.bint, buy=cython.bint)
    def update(self, book: BookUpdate, now_ns: int) -> list[int] | None:
        """Refresh ``book``'s rates and return the ids of the cycles through its market that pass at
        top of book, or None when there are none."""
        mid = self._ids.get(book.symbol)
        if mid is None:
            return None
        m = mid
        if self._set_rates(m, book) < 0:
            return None
        now = now_ns
        ts = book.ts_event
        if now - ts > self._staleness_ns:
            self.skipped_stale += 1
            return None
        e = m + m
        rs = self._st[3 * e]
        rb = self._st[3 * e + 3]
        # rs * inf is nan for an empty side (rs == 0): nan > eps is False, so that side is skipped
        sell = rs * self._st[3 * e + 2] > self._eps
        buy = rb * self._st[3 * e + 5] > self._eps
        if not (sell or buy):
            return None
        self.scans += 1
        hits: list[int] = []
        if sell:
            self._st[3 * e + 2] = self._scan(e, rs, hits)
        if buy:
            self._st[3 * e + 5] = self._scan(e + 1, rb, hits)
        return hits or None

    @cython.cfunc
    @cython.locals(i=cython.Py_ssize_t, a=cython.Py_ssize_t, b=cython.Py_ssize_t, c=cython.Py_ssize_t,
                   limit=cython.double, top=cython.double, high=cython.double)
    def _scan(self, edge: cython.Py_ssize_t, r: cython.double, hits: list[int]) -> cython.double:
        """Append to ``hits`` the cycles through ``edge`` (of rate ``r`` > 0) that pass at top of
        book; return that edge's new bound."""
        limit = self._eps / r
        top = 0.0
        for i in range(self._off3[edge], self._off3[edge + 1], 3):
            a = self._cyc3[i]
            b = self._cyc3[i + 1]
            if self._st[3 * a] * self._st[3 * b] > limit:
                hits.append(self._cyc3[i + 2])
            high = self._st[3 * a + 1] * self._st[3 * b + 1]
            if high > top:
                top = high
        if self._four:
            for i in range(self._off4[edge], self._off4[edge + 1], 4):
                a = self._cyc4[i]
                b = self._cyc4[i + 1]
                c = self._cyc4[i + 2]
                if self._st[3 * a] * self._st[3 * b] * self._st[3 * c] > limit:
                    hits.append(self._cyc4[i + 3])
                high = self._st[3 * a + 1] * self._st[3 * b + 1] * self._st[3 * c + 1]
                if high > top:
                    top = high
        return top

    @cython.cfunc
    @cython.locals(i=cython.Py_ssize_t)
    def _reset_bounds(self, edge: cython.Py_ssize_t) -> None:
        """A rate left its band: mark the bounds of the other edges of its cycles for recomputation."""
        for i in range(self._off3[edge], self._off3[edge + 1], 3):
            self._st[3 * self._cyc3[i] + 2] = _INF
            self._st[3 * self._cyc3[i + 1] + 2] = _INF
        if self._four:
            for i in range(self._off4[edge], self._off4[edge + 1], 4):
                self._st[3 * self._cyc4[i] + 2] = _INF
                self._st[3 * self._cyc4[i + 1] + 2] = _INF
                self._st[3 * self._cyc4[i + 2] + 2] = _INF
