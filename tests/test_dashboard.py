"""The live view renders the run's shared services: books, the monitor's readings, the trader's state."""

from __future__ import annotations

from pathlib import Path

from loguru import logger
from rich.console import Console

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.events import ArbStateChanged, BookUpdate, FeedStatus, Position, PositionUpdate
from arbitrage.plugin import Context, TradingState
from arbitrage.settings import Settings
from arbitrage.tally import Tally
from arbitrage.ui.dashboard import Dashboard, best_spread
from tests.monitor.helpers import (
    MS,
    T0,
    MonitorHarness,
    S,
    halt_path,
    opportunity,
    result,
    run,
    settings_with,
)


def rendered(dashboard: Dashboard) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(dashboard.render())
    return console.export_text()


def row(text: str, *needles: str) -> list[str]:
    """The cells of the one line of ``text`` containing every needle."""
    lines = [line for line in text.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, (needles, text)
    return [cell.strip() for cell in lines[0].split("│")]


def test_dashboard_renders_venues_books_spreads_arbs_alerts_and_halt(tmp_path: Path) -> None:
    async def scenario() -> str:
        h = MonitorHarness(settings_with(halt_file=halt_path(tmp_path)))
        h.ctx.tally = Tally(h.bus)  # the engine's counts, as a run has them
        dashboard = Dashboard()
        dashboard.setup(h.ctx)
        await h.start()
        for venue in ("alpha", "beta", "gamma"):
            h.markets(venue, "BTC/USDT", "ETH/USDT", fee=0.001)
            h.bus.publish(FeedStatus(venue=venue, status="connected", ts_init=T0), venue)
        h.book("alpha", "BTC/USDT", 100.0, 101.0, ts_event=T0 - 4 * MS)
        h.book("beta", "BTC/USDT", 102.0, 103.0, ts_event=T0 - 2 * MS)
        h.book("gamma", "BTC/USDT", 99.0, 100.5, ts_event=T0 - 2 * MS)
        h.book("alpha", "ETH/USDT", 10.0, 10.1)
        h.bus.publish(opportunity("run-7", book_ts=T0 - 2 * MS, ts_init=T0 + MS))
        h.bus.publish(result("run-7", realized=1.5, unrealized=-0.001, ts=T0 + 30 * MS))  # left the 0.01 BTC
        held = Position(venue="alpha", asset="BTC", quote="USDT", amount=0.01, cost=1.001, mark=100.0)
        h.bus.publish(PositionUpdate(position=held, ts_init=T0 + 30 * MS))
        h.bus.publish(FeedStatus(venue="gamma", status="error", detail="socket closed", ts_init=T0), "gamma")
        h.check_at(T0 + 500 * MS)
        h.monitor.halt("daily_loss", "daily realized loss 60 USDT reached the limit 50 USDT",
                       write_file=False)
        text = rendered(dashboard)
        await h.stop()
        return text

    text = run(scenario())
    assert "TRADING HALTED: daily realized loss 60 USDT reached the limit 50 USDT" in text
    # realized 1.5; 0.01 BTC that cost 1.001 marked at 100: 1 - 1.001 = -0.001; net 1.499
    assert "net PnL +1.4990 USDT (realized +1.5000, unrealized -0.0010)" in text and "loop lag" in text
    assert row(text, "alpha", "connected")[:3] == ["alpha", "connected", "2"]  # two symbols
    assert row(text, "gamma", "error", "│       1")[:3] == ["gamma", "error", "1"]
    # buy gamma at 100.5, sell beta at 102, 0.1 % fees: (102 * 0.999 - 100.5 * 1.001) / 100.5 = +129.1 bps
    assert row(text, "BTC/USDT", "/ 101") == ["BTC/USDT", "100 / 101", "102 / 103", "99 / 100.5", "+129.1",
                                              "gamma→beta"]
    assert row(text, "ETH/USDT") == ["ETH/USDT", "10 / 10.1", "-", "-", "-", ""]
    # the arbitrage: realized +1.5, net 1.5 - 0.001 = +1.499 with the BTC it left open
    assert row(text, "buy BTC/USDT@alpha") == ["7", "buy BTC/USDT@alpha → sell BTC/USDT@beta", "0.01",
                                               "+1.0000", "complete", "+1.5000", "+1.4990"]
    assert row(text, "gamma feed error: socket closed") == ["error", "feed.status:gamma",
                                                             "gamma feed error: socket closed"]
    assert "latency: book→opp p50 1.00 / p99 1.00 ms   opp→result p50 29 / p99 29 ms" in text


class _Trading:
    """A trader's state as the ``TradingState`` service shows it."""

    def __init__(self) -> None:
        self.open_arbs = ("r1-9", "r1-10")
        self.balances: dict[str, dict[str, float]] = {}
        self.residual: dict[str, float] = {}
        self.positions = (Position(venue="beta", asset="BTC", quote="USDT", amount=-1.0, cost=-109.78,
                                   mark=111.0, stale=True),)
        self.halted = "manual halt"


def test_dashboard_without_a_monitor_reads_the_book_store_and_the_trading_state() -> None:
    bus, clock, store = Bus(), SimClock(T0), BookStore()
    trading: TradingState = _Trading()
    ctx = Context(bus=bus, settings=Settings(), clock=clock, run_id="r1", log=logger, books=store,
                  liquidity=store)
    ctx.views.trading = trading
    for v, b, a in (("alpha", 100.0, 100.2), ("beta", 100.1, 100.3)):
        store.update(BookUpdate(venue=v, symbol="BTC/USDT", bids=((b, 1.0),), asks=((a, 1.0),), ts_event=T0,
                                ts_init=T0))
    dashboard = Dashboard()
    dashboard.setup(ctx)
    clock.advance_to(T0 + 2 * S)
    text = rendered(dashboard)
    assert "TRADING HALTED: manual halt" in text
    assert "open 2" in text
    # no fees known without MarketsLoaded: buy alpha at 100.2, sell beta at 100.1 = -10.0 bps
    assert row(text, "BTC/USDT") == ["BTC/USDT", "100 / 100.2", "100.1 / 100.3", "-10.0", "alpha→beta"]
    assert "Venues" not in text
    # the short: -111 + 109.78 = -1.22, at the last known price
    assert row(text, "-109.78") == ["beta", "BTC", "-1", "-109.7800", "111 USDT (last known)", "-1.2200"]


def test_best_spread_is_net_of_both_fees_and_needs_two_venues() -> None:
    def book(venue: str, bid: float, ask: float) -> BookUpdate:
        return BookUpdate(venue=venue, symbol="X/Y", bids=((bid, 1.0),), asks=((ask, 1.0),), ts_event=0,
                          ts_init=0)

    books = {"a": book("a", 100.0, 101.0), "b": book("b", 103.0, 104.0)}
    fees = {("a", "X/Y"): 0.01, ("b", "X/Y"): 0.0}
    net, buy, sell = best_spread(books, fees, "X/Y")  # type: ignore[misc]
    assert (buy, sell) == ("a", "b") and round(net, 6) == round((103.0 - 101.0 * 1.01) / 101.0 * 1e4, 6)
    assert best_spread({"a": books["a"]}, fees, "X/Y") is None


def test_dashboard_lists_arbitrages_executing_or_needing_attention_with_their_state() -> None:
    bus, clock, store = Bus(), SimClock(T0), BookStore()
    ctx = Context(bus=bus, settings=Settings(), clock=clock, run_id="r1", log=logger, books=store,
                  liquidity=store)
    dashboard = Dashboard()
    dashboard.setup(ctx)
    assert "Arbitrages executing" not in rendered(dashboard)
    for oid, state, reason, ts in (
            ("r1-1", "planned", "", T0), ("r1-2", "planned", "", T0), ("r1-3", "planned", "", T0),
            ("r1-1", "submitted", "L0 alpha buy 1 BTC/USDT @ 100", T0 + S),
            ("r1-2", "submitted", "", T0 + S), ("r1-2", "filled", "", T0 + S),
            ("r1-2", "done", "complete", T0 + S),
            ("r1-3", "needs_attention", "left open: +0.6 BTC on alpha marked at 100 USDT", T0 + S)):
        bus.publish(ArbStateChanged(opportunity_id=oid, state=state, reason=reason, ts_init=ts))
    clock.advance_to(T0 + 3 * S)
    text = rendered(dashboard)
    assert "Arbitrages executing or needing attention" in text
    assert row(text, "r1-1") == ["r1-1", "submitted", "2.0", "L0 alpha buy 1 BTC/USDT @ 100"]
    assert row(text, "r1-3") == ["r1-3", "needs_attention", "2.0",
                                 "left open: +0.6 BTC on alpha marked at 100 USDT"]
    assert "r1-2" not in text  # done: gone
