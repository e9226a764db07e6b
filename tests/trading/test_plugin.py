"""The trader plugin: registration, paper accounts from settings, summary, and a run through the engine."""

from __future__ import annotations

import asyncio
import sqlite3

import msgspec
import pytest

from arbitrage.engine import Engine
from arbitrage.errors import PluginError
from arbitrage.events import Alert, BalanceUpdate, MarketsLoaded
from arbitrage.plugin import Plugin, load_plugin
from arbitrage.trading.plugin import Trader
from tests.trading.helpers import Harness, book, leg, make_settings, market, opportunity, run


def test_trader_is_registered_as_the_trading_plugin():
    assert load_plugin("trader", "trading") is Trader


def test_live_trading_on_a_source_other_than_ccxt_is_refused_at_setup():
    settings = make_settings()
    settings = msgspec.structs.replace(settings, run=msgspec.structs.replace(settings.run, live=True))
    with pytest.raises(PluginError, match="--live needs --source ccxt, not 'sim'"):
        Harness(settings)


def test_each_announced_venue_gets_a_paper_account_with_its_balances():
    async def scenario():
        h = Harness(make_settings({"USDT": 1000.0, "BTC": 1.0}, {"beta": {"BTC": 3.0, "ETH": 5.0}}))
        await h.start()
        with h.bus.collect(BalanceUpdate) as seen:
            h.markets("alpha", market())
            h.markets("beta", market())
            h.markets("alpha", market("ETH/USDT"))  # more markets later: same account
        return h, seen

    h, seen = run(scenario())
    assert [(u.venue, u.balances) for u in seen] == [
        ("alpha", {"USDT": 1000.0, "BTC": 1.0}),
        ("beta", {"USDT": 1000.0, "BTC": 3.0, "ETH": 5.0}),
    ]
    assert set(h.trader.markets["alpha"]) == {"BTC/USDT", "ETH/USDT"}
    assert h.ctx.views.trading.open_arbs == ()


class ScriptedSource(Plugin):
    """Announces two venues, their books and one opportunity, then ends the run."""

    name = "scripted"
    kind = "source"

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._play())

    async def _play(self) -> None:
        bus, now = self.ctx.bus, self.ctx.clock.time_ns()
        for venue, fee in (("alpha", 0.001), ("beta", 0.002)):
            bus.publish(MarketsLoaded(venue=venue, markets=(market(fee=fee),), staleness_ms=5000.0,
                                      ts_init=now))
        bus.publish(book("alpha", "BTC/USDT", [(99.0, 5.0)], [(100.0, 1.0), (101.0, 1.0)], now))
        bus.publish(book("beta", "BTC/USDT", [(110.0, 0.5), (109.0, 2.0)], [(111.0, 5.0)], now))
        bus.publish(opportunity("run-1", leg("alpha", "buy", 1.5, 101.0), leg("beta", "sell", 1.5, 109.0),
                                notional=150.5, ts=now))
        await asyncio.sleep(0.05)
        self.ctx.request_stop("script done")

    async def stop(self) -> None:
        self._task.cancel()


def test_a_run_through_the_engine_executes_and_summarises():
    engine = Engine(make_settings(latency_ms=5.0), plugins=[Trader(), ScriptedSource()])
    summary = run(engine.run(duration=10.0))
    trader = summary["plugins"]["trader"]
    assert summary["arbs_executed"] == 1 and summary["orders"] == 2
    assert summary["realized_pnl"] == {"USDT": pytest.approx(13.0215)}  # see test_executor: same books
    assert (trader["orders"], trader["fills"], trader["hedges"], trader["arbs"]) == (2, 4, 0, {"complete": 1})
    assert trader["rejected"] == {}
    assert trader["balances"]["alpha"] == {"USDT": pytest.approx(849.3495), "BTC": pytest.approx(3.5)}


class AlertLog(Plugin):
    """Keeps every ``Alert`` of the run."""

    name = "alerts"
    kind = "monitor"

    def setup(self, ctx) -> None:
        super().setup(ctx)
        self.alerts: list[Alert] = []
        ctx.bus.subscribe(Alert, self.alerts.append, name="alerts")


def _foreign_orders_table(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")  # another tool's


@pytest.mark.parametrize(("content", "error"), [
    (b"not a database, just bytes " * 200, "DatabaseError: file is not a database"),
    (_foreign_orders_table, "OperationalError: no such table: runs"),
    (b"", ""),
])
def test_a_journal_that_cannot_be_read_holds_trading_and_says_why(tmp_path, content, error: str):
    # an unreadable journal is no empty one: what earlier runs left unfinished is unknown, so the
    # scripted opportunity must not trade. An empty file is a database without tables: nothing to do.
    path = tmp_path / "arb.db"
    content(path) if callable(content) else path.write_bytes(content)
    settings = make_settings(latency_ms=5.0)
    storage = msgspec.structs.replace(settings.storage, path=str(path))
    settings = msgspec.structs.replace(settings, storage=storage)
    alerts = AlertLog()
    summary = run(Engine(settings, plugins=[Trader(), ScriptedSource(), alerts]).run(duration=10.0))
    waiting = summary["plugins"]["trader"]["reconciliation"].get("waiting", "")
    if not error:
        assert (summary["arbs_executed"], waiting, alerts.alerts) == (1, "", [])
        return
    assert summary["arbs_executed"] == 0 and summary["orders"] == 0
    assert waiting.startswith(f"journal: the order journal cannot be read ({error})")
    [alert] = alerts.alerts
    assert (alert.key, alert.level) == ("reconcile:journal", "critical") and "nothing trades" in alert.message
