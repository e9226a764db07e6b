"""The kill switch: each rule halts the trader, cancels open orders and alerts; halt file, `arb resume`."""

from __future__ import annotations

import typing as t
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from arbitrage.cli import app
from arbitrage.events import (
    Alert,
    OpportunityRejected,
    Position,
    PositionUpdate,
    TradingHalted,
    TradingResumed,
)
from arbitrage.monitor import KillSwitch, read_halt, write_halt
from arbitrage.settings import MonitorSettings
from arbitrage.trading.paper import PaperVenue
from tests.monitor.helpers import T0, MonitorHarness, S, halt_path, result, settings_with
from tests.trading.helpers import Harness, leg, make_settings, market, opportunity, run


class Rig:
    """The trader's harness with a monitor on the same bus, clock and context."""

    def __init__(self, tmp_path: Path, **monitor: t.Any) -> None:
        monitor.setdefault("halt_file", halt_path(tmp_path))
        self.halt_file = Path(monitor["halt_file"]) if monitor["halt_file"] else None
        self.trading = Harness(settings_with(make_settings(), **monitor))
        self.watch = MonitorHarness(self.trading.ctx.settings, ctx=self.trading.ctx, bus=self.trading.bus,
                                    clock=self.trading.clock)
        self.monitor = self.watch.monitor
        self.bus = self.trading.bus

    async def start(self) -> None:
        await self.trading.start()
        await self.monitor.start()
        self.trading.markets("alpha", market())
        self.trading.markets("beta", market())

    async def stop(self) -> None:
        await self.monitor.stop()
        await self.trading.stop()

    def try_to_trade(self, id: str) -> list[OpportunityRejected]:
        with self.bus.collect(OpportunityRejected) as refused:
            self.bus.publish(opportunity(id, leg("alpha", "buy", 0.01, 100.0),
                                         leg("beta", "sell", 0.01, 101.0)))
        return refused


