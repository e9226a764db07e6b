"""A stale stream is announced and not traded: two emulated venues, one dislocation, the real
cross-exchange strategy on the books the ccxt source publishes."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from arbitrage.events import FeedStatus, Opportunity
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from tests.emulator.binance import BinanceEmulator, binance_exchange
from tests.emulator.core import Fault
from tests.emulator.kraken_testing import emulator as kraken_emulator
from tests.sources.ccxt_support import Watcher, run, run_engine_on

pytest.importorskip("ccxt.pro")

BTC = "BTC/USDT"


def test_a_stale_stream_is_announced_and_no_opportunity_comes_from_its_venue(tmp_path: Path) -> None:
    binance = BinanceEmulator(binance_exchange())
    binance.exchange.set_book(BTC, [("29990", "0.5")], [("30000", "0.5")])
    kraken = kraken_emulator()
    kraken.exchange.set_book(BTC, [("30300.0", "0.5")], [("30310.0", "0.5")])  # 1 % above: pays both fees
    steps: list[str] = []

    def on_event(w: Watcher, event: object) -> None:
        opportunities = [e for e in w.events if isinstance(e, Opportunity)]
        if isinstance(event, Opportunity) and len(opportunities) == 1:
            steps.append("kraken moves while binance is fresh")
            kraken.exchange.set_book(BTC, [("30300.0", "0.4")], [("30310.0", "0.5")])
        elif isinstance(event, Opportunity) and len(opportunities) == 2:
            steps.append("binance's stream goes quiet, its book moves on")
            binance.exchange.inject(Fault("stale", symbol=BTC))
            binance.exchange.set_book(BTC, [("29990", "0.5")], [("30001", "0.5")])
        elif isinstance(event, FeedStatus) and event.status == "stale" and event.venue == "binance":
            steps.append("kraken moves while binance is stale")
            kraken.exchange.set_book(BTC, [("30300.0", "0.3")], [("30310.0", "0.5")])

    def done(w: Watcher) -> bool:
        return len(steps) == 3 and w.books("kraken")[-1].bids[0][1] == 0.3

    watcher = Watcher(done)
    watcher.on_event = on_event
    run(run_engine_on({"binance": binance, "kraken": kraken}, tmp_path, watcher, [CrossExchangeStrategy()],
                      symbols=[BTC], venue_staleness_ms={"binance": 1000}, strategy={"cooldown_ms": 0}))
    assert len(steps) == 3
    opportunities = [e for e in watcher.events if isinstance(e, Opportunity)]
    assert len(opportunities) == 2  # none on the third kraken book: binance's is stale
    legs = [(leg.venue, leg.side) for leg in opportunities[0].legs]
    assert legs == [("binance", "buy"), ("kraken", "sell")]
    assert ("stale", BTC) in watcher.statuses("binance") and ("stale", BTC) not in watcher.statuses("kraken")
    assert [b.asks[0][0] for b in watcher.books("binance")] == [30000.0]  # the moved book never arrived


@pytest.mark.parametrize("max_resyncs", [1, 2])
def test_one_resync_slot_makes_the_second_subscription_wait_for_the_first_book(tmp_path: Path,
                                                                              max_resyncs: int) -> None:
    binance = BinanceEmulator(binance_exchange())
    binance.exchange.set_book(BTC, [("29990", "0.5")], [("30000", "0.5")])
    binance.exchange.inject(Fault("delay", endpoint="GET /api/v3/depth", delay=1.0))  # a slow snapshot
    kraken = kraken_emulator()
    kraken.exchange.set_book(BTC, [("30300.0", "0.5")], [("30310.0", "0.5")])
    kraken.exchange.inject(Fault("delay", endpoint="GET /0/public/AssetPairs", delay=0.3))  # Binance first
    watcher = Watcher(lambda w: bool(w.books("binance")) and bool(w.books("kraken")))
    run(run_engine_on({"binance": binance, "kraken": kraken}, tmp_path, watcher, symbols=[BTC],
                      max_resyncs=max_resyncs))

    def subscribed(em: t.Any) -> float:
        messages = [(r.ts, r.params["message"].lower()) for r in em.exchange.requests if r.method == "WS<"]
        return next(ts for ts, message in messages if "subscribe" in message)

    binance_book = watcher.books("binance")[0].ts_init / 1e9
    assert subscribed(binance) < subscribed(kraken)
    if max_resyncs == 1:  # Kraken subscribes only once Binance's snapshot made its first book
        assert subscribed(kraken) >= binance_book
    else:  # the control: with two slots Kraken does not wait
        assert subscribed(kraken) < binance_book
