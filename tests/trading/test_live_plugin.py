"""The trader plugin with ``run.live``: a live venue per venue the ccxt source announces, opened
from the environment's keys against the emulators, trading what the strategy finds."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from loguru import logger

from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import Alert, ArbResult, BalanceUpdate, BookUpdate, MarketsLoaded
from arbitrage.exchanges.budget import Budgets
from arbitrage.exchanges.markets import to_market
from arbitrage.plugin import Context
from arbitrage.settings import Settings
from arbitrage.trading.live import LiveVenue
from arbitrage.trading.plugin import Trader
from tests.trading.helpers import leg, opportunity, run
from tests.trading.live_helpers import FAST, KEY, SECRET, emulated

B, K = "binance", "kraken"
SYMBOL = "BTC/USDT"


def live_settings(urls: dict[str, str]) -> Settings:
    base = Settings()
    return msgspec.structs.replace(
        base, run=msgspec.structs.replace(base.run, live=True, source="ccxt"), live=FAST,
        trading=msgspec.structs.replace(base.trading, hedge_max_loss_bps=10_000.0),
        ccxt=msgspec.structs.replace(base.ccxt, exchanges=sorted(urls), symbols=[SYMBOL], urls=urls,
                                     enable_rate_limit=False, markets_cache="",
                                     rate_limits=dict.fromkeys(urls, 1000.0)))


async def announce(bus: Bus, live, name: str) -> None:
    """What the ccxt source publishes: the venue's markets, then its book."""
    client = live.client()
    await client.load_markets()
    bus.publish(MarketsLoaded(venue=name, markets=(to_market(client.markets[SYMBOL], client.precisionMode),),
                              staleness_ms=60_000.0, ts_init=time.time_ns()))
    book = live.exchange.book(SYMBOL)
    now = time.time_ns()
    bus.publish(BookUpdate(venue=name, symbol=SYMBOL, ts_event=now, ts_init=now,
                           bids=tuple((float(p), float(q)) for p, q in book.levels("bids")),
                           asks=tuple((float(p), float(q)) for p, q in book.levels("asks"))))


async def until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_live_run_opens_a_venue_per_exchange_and_trades_the_opportunity(monkeypatch: pytest.MonkeyPatch):
    for name in (B, K):
        monkeypatch.setenv(f"ARB_{name.upper()}_API_KEY", KEY)
        monkeypatch.setenv(f"ARB_{name.upper()}_SECRET", SECRET)

    async def scenario():
        async with emulated(B) as binance, emulated(K) as kraken:
            binance.exchange.set_book(SYMBOL, [("99.0", "5")], [("100.0", "1")])
            binance.exchange.set_balance("USDT", "1000")
            kraken.exchange.set_book(SYMBOL, [("110.0", "1")], [("111.0", "1")])
            kraken.exchange.set_balance("BTC", "1")
            bus, books = Bus(), BookStore()
            bus.subscribe(BookUpdate, books.update, name="books")
            settings = live_settings({B: binance.base_url, K: kraken.base_url})
            ctx = Context(bus=bus, settings=settings, clock=Clock(), run_id="live-test", log=logger,
                          books=books, liquidity=books,
                          budgets=Budgets(settings.ccxt.rate_limits))  # Kraken's own pace is 1/s
            trader = Trader()
            trader.setup(ctx)
            await bus.start()
            await trader.start()
            with bus.collect(BalanceUpdate, ArbResult, Alert) as seen:
                await announce(bus, binance, B)
                await announce(bus, kraken, K)
                await until(lambda: set(trader.venues) == {B, K}, "both live venues")
                venues = {name: type(v) for name, v in trader.venues.items()}
                bus.publish(opportunity("x1", leg(B, "buy", 0.5, 100.0), leg(K, "sell", 0.5, 110.0)))
                await trader.executor.join()
                await trader.stop()
            await bus.stop()
            return binance, kraken, venues, seen

    binance, kraken, venues, seen = run(scenario())
    assert venues == {B: LiveVenue, K: LiveVenue}
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert result.status == "complete"
    # Binance buys 0.5 @ 100 = 50 USDT, fee 0.0005 BTC; Kraken sells 0.5 @ 110 = 55 USDT, fee 0.26 %
    # in USDT = 0.143: USDT +4.857, and 0.0005 BTC short of flat (Binance's fee), dust below both
    # markets' minimum cost. That short cost what the sale got net of fee, 54.857 / 0.5 = 109.714 a
    # BTC: realized 4.857 - 0.0005 * 109.714 = 4.802143; marked at Kraken's ask of 111 it is
    # unrealized 0.0005 * (109.714 - 111) = -0.000643.
    assert result.realized_profit == pytest.approx(4.802143, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-0.000643, abs=1e-9)
    assert result.residual == {"BTC": pytest.approx(-0.0005)}
    assert [(o.side, o.status) for o in binance.exchange.orders.values()] == [("buy", "closed")]
    assert [(o.side, o.status) for o in kraken.exchange.orders.values()] == [("sell", "closed")]
    first = {e.venue: e.balances for e in reversed(seen) if isinstance(e, BalanceUpdate)}
    assert first[B] == {"USDT": 1000.0} and first[K] == {"BTC": 1.0}
    last = {e.venue: e.balances for e in seen if isinstance(e, BalanceUpdate)}  # read after the arbitrage
    assert last[B] == {"USDT": pytest.approx(950.0), "BTC": pytest.approx(0.4995)}
    assert last[K] == {"BTC": pytest.approx(0.5), "USDT": pytest.approx(54.857)}
    assert not [e for e in seen if isinstance(e, Alert)]


