"""The `arb` command as a user runs it: real subprocesses in a scratch directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from arbitrage.cli import app

REPO = Path(__file__).resolve().parents[1]
ARB = [sys.executable, "-m", "arbitrage"]


def arb(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_")}
    full_env.update(env or {})
    return subprocess.run([*ARB, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """One short simulated run with frequent dislocations, shared by the tests below."""
    cwd = tmp_path_factory.mktemp("run")
    result = arb("run", "--source", "sim", "--duration", "4", "--seed", "7", "--json", "--no-ui",
                 "--db", "arb.db", cwd=cwd, env={"ARB_SIM__DISLOCATIONS_PER_MINUTE": "90"})
    assert result.returncode == 0, result.stderr
    return cwd, json.loads(result.stdout)


def test_run_json_prints_one_summary_object_and_nothing_else(sim_run: tuple[Path, dict[str, object]]) -> None:
    _, summary = sim_run
    assert summary["events_processed"] > 100
    assert summary["opportunities"] > 0
    assert summary["arbs_executed"] > 0
    assert set(summary["realized_pnl"]) <= {"USDT", "BTC"}  # quote currencies of the sim's markets
    assert summary["stop_reason"] == "duration reached"


def test_report_json_counts_match_the_run_summary(sim_run: tuple[Path, dict[str, object]]) -> None:
    cwd, summary = sim_run
    result = arb("report", "--db", "arb.db", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("opportunities", "arbs_executed", "arbs_by_status", "orders", "rejected"):
        assert report[key] == summary[key], key
    for key in ("realized_pnl", "unrealized_pnl", "net_pnl"):
        assert set(report[key]) == set(summary[key]), key  # type: ignore[arg-type]
        for quote, pnl in summary[key].items():  # type: ignore[attr-defined]
            assert report[key][quote] == pytest.approx(pnl, abs=1e-9), (key, quote)
    for quote, net in summary["net_pnl"].items():  # type: ignore[attr-defined]
        realized = summary["realized_pnl"].get(quote, 0.0)  # type: ignore[attr-defined]
        unrealized = summary["unrealized_pnl"].get(quote, 0.0)  # type: ignore[attr-defined]
        assert net == pytest.approx(realized + unrealized, abs=1e-9), quote
    open_positions = summary["plugins"]["trader"]["positions"]  # type: ignore[index]
    assert [(p["venue"], p["asset"], p["quote"]) for p in report["positions"]] == [
        (p["venue"], p["asset"], p["quote"]) for p in open_positions]


def test_logs_are_json_lines_with_run_id_and_trade_context(sim_run: tuple[Path, dict[str, object]]) -> None:
    cwd, summary = sim_run
    lines = [json.loads(line) for line in (cwd / "logs" / "arb.log").read_text().splitlines()]
    trade_lines = [rec for rec in lines if "opportunity_id" in json.dumps(rec)]
    assert trade_lines
    text = (cwd / "logs" / "arb.log").read_text()
    assert str(summary["run_id"]) in text
    shown = arb("logs", "--grep", "arb", "--level", "INFO", cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip()


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["run", "--min-profit-bps", "abc"], {}, "Invalid value"),
        (["run", "--duration", "-1"], {}, "settings error: run.duration: expected `float` >= 0.0, got -1.0"),
        (["run"], {"ARB_STRATEGY__MAX_NOTIONAL": "lots"}, "settings error: strategy.max_notional: expected"),
        (["run", "--paper-balance", "USDT"], {}, "settings error: --paper-balance: expected ASSET=AMOUNT"),
        (["run", "--config", "missing.toml"], {}, "settings error: missing.toml: config file not found"),
        (["run", "--strategy", "nope", "--duration", "1"], {},
         "settings error: run.strategy: no plugin named 'nope'"),
    ],
)
def test_bad_settings_exit_2_with_one_line_and_no_traceback(
    tmp_path: Path, args: list[str], env: dict[str, str], needle: str,
) -> None:
    result = arb(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_key_in_config_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text("[trading]\nmax_notionall = 5\n")
    result = arb("run", "--duration", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "settings error: trading.max_notionall: unknown setting"


def test_live_on_the_simulated_source_is_refused(tmp_path: Path) -> None:
    result = arb("run", "--live", "--duration", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("settings error: --live: real orders need --source ccxt (the sim source has no "
                             "exchange to trade on)\n")


def test_live_without_an_exchange_key_names_the_missing_variable(tmp_path: Path) -> None:
    keys = {"ARB_BINANCE_API_KEY": "k" * 16, "ARB_BINANCE_SECRET": "s" * 16, "ARB_KRAKEN_API_KEY": "k" * 16}
    result = arb("run", "--live", "--source", "ccxt", "--exchanges", "binance,kraken", "--symbols",
                 "BTC/USDT", cwd=tmp_path, env=keys)
    assert result.returncode == 2
    assert result.stderr == ("settings error: ARB_KRAKEN_SECRET: not set: --live needs the kraken API keys "
                             "in the environment\n")


def test_live_with_keys_says_in_red_that_money_is_at_stake_and_refuses_without_a_terminal(
        tmp_path: Path) -> None:
    keys = {"ARB_BINANCE_API_KEY": "k" * 16, "ARB_BINANCE_SECRET": "s" * 16, "FORCE_COLOR": "1"}
    result = arb("run", "--live", "--source", "ccxt", "--exchanges", "binance", "--symbols", "BTC/USDT",
                 cwd=tmp_path, env=keys)
    assert result.returncode == 2
    warning, refusal = result.stderr.splitlines()
    assert warning.startswith("\x1b[1;31mLIVE TRADING: arb will send real orders with real money on binance")
    assert refusal == ("settings error: --yes: live trading needs a confirmation and there is no terminal "
                       "to ask on: pass --yes")
    assert not (tmp_path / "data").exists()  # nothing started


MOBOOK = REPO.parent / "shared" / "data" / "mobook" / "Binance_US_orderbook_saved.csv"


@pytest.mark.skipif(not MOBOOK.exists(), reason=f"MO-book snapshot not found at {MOBOOK}")
def test_scan_json_lists_the_same_cycles_as_the_library_best_first(tmp_path: Path) -> None:
    from arbitrage.readers.snapshot import load_snapshot
    from arbitrage.strategies.scan import scan

    result = arb("scan", "--data", str(MOBOOK), "--strategy", "triangular", "--fee", "0",
                 "--min-profit-bps", "0", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    items = out["opportunities"]
    snapshot = load_snapshot(MOBOOK)
    assert items == json.loads(json.dumps(scan(snapshot.books, snapshot.markets, fee_override=0.0)))
    assert (out["books"], out["rows"], out["rejected"]) == (len(snapshot.books), snapshot.rows, {})
    assert items, "this snapshot has fee-free triangles"
    assert [i["profit_bps"] for i in items] == sorted((i["profit_bps"] for i in items), reverse=True)
    for item in items:
        assert {"strategy", "assets", "legs", "profit_bps", "amount", "start_asset"} <= set(item)
        assert item["assets"][0] == item["assets"][-1] == item["start_asset"]
        assert all({"symbol", "side", "price", "amount"} <= set(leg) for leg in item["legs"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--data", "missing.csv"], "missing.csv"),
        (["--data", "x.csv", "--strategy", "cross_exchange"], "cross_exchange scans live books"),
        (["--data", "x.csv", "--fee", "1.5"], "--fee: expected a fraction"),
    ],
)
def test_scan_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = arb("scan", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_strategies_lists_cross_exchange_with_a_description(tmp_path: Path) -> None:
    result = arb("strategies", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any(line.startswith("cross_exchange ") and len(line.split()) > 3 for line in lines)
    assert any(line.startswith("triangular ") and len(line.split()) > 3 for line in lines)


def test_report_on_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    result = arb("report", "--db", "none.db", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "none.db" in result.stderr


HEAVY = ("ccxt", "arbitrage.engine", "arbitrage.dashboard", "arbitrage.ui", "arbitrage.storage",
         "arbitrage.backtest", "redis", "arbitrage.bridge")


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["backtest", "--help"],
                                  ["notify", "test", "--help"], ["redis", "tail", "--help"]])
def test_help_does_not_import_ccxt_the_engine_or_the_dashboard(args: list[str]) -> None:
    code = ("import sys; from typer.testing import CliRunner; from arbitrage.cli import app; "
            f"assert CliRunner().invoke(app, {args!r}).exit_code == 0; "
            f"print([m for m in sys.modules if m.startswith({HEAVY!r})])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("plugins", "record", "ui", "expected"), [
    (["trader", "storage"], False, False, ["trader", "storage"]),
    (["trader", "storage"], True, True, ["trader", "storage", "recorder", "dashboard"]),
    (["dashboard", "trader"], False, False, ["trader"]),  # no live view: the file's dashboard is taken out
    (["dashboard", "recorder"], True, True, ["recorder", "dashboard"]),  # each once
])
def test_run_loads_the_recorder_and_the_dashboard_by_plugin_name(
    plugins: list[str], record: bool, ui: bool, expected: list[str],
) -> None:
    from arbitrage.cli.run import run_plugins
    from arbitrage.settings import RunSettings, Settings

    settings = Settings(run=RunSettings(plugins=plugins))
    assert run_plugins(settings, record=record, ui=ui) == expected


@pytest.mark.parametrize("command", list(typer.main.get_command(app).commands.values()), ids=lambda c: c.name)
def test_every_command_has_help_and_is_in_the_readme(command: typer.main.TyperGroup) -> None:
    assert command.help
    assert f"arb {command.name}" in (REPO / "README.md").read_text()


def test_paper_balance_flags_override_the_files_balances_on_every_venue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from arbitrage.cli.common import load

    monkeypatch.chdir(tmp_path)  # no settings.toml here: defaults
    settings = load(None, {}, ["USDT=5000", "btc=0.5", "DOGE=100"])
    assert settings.paper.balances == {"USDT": 5000.0, "BTC": 0.5, "ETH": 3.0, "SOL": 60.0, "DOGE": 100.0}


def test_live_gate_asks_on_a_terminal_and_a_no_starts_nothing(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import msgspec
    import typer

    from arbitrage.cli.common import live_gate
    from arbitrage.settings import Settings

    base = Settings()
    settings = msgspec.structs.replace(base, run=msgspec.structs.replace(base.run, source="ccxt"),
                                       ccxt=msgspec.structs.replace(base.ccxt, exchanges=["binance"]))
    keys = {"ARB_BINANCE_API_KEY": "gate-test-key", "ARB_BINANCE_SECRET": "gate-test-secret"}
    asked: list[str] = []
    monkeypatch.setattr(typer, "confirm", lambda text, **_: asked.append(text) or False)
    with pytest.raises(typer.Exit) as refused:
        live_gate(settings, live=True, yes=False, environ=keys, interactive=True)
    assert refused.value.exit_code == 2 and asked == ["Trade for real?"]
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "settings error: --live: not confirmed; nothing was sent"
    monkeypatch.setattr(typer, "confirm", lambda text, **_: True)
    assert live_gate(settings, live=True, yes=False, environ=keys, interactive=True).run.live is True
    assert live_gate(settings, live=False, yes=False, environ={}) is settings  # paper: nothing asked
