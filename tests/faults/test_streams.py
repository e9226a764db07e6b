"""Market-data faults: a websocket dropped mid-arbitrage, a sequence gap, a stream gone stale. The
arbitrage in flight finishes on REST; the feed reconnects and resubscribes; nothing is traded on a
book that missed an update or stopped moving, and trading resumes on the fresh book."""

from __future__ import annotations

from pathlib import Path

from tests.emulator.core import Fault
from tests.faults.harness import (
    DISLOCATED,
    ORDER_ENDPOINT,
    QUIET,
    SYMBOL,
    B,
    Desk,
    K,
    Outcome,
    assert_end_state,
    trade,
)


def connections(outcome: Outcome, venue: str) -> int:
    """Websocket connections the venue accepted."""
    return sum(1 for r in outcome.exchange(venue).requests if r.method == "WS")


def test_websockets_dropped_mid_arbitrage_reconnect_and_the_next_arbitrage_trades(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        kraken = desk.kraken.exchange
        kraken.inject(Fault("delay", endpoint=ORDER_ENDPOINT[K], delay=0.5))  # the sell is in flight a while
        desk.dislocate()
        await desk.until(lambda: any(r.endpoint == ORDER_ENDPOINT[K] for r in kraken.requests),
                         "the sell sent")
        for live in (desk.binance, desk.kraken):
            live.exchange.inject(Fault("drop_ws"))
        for venue in (B, K):
            await desk.until(lambda v=venue: desk.statuses(v)[-2:] == ["reconnecting", "connected"],
                             f"{venue} reconnected")
        await desk.arbs(1)
        desk.dislocate()  # the same cross again, on the resubscribed books
        await desk.arbs(2)

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    assert [r.status for r in outcome.results()] == ["complete", "complete"]
    kinds = [(type(e).__name__, getattr(e, "status", "")) for e in outcome.seen]
    # the feeds dropped while the first arbitrage was running
    assert kinds.index(("FeedStatus", "reconnecting")) < kinds.index(("ArbResult", "complete"))
    for venue in (B, K):
        assert connections(outcome, venue) >= 2
    assert outcome.summary["plugins"]["ccxt"][B]["subscriptions"] >= 2


def test_a_sequence_gap_drops_the_book_no_trade_on_it_and_the_resynced_book_trades(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        binance = desk.binance.exchange
        # the run sees Binance ask 100 for 0.5 BTC; Kraken bids only 98: nothing to do yet
        desk.plant({B: DISLOCATED[B]}, B)
        await desk.until(lambda: desk.engine.books.get(B, SYMBOL).asks[0][0] == 100.0, "the 100 ask")
        # the ask leaves the book in a frame the run never gets; the next frame shows the gap
        binance.inject(Fault("gap", symbol=SYMBOL), Fault("delay", endpoint="GET /api/v3/depth", delay=0.5))
        desk.plant(QUIET, B)
        binance.set_book(SYMBOL, [("99.0", "4")], QUIET[B][1])
        await desk.until(lambda: "reconnecting" in desk.statuses(B), "the gap noticed")
        # while the snapshot is on its way, Kraken bids 110: a cross only on the gapped book
        desk.plant({K: DISLOCATED[K]}, K)
        await desk.until(lambda: desk.statuses(B)[-1] == "connected", "the book resynced")
        await desk.quiet(0.3)
        assert desk.engine.books.get(B, SYMBOL).asks[0][0] == 112.0  # the resynced book
        assert not desk.results()
        desk.plant({B: DISLOCATED[B]}, B)  # the ask is back: a real cross
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete"
    assert [(o.side, o.status) for o in outcome.orders(B)] == [("buy", "closed")]
    assert any(f.venue == B and f.status == "reconnecting" and "resync" in f.detail
               for f in outcome.seen if type(f).__name__ == "FeedStatus")
    assert outcome.summary["plugins"]["ccxt"][B]["subscriptions"] == 2


def test_a_stale_stream_is_marked_stale_and_not_traded(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        kraken = desk.kraken.exchange
        desk.plant({K: DISLOCATED[K]}, K)  # Kraken bids 110; Binance asks 112: nothing to do
        await desk.until(lambda: desk.engine.books.get(K, SYMBOL).bids[0][0] == 110.0, "the 110 bid")
        # Kraken's stream stops (the connection stays up); its bid of 110 goes meanwhile
        kraken.inject(Fault("stale", symbol=SYMBOL))
        desk.plant(QUIET, K)
        await desk.until(lambda: "stale" in desk.statuses(K, SYMBOL), "the Kraken book marked stale")
        desk.plant({B: DISLOCATED[B]}, B)  # fresh Binance ask 100 against the stale 110 bid
        await desk.until(lambda: desk.engine.books.get(B, SYMBOL).asks[0][0] == 100.0, "the 100 ask")
        await desk.quiet(0.5)

    outcome = trade(tmp_path, scenario, ccxt={"staleness_ms": 400.0})
    assert_end_state(outcome)
    assert outcome.results() == [] and outcome.orders(B) == [] and outcome.orders(K) == []
    assert outcome.sent(B) == [] and outcome.sent(K) == []