@pytest.fixture
def cancels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every ``cancel_all`` on a paper venue."""
    calls: list[str] = []

    async def cancel_all(self: PaperVenue) -> None:
        calls.append(self.name)

    monkeypatch.setattr(PaperVenue, "cancel_all", cancel_all)
    return calls


@pytest.mark.parametrize(
    ("monitor", "results", "rule"),
    [
        ({"daily_loss_limit": 5.0}, [result("a", realized=-3.0), result("b", realized=-2.5)],
         "daily_loss"),
        ({"max_failed_arbs": 3}, [result(i, status="failed", realized=0.0) for i in ("a", "b", "c")],
         "failed_arbs"),
        ({"max_residual": {"BTC": 0.05}}, [result("a", status="partial", residual={"BTC": 0.06})],
         "residual"),
    ],
    ids=["daily_loss", "failed_arbs", "residual"],
)
def test_rule_trips_halts_trading_cancels_open_orders_and_alerts(
        tmp_path: Path, cancels: list[str], monitor: dict[str, t.Any], results: list[t.Any],
        rule: str) -> None:
    async def scenario() -> tuple[Rig, list[t.Any], list[OpportunityRejected]]:
        rig = Rig(tmp_path, **monitor)
        await rig.start()
        with rig.bus.collect(TradingHalted, Alert) as seen:
            for r in results[:-1]:
                rig.bus.publish(r)
            assert not rig.monitor.halted
            rig.bus.publish(results[-1])
            refused = rig.try_to_trade("after")
            await rig.trading.settle()
        await rig.stop()
        return rig, seen, refused

    rig, seen, refused = run(scenario())
    halted = [e for e in seen if isinstance(e, TradingHalted)]
    assert len(halted) == 1 and halted[0].rule == rule
    alert = next(e for e in seen if isinstance(e, Alert))
    assert (alert.key, alert.level) == ("kill_switch", "critical") and rule in alert.message
    assert rig.trading.trader.executor.risk.halted == halted[0].reason
    assert rig.trading.ctx.views.trading.halted == halted[0].reason
    assert [r.reason for r in refused] == ["halted"]
    assert sorted(cancels[:2]) == ["alpha", "beta"]  # cancel_all on halt (stop cancels again)
    assert rig.halt_file is not None and read_halt(rig.halt_file) == f"{rule}: {halted[0].reason}"
    assert rig.monitor.view.health() == {"status": "halted", "reasons": [f"halted: {halted[0].reason}"]}


def test_halt_file_written_by_another_terminal_halts_and_resume_lifts_it(
        tmp_path: Path, cancels: list[str]) -> None:
    async def scenario() -> tuple[Rig, list[t.Any]]:
        rig = Rig(tmp_path)
        await rig.start()
        with rig.bus.collect(TradingHalted, TradingResumed, Alert) as seen:
            rig.watch.check_at(T0 + S)
            assert rig.try_to_trade("o1") == []  # not halted: admitted
            await rig.trading.settle()
            write_halt(rig.halt_file, "going to lunch")  # what `arb halt` does
            rig.watch.check_at(T0 + 2 * S)
            rig.watch.check_at(T0 + 3 * S)  # still there: nothing repeated
            assert [r.reason for r in rig.try_to_trade("o2")] == ["halted"]
            rig.halt_file.unlink()  # what `arb resume` does
            rig.watch.check_at(T0 + 4 * S)
            assert rig.try_to_trade("o3") == []
            await rig.trading.settle()
        await rig.stop()
        return rig, seen

    rig, seen = run(scenario())
    assert [type(e).__name__ for e in seen] == ["TradingHalted", "Alert", "TradingResumed", "Alert"]
    assert seen[0].rule == "halt_file" and seen[0].reason == "going to lunch"
    assert seen[3].recovered and seen[3].key == "kill_switch"
    assert rig.trading.trader.executor.risk.halted == ""
    assert rig.trading.ctx.views.trading.halted == ""
    assert "alpha" in cancels


def test_halt_file_present_at_start_keeps_trading_halted(tmp_path: Path, cancels: list[str]) -> None:
    write_halt(halt_path(tmp_path), "failed_arbs: 5 arbitrages in a row failed")

    async def scenario() -> Rig:
        rig = Rig(tmp_path)
        await rig.start()
        assert [r.reason for r in rig.try_to_trade("o1")] == ["halted"]
        await rig.stop()
        return rig

    assert run(scenario()).monitor.halt_rule == "halt_file"


def test_resume_removes_the_file_and_resets_the_failure_streak(tmp_path: Path, cancels: list[str]) -> None:
    async def scenario() -> Rig:
        rig = Rig(tmp_path, max_failed_arbs=2)
        await rig.start()
        rig.bus.publish(result("a", status="failed"))
        rig.bus.publish(result("b", status="failed"))
        assert rig.monitor.halted
        assert rig.monitor.resume("checked the venues")
        assert not rig.monitor.resume()
        rig.bus.publish(result("c", status="failed"))  # one failure after resume: no new halt
        rig.watch.check_at(T0 + S)
        await rig.stop()
        return rig

    rig = run(scenario())
    assert not rig.monitor.halted and rig.halt_file is not None and not rig.halt_file.exists()
    assert rig.monitor.kill.failed_streak == 1


def test_without_a_halt_file_a_rule_halt_lasts_until_resumed_in_process(
        tmp_path: Path, cancels: list[str]) -> None:
    async def scenario() -> Rig:
        rig = Rig(tmp_path, halt_file="", max_failed_arbs=1)
        await rig.start()
        rig.bus.publish(result("a", status="failed"))
        rig.watch.check_at(T0 + S)
        await rig.stop()
        return rig

    rig = run(scenario())
    assert rig.monitor.halt_rule == "failed_arbs" and not list(tmp_path.iterdir())


def test_daily_loss_counts_one_utc_day_at_a_time() -> None:
    kill = KillSwitch(MonitorSettings(daily_loss_limit=10.0))
    day = 86_400 * S
    midnight = (T0 // day + 1) * day
    assert kill.on_result(result("a", realized=-6.0), midnight - S) is None
    assert kill.on_result(result("b", realized=-6.0), midnight + S) is None  # a new day: -6 only
    trip = kill.on_result(result("c", realized=-4.0), midnight + 2 * S)
    assert trip is not None and trip.rule == "daily_loss" and "10 USDT" in trip.reason


def position(mark: float) -> PositionUpdate:
    """beta's short of 1 BTC that received 109.78 USDT, marked at ``mark``."""
    short = Position(venue="beta", asset="BTC", quote="USDT", amount=-1.0, cost=-109.78, mark=mark)
    return PositionUpdate(position=short, ts_init=T0)


