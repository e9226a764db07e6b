"""Hand-built recordings with answers worked out by hand: what the replay trades, and when.

Every scenario has venues A and B quoting BTC/USDT, taker fee 0.1 % on both (the default for
data without fees), min_profit_bps 5, paper balances 10,000 USDT and 10 BTC, cooldown 250 ms,
staleness 2,000 ms and paper latency 25 ms unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import typing as t
from pathlib import Path

import pytest
import uvloop

from arbitrage.backtest.runner import run_backtest
from arbitrage.clock import SimClock
from arbitrage.engine import Engine
from arbitrage.errors import SettingsError
from arbitrage.events import BookUpdate, MarketsLoaded
from arbitrage.plugin import Context, Plugin
from arbitrage.sources.replay import ReplaySource
from tests.backtest._data import FLAT_ASKS, FLAT_BIDS, T, backtest, line, settings, write

DISLOCATED_ASKS = [[99.0, 1.0], [99.5, 1.0], [100.1, 5.0]]
"""A's asks during the dislocation: 2 BTC below B's bid of 99.9, then back to normal."""


def dislocation(life_ms: int = 300, repeats: int = 0) -> list[str]:
    """A and B quiet, then A's asks drop at T+100 for ``life_ms``; ``repeats`` re-sends of A's book."""
    lines = [line(T, "A", FLAT_BIDS, FLAT_ASKS), line(T + 10, "B", FLAT_BIDS, FLAT_ASKS),
             line(T + 100, "A", [[98.9, 5.0]], DISLOCATED_ASKS)]
    for i in range(repeats):  # the same snapshot again: same exchange time, received later
        received = (T + 110 + 20 * i) * 1_000_000
        lines.append(line(T + 100, "A", [[98.9, 5.0]], DISLOCATED_ASKS, ts_init=received))
    lines.append(line(T + 100 + life_ms, "A", FLAT_BIDS, FLAT_ASKS))
    return lines


def test_dislocation_yields_the_hand_computed_profit_once(tmp_path: Path) -> None:
    # Buy on A, sell on B. Per BTC after fees: selling at 99.9 nets 99.9 * 0.999 = 99.8001.
    #   level 1: buy 1 @ 99.0 costs 99.0 * 1.001 = 99.0990  -> +0.7011 (70.8 bps, >= 5)
    #   level 2: buy 1 @ 99.5 costs 99.5 * 1.001 = 99.5995  -> +0.2006 (keeps the average above 5 bps)
    #   level 3: 100.1 * 1.001 > 99.8001                    -> stop
    # amount 2 BTC: buy notional 198.5 (fee 0.1985), sell 199.8 (fee 0.1998),
    # net profit 199.8 - 0.1998 - 198.5 - 0.1985 = 0.9017 USDT. Orders arrive 25 ms later, while A
    # still shows those asks, so the fills match the plan. The same snapshot sent again three
    # times (same ts_event) and a fresh copy inside the cooldown must not trade again.
    lines = dislocation(repeats=3)
    lines.insert(-1, line(T + 200, "A", [[98.9, 5.0]], DISLOCATED_ASKS))  # a new snapshot, same levels
    result = backtest(tmp_path, lines)
    assert result["events"] == 8
    assert result["opportunities"] == 1
    assert result["arbs_executed"] == 1
    (arb,) = result["arbs"]
    assert arb["status"] == "complete"
    assert (arb["buy_venue"], arb["sell_venue"], arb["symbol"]) == ("A", "B", "BTC/USDT")
    assert arb["amount"] == pytest.approx(2.0)
    assert arb["expected_profit"] == pytest.approx(0.9017, abs=1e-9)
    assert arb["realized_profit"] == pytest.approx(0.9017, abs=1e-9)
    assert arb["fees"] == pytest.approx(0.1985 + 0.1998, abs=1e-9)
    assert arb["ts"] == T + 125  # filled when the orders arrived, in event time
    assert result["realized_pnl"] == {"USDT": pytest.approx(0.9017, abs=1e-9)}
    assert result["gross_pnl"] == {"USDT": pytest.approx(0.9017 + 0.3983, abs=1e-9)}
    assert result["fill_ratio"] == 1.0


def test_no_trade_when_the_spread_does_not_cover_fees(tmp_path: Path) -> None:
    # A sells at 99.95, B buys at 100.00: 5 cents gross per BTC, but the fees are
    # 99.95 * 0.001 + 100.0 * 0.001 = 0.19995 per BTC, so nothing pays.
    lines = [line(T, "A", [[99.9, 1.0]], [[99.95, 1.0]]), line(T + 10, "B", [[100.0, 1.0]], [[100.1, 1.0]])]
    assert backtest(tmp_path, lines)["opportunities"] == 0
    # Without fees the same books pay 0.05 USDT on 99.95 (5.0025 bps >= 5): the spread was there.
    free = backtest(tmp_path, lines, backtest={"fee": 0.0})
    assert free["opportunities"] == 1
    assert free["arbs"][0]["realized_profit"] == pytest.approx(0.05, abs=1e-9)


def test_stale_books_are_ignored(tmp_path: Path) -> None:
    # B's only book is from T. A's dislocation at T+3000 finds B's book 3,000 ms old, past the
    # 2,000 ms staleness limit: no opportunity. The same dislocation at T+1000 trades.
    def lines(at: int) -> list[str]:
        return [line(T, "B", FLAT_BIDS, FLAT_ASKS), line(T + at, "A", [[98.9, 5.0]], DISLOCATED_ASKS)]

    assert backtest(tmp_path, lines(3000))["opportunities"] == 0
    assert backtest(tmp_path, lines(1000))["arbs_executed"] == 1
    # With a longer limit the old book counts again.
    assert backtest(tmp_path, lines(3000), backtest={"staleness_ms": 5000.0})["arbs_executed"] == 1


def test_latency_longer_than_the_dislocation_gives_no_fill(tmp_path: Path) -> None:
    # A's cheap asks live from T+100 to T+150. With 100 ms latency the buy reaches A at T+200,
    # when A asks 100.1 again, above the 99.5 limit: the buy fills nothing (the sell on B fills
    # and is hedged back), so the legs' fill ratio is (0 + 1) / 2.
    slow = backtest(tmp_path, dislocation(life_ms=50), trading={"latency_ms": 100.0})
    assert slow["opportunities"] == 1
    (arb,) = slow["arbs"]
    assert arb["status"] != "complete"
    assert arb["fill_ratio"] == pytest.approx(0.5)
    assert arb["realized_profit"] < 0
    # 25 ms latency: the orders arrive at T+125, inside the dislocation, and fill completely.
    fast = backtest(tmp_path, dislocation(life_ms=50), trading={"latency_ms": 25.0})
    assert fast["arbs"][0]["status"] == "complete"
    assert fast["arbs"][0]["realized_profit"] == pytest.approx(0.9017, abs=1e-9)


def test_order_arriving_with_a_book_fills_against_the_book_before_it(tmp_path: Path) -> None:
    # Latency 50 ms: the orders arrive at T+150, exactly when A's restoring book is received.
    # Timers due at a book's timestamp fire before that book is applied, so they still fill.
    result = backtest(tmp_path, dislocation(life_ms=50), trading={"latency_ms": 50.0})
    assert result["arbs"][0]["status"] == "complete"


def on_loop(kind: str, call: t.Callable[[], t.Any]) -> t.Any:
    """``call()`` with every ``asyncio.run`` inside it on a loop of ``kind`` (asyncio or uvloop)."""
    if kind == "asyncio":
        return call()
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        return call()
    finally:
        asyncio.set_event_loop_policy(policy)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_hedge_leaves_when_the_fill_that_needs_it_ends_even_with_books_arriving(tmp_path: Path,
                                                                                  loop: str) -> None:
    # Latency 100 ms: the legs leave at T+100 and arrive at T+200. A's cheap asks are gone (back to
    # 100.1 since T+150, above the 99.5 limit): the buy fills nothing, the sell on B fills 2 @ 99.9.
    # The hedge buying 2 BTC back leaves at T+200, when that fill ends, and arrives at T+300, although
    # B publishes a book at T+250 in between: time moves on only once the hedge is on its way.
    # sell 2 @ 99.9: +199.8 - 0.1998; hedge buy 2 @ 100.1: -200.2 - 0.2002; realized -0.8 USDT.
    lines = [*dislocation(life_ms=50), line(T + 250, "B", FLAT_BIDS, FLAT_ASKS),
             line(T + 400, "B", FLAT_BIDS, FLAT_ASKS)]
    result = on_loop(loop, lambda: backtest(tmp_path, lines, trading={"latency_ms": 100.0}))
    (arb,) = result["arbs"]
    assert (arb["status"], arb["orders"], arb["ts"]) == ("partial", 3, T + 300)
    assert arb["realized_profit"] == pytest.approx(-0.8, abs=1e-9)
    assert result["stop_reason"] == "replay: end of data"


def test_uvloop_and_asyncio_loops_give_the_same_trades(tmp_path: Path, sim_recording: Path) -> None:
    # The replay learns what is in flight from events and the clock, not from a loop's internals.
    for latency in (0.0, 25.0):
        cfg = settings(tmp_path, trading={"latency_ms": latency})
        results = [on_loop(loop, lambda cfg=cfg: run_backtest(cfg, [sim_recording], storage=False))
                   for loop in ("asyncio", "uvloop")]
        assert results[0]["arbs_executed"] > 10
        assert results[0]["fingerprint"] == results[1]["fingerprint"]
        assert results[0]["arbs"] == results[1]["arbs"]


def test_files_are_merged_by_receive_time_and_out_of_order_books_counted(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [line(T, "A", FLAT_BIDS, FLAT_ASKS),
                                     line(T + 100, "A", [[98.9, 5.0]], DISLOCATED_ASKS)])
    b = write(tmp_path / "b.jsonl", [line(T + 10, "B", FLAT_BIDS, FLAT_ASKS),
                                     line(T + 5, "B", FLAT_BIDS, FLAT_ASKS)])  # older than the clock
    result = run_backtest(settings(tmp_path), [a, b], storage=False)
    assert result["events"] == 4
    assert result["out_of_order"] == 1
    assert result["arbs_executed"] == 1
    assert (result["first_ts"], result["last_ts"]) == (T, T + 100)


def test_arbs_in_flight_at_the_end_of_the_data_still_finish(tmp_path: Path) -> None:
    # The dislocated book is the last line: the orders wait 25 ms past the end of the data.
    result = backtest(tmp_path, dislocation()[:-1])
    assert result["arbs_executed"] == 1
    assert result["arbs"][0]["ts"] == T + 125
    assert result["stop_reason"] == "replay: end of data"


def test_mobook_snapshot_triangular_cycle_realizes_the_hand_computed_profit(tmp_path: Path) -> None:
    # Binance.US snapshot 2022-08-02 22:00:20, no fees: USD -> BTC -> ETH -> USD pays at top of book:
    #   buy 0.0043038 BTC at 23091.17 USD  = 99.379777446 USD spent
    #   buy 0.06 ETH at 0.07173 BTC        = 0.0043038 BTC spent (all of it)
    #   sell 0.06 ETH at 1656.36 USD       = 99.3816 USD received
    # profit 99.3816 - 99.379777446 = 0.001822554 USD. Markets are announced from a first pass over
    # the file, before any book, so the cycle index is complete when the books arrive. Limits at the
    # last level walked (limit_slippage_bps 0): a 0.18 bps cycle has no margin for a tolerance.
    mobook = Path(__file__).resolve().parents[3] / "shared" / "data" / "mobook"
    path = mobook / "Binance_US_orderbook_2022-08-02_22_00_20.csv"
    if not path.exists():
        pytest.skip(f"{path} not available")
    cfg = settings(tmp_path, run={"strategy": "triangular"}, strategy={"min_profit_bps": 0.0,
                                                                   "limit_slippage_bps": 0.0},
                   backtest={"fee": 0.0, "staleness_ms": 60_000.0},
                   paper={"balances": {"USD": 100_000.0, "BTC": 10.0, "ETH": 100.0}})
    result = run_backtest(cfg, [path], storage=False)
    (arb,) = result["arbs"]
    assert arb["symbols"] == ["BTC/USD", "ETH/BTC", "ETH/USD"]
    assert arb["status"] == "complete"
    assert arb["realized_profit"] == pytest.approx(0.001822554, abs=1e-9)


class _Seen(Plugin):
    name = "seen"
    kind = "monitor"

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        self.events: list[MarketsLoaded | BookUpdate] = []
        ctx.bus.subscribe(MarketsLoaded, self.events.append)
        ctx.bus.subscribe(BookUpdate, self.events.append)


def test_bare_data_announces_each_venues_markets_once_before_any_book(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [line(T, "B", FLAT_BIDS, FLAT_ASKS),
                                       line(T + 1, "A", FLAT_BIDS, FLAT_ASKS, symbol="ETH/USDT"),
                                       line(T + 2, "A", FLAT_BIDS, FLAT_ASKS)])
    seen = _Seen()
    engine = Engine(settings(tmp_path, backtest={"taker_fee": 0.002}), clock=SimClock(0),
                    plugins=[ReplaySource([path]), seen])
    asyncio.run(engine.run(duration=10))
    first, second, *books = seen.events
    assert isinstance(first, MarketsLoaded) and isinstance(second, MarketsLoaded)
    assert (first.venue, [m.symbol for m in first.markets]) == ("A", ["BTC/USDT", "ETH/USDT"])
    assert (second.venue, [m.symbol for m in second.markets]) == ("B", ["BTC/USDT"])
    assert {m.taker_fee for m in first.markets} == {0.002} and first.staleness_ms == 2000.0
    assert [type(b) for b in books] == [BookUpdate] * 3


def test_replay_refuses_a_wall_clock(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [line(T, "A", FLAT_BIDS, FLAT_ASKS)])
    with pytest.raises(SettingsError, match="run.source: the replay source needs a simulated clock"):
        asyncio.run(Engine(settings(tmp_path), plugins=[ReplaySource([path])]).run(duration=1))