def test_a_live_venue_without_keys_stays_closed_with_a_critical_alert(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ARB_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("ARB_BINANCE_SECRET", raising=False)

    async def scenario():
        async with emulated(B) as binance:
            bus, books = Bus(), BookStore()
            settings = live_settings({B: binance.base_url})
            ctx = Context(bus=bus, settings=settings, clock=Clock(), run_id="live-test", log=logger,
                          books=books, liquidity=books,
                          budgets=Budgets(settings.ccxt.rate_limits))  # Kraken's own pace is 1/s
            trader = Trader()
            trader.setup(ctx)
            await bus.start()
            with bus.collect(Alert) as seen:
                await announce(bus, binance, B)
                await until(lambda: bool(seen), "the alert")
            await trader.stop()
            await bus.stop()
            return trader, seen

    trader, seen = run(scenario())
    [alert] = seen
    assert (alert.key, alert.level) == ("venue.open:binance", "critical")
    assert "ARB_BINANCE_API_KEY and ARB_BINANCE_SECRET must be set" in alert.message
    assert trader.venues == {}


def test_a_live_venue_reads_its_balances_again_on_a_timer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ARB_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("ARB_BINANCE_SECRET", SECRET)

    async def scenario():
        async with emulated(B) as binance:
            binance.exchange.set_balance("USDT", "1000")
            bus, books = Bus(), BookStore()
            base = live_settings({B: binance.base_url})
            settings = msgspec.structs.replace(
                base, live=msgspec.structs.replace(base.live, balance_refresh_s=0.1))
            ctx = Context(bus=bus, settings=settings, clock=Clock(), run_id="live-test", log=logger,
                          books=books, liquidity=books, budgets=Budgets(settings.ccxt.rate_limits))
            trader = Trader()
            trader.setup(ctx)
            await bus.start()
            with bus.collect(BalanceUpdate) as seen:
                await announce(bus, binance, B)
                await until(lambda: bool(seen), "the first balances")
                binance.exchange.set_balance("USDT", "750")  # a withdrawal, say: nothing arb did
                await until(lambda: seen[-1].balances.get("USDT") == 750.0, "the new balance")
            await trader.stop()
            await bus.stop()
            return seen

    seen = run(scenario())
    assert seen[0].balances == {"USDT": 1000.0} and seen[-1].balances == {"USDT": 750.0}
