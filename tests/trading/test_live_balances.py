"""Balances after an arbitrage are read from the venues, not only moved by the executor's own rule:
over the Binance and Kraken emulators with the real ccxt, one arbitrage makes each venue read its
balances once more (``GET /api/v3/account``, ``POST /0/private/BalanceEx``) after its last order, and
what is published is what the exchange says, money the run never moved included."""

from __future__ import annotations

import pytest

from arbitrage.events import ArbResult, BalanceUpdate
from tests.trading.helpers import leg, opportunity, run
from tests.trading.live_helpers import emulated
from tests.trading.test_live_executor import Desk, plant

B, K = "binance", "kraken"
ACCOUNT, BALANCE_EX = "GET /api/v3/account", "POST /0/private/BalanceEx"


def test_each_venue_reads_its_balances_once_after_the_arbitrage_and_publishes_the_exchanges_figures():
    async def scenario():
        async with emulated(B) as binance, emulated(K) as kraken:
            plant(binance, kraken)
            desk = Desk({B: await binance.venue(), K: await kraken.venue()})  # each read its balances
            await desk.bus.start()
            desk.mirror(binance, B)
            desk.mirror(kraken, K)
            # deposits the run cannot know of: only a read from the exchange shows them
            binance.exchange.set_balance("USDT", "1005")
            kraken.exchange.set_balance("USDT", "7")
            before = binance.exchange.endpoints(), kraken.exchange.endpoints()
            with desk.bus.collect(BalanceUpdate, ArbResult) as seen:
                desk.executor.on_opportunity(opportunity("x1", leg(B, "buy", 0.5, 100.0),
                                                         leg(K, "sell", 0.5, 110.0)))
                await desk.executor.join()
            await desk.bus.stop()
            during = (binance.exchange.endpoints()[len(before[0]):],
                      kraken.exchange.endpoints()[len(before[1]):])
            return before, during, seen, {n: v.balances() for n, v in desk.venues.items()}

    before, (on_binance, on_kraken), seen, balances = run(scenario())
    assert before[0].count(ACCOUNT) == 1 and before[1].count(BALANCE_EX) == 1  # the venues' start
    # one read each during the arbitrage, and after the venue's last order request
    assert on_binance.count(ACCOUNT) == 1 and on_binance[-1] == ACCOUNT, on_binance
    assert on_kraken.count(BALANCE_EX) == 1 and on_kraken[-1] == BALANCE_EX, on_kraken
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert result.status == "complete"
    # Binance: 1005 - 0.5 @ 100 = 955 USDT (the executor's own rule, from the 1000 it read, says
    # 950), 0.5 BTC less the 0.1 % fee in BTC = 0.4995. Kraken: 1 - 0.5 = 0.5 BTC; 7 + 55 less
    # 0.26 % of 55 in USDT (0.143) = 61.857 USDT.
    binance_read = {"USDT": pytest.approx(955.0), "BTC": pytest.approx(0.4995)}
    kraken_read = {"BTC": pytest.approx(0.5), "USDT": pytest.approx(61.857)}
    assert balances == {B: binance_read, K: kraken_read}
    ended = seen.index(result)
    last = {e.venue: e.balances for e in seen[:ended] if isinstance(e, BalanceUpdate)}
    assert last == {B: binance_read, K: kraken_read}  # published before the arbitrage's result