def test_daily_loss_counts_open_positions_at_their_mark_and_from_the_start_of_the_day() -> None:
    kill = KillSwitch(MonitorSettings(daily_loss_limit=10.0))
    day = 86_400 * S
    midnight = (T0 // day + 1) * day
    # a short of 1 BTC that received 109.78 (realized 0) marked at 111: -1.22 today
    assert kill.on_result(result("a", realized=0.0), midnight - 2 * S) is None
    assert kill.on_position(position(111.0), midnight - 2 * S) is None
    assert kill.daily_net == {"USDT": pytest.approx(-1.22)}
    # the ask rises to 115: -5.22; a new day starts from there, so 120 is -5 today, not -10.22
    assert kill.on_position(position(115.0), midnight - S) is None
    assert kill.on_position(position(120.0), midnight + S) is None
    assert kill.daily_net == {"USDT": pytest.approx(-5.0)}
    # 125: -10 since midnight reaches the 10 USDT limit
    trip = kill.on_position(position(125.0), midnight + 2 * S)
    assert trip is not None and trip.rule == "daily_loss" and "net loss 10 USDT" in trip.reason


def test_an_unhedgeable_short_trips_the_daily_loss_rule_instead_of_showing_a_profit(tmp_path: Path) -> None:
    async def scenario():
        trading = Harness(settings_with(make_settings(venue_balances={"beta": {"USDT": 0.0, "BTC": 2.0}}),
                                        daily_loss_limit=1.0, halt_file=halt_path(tmp_path)))
        watch = MonitorHarness(trading.ctx.settings, ctx=trading.ctx, bus=trading.bus, clock=trading.clock)
        await trading.start()
        await watch.monitor.start()
        # the monitor's timers move the simulated clock: books stay usable for a minute
        trading.markets("alpha", market(), staleness_ms=60_000)
        trading.markets("beta", market(fee=0.002, step=1.0, min_amount=1.0), staleness_ms=60_000)
        trading.book("alpha", "BTC/USDT", [(99.0, 5.0)], [])
        trading.book("beta", "BTC/USDT", [(110.0, 1.0)], [(111.0, 5.0)])
        trading.bus.publish(opportunity("x1", leg("alpha", "buy", 1.0, 100.0),
                                        leg("beta", "sell", 1.0, 109.0)))
        await trading.settle()
        await watch.monitor.stop()
        await trading.stop()
        return watch.monitor

    monitor = run(scenario())
    # beta sold 1 BTC for 109.78 USDT and could not buy it back (see the executor's test): realized 0,
    # marked at the ask 111: net -1.22 <= -1 -> halted (the quote change alone said +109.78)
    assert monitor.halt_rule == "daily_loss"
    assert "1.22 USDT" in monitor.halted


def test_arb_halt_and_resume_commands_write_and_remove_the_halt_file(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    halt_file = tmp_path / "state" / "HALT"
    config.write_text(f'[monitor]\nhalt_file = "{halt_file}"\n')
    runner = CliRunner()
    halted = runner.invoke(app, ["halt", "--reason", "venue maintenance", "--config", str(config)])
    assert halted.exit_code == 0, halted.output
    assert "halt requested" in halted.output
    assert (read_halt(halt_file) or "").startswith("venue maintenance (arb halt by ")
    resumed = runner.invoke(app, ["resume", "--config", str(config)])
    assert resumed.exit_code == 0
    assert "resumed: removed" in resumed.output and "venue maintenance" in resumed.output
    assert not halt_file.exists()
    again = runner.invoke(app, ["resume", "--config", str(config)])
    assert again.exit_code == 0 and "not halted" in again.output


def test_settings_reject_a_bad_kill_switch_value() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"max_failed_arbs": -1}, MonitorSettings)


def test_the_daily_loss_limit_is_one_amount_of_the_risk_currency_over_every_quote() -> None:
    """A loss in BTC counts, valued at BTC/USDT's mid: 5 USDT + 0.0001 BTC at 60,000 = 11 USDT."""
    rates = {"USDT": 1.0, "BTC": 60_000.0}
    kill = KillSwitch(MonitorSettings(daily_loss_limit=10.0),
                      lambda asset, amount: amount * rates[asset] if asset in rates else None, "USDT")
    assert kill.on_result(result("a", realized=-5.0), T0) is None
    trip = kill.on_result(msgspec.structs.replace(result("b", realized=-0.0001), quote="BTC"), T0 + S)
    assert trip is not None and trip.rule == "daily_loss" and "net loss 11 USDT" in trip.reason
    # a quote that was never priced is left out, and said so
    rates.pop("BTC")
    kill = KillSwitch(MonitorSettings(daily_loss_limit=4.0),
                      lambda asset, amount: amount * rates[asset] if asset in rates else None, "USDT")
    kill.on_result(msgspec.structs.replace(result("c", realized=-1.0), quote="ETH"), T0)
    trip = kill.on_result(result("d", realized=-4.0), T0 + S)
    assert trip is not None and "not priced: ETH" in trip.reason
