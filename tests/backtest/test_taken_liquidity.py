"""A planted-dislocation backtest: each frozen window is swept once, never re-fired into what we took.

Three venues quote BTC/USDT, every one publishing a book each 100 ms (A at +0, B at +33, C at +66).
Between windows all three quote 97 / 103 (nothing pays after two 0.1 % fees, nor does one venue
entering or leaving a window against the others still quiet). In each window
two books freeze for 3 s -- the venue keeps publishing the same levels with a fresh timestamp --
while the third quotes wide (95 / 105):

* the cheap venue: bids 97.9 x 5, asks 98 x ``ask``, then 102.5 x 5;
* the dear venue: bids 102 x ``bid``, then 97.5 x 5, asks 102.1 x 5.

Hand-computed sweep: buying at 98 and selling at 102 pays 102 * 0.999 - 98 * 1.001 = 101.898 -
98.098 = 3.8 USDT per BTC (388 bps); the next ask (102.5) is above the bid, the next bid (97.5)
below the ask, so the sweep is ``min(ask, bid)`` BTC for ``3.8 * min(ask, bid)`` USDT. Cooldown is
0 and the latency 150 ms, so books keep arriving while the legs are in flight and after they
filled: only the overlay (in flight, then taken) stops a second trade on the same levels.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backtest._data import T, backtest, line

QUIET = ([[97.0, 5.0]], [[103.0, 5.0]])
WIDE = ([[95.0, 5.0]], [[105.0, 5.0]])
WINDOWS = (("A", "B", "C", 0.5, 0.8), ("B", "C", "A", 0.6, 0.4), ("C", "A", "B", 0.3, 0.3))
"""(cheap venue, dear venue, wide venue, BTC at the cheap ask, BTC at the dear bid)."""
OFFSET = {"A": 0, "B": 33, "C": 66}


def recording() -> tuple[list[str], list[float]]:
    """The recording's lines and each window's hand-computed sweep profit."""
    lines: list[str] = []
    sweeps: list[float] = []
    ms = 0
    for tick in range(10):  # 1 s quiet
        lines += [line(T + ms + tick * 100 + OFFSET[v], v, *QUIET) for v in "ABC"]
    ms += 1000
    for cheap, dear, wide, ask, bid in WINDOWS:
        books = {cheap: ([[97.9, 5.0]], [[98.0, ask], [102.5, 5.0]]),
                 dear: ([[102.0, bid], [97.5, 5.0]], [[102.1, 5.0]]),
                 wide: WIDE}
        for tick in range(30):  # 3 s frozen
            lines += [line(T + ms + tick * 100 + OFFSET[v], v, *books[v]) for v in "ABC"]
        ms += 3000
        for tick in range(10):  # 1 s quiet
            lines += [line(T + ms + tick * 100 + OFFSET[v], v, *QUIET) for v in "ABC"]
        ms += 1000
        sweeps.append(3.8 * min(ask, bid))
    return lines, sweeps


def test_each_frozen_window_is_traded_once_for_the_hand_computed_sweep(tmp_path: Path) -> None:
    lines, sweeps = recording()
    result = backtest(tmp_path, lines, strategy={"cooldown_ms": 0.0}, trading={"latency_ms": 150.0})
    arbs = result["arbs"]
    assert [(a["buy_venue"], a["sell_venue"]) for a in arbs] == [(w[0], w[1]) for w in WINDOWS]
    for arb, sweep, window in zip(arbs, sweeps, WINDOWS, strict=True):
        assert arb["status"] == "complete"
        assert arb["amount"] == pytest.approx(min(window[3], window[4]))
        assert arb["realized_profit"] == pytest.approx(sweep, abs=1e-9)
    total = sum(a["realized_profit"] for a in arbs)
    assert total == pytest.approx(sum(sweeps), rel=0.03)
