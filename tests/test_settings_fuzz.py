"""Every settings key, given a value of the wrong type or out of range, makes `arb run` print one
line naming that key and exit 2, through the real command line (in process, typer's CliRunner);
the keys are read from the ``Settings`` Structs, so a key added later is covered too. Values
that only the running system can refuse (a path it cannot write, a plugin that is not there, a
rotation loguru cannot read) are listed by hand, as are the environment and flag routes."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from arbitrage import compiled
from arbitrage.cli import app
from arbitrage.cli import common as cli_common
from arbitrage.notify.channels import ENV_URLS
from arbitrage.settings import Settings, stray_env
from arbitrage.settings.loading import KEY_SUFFIXES, READ_ON_PURPOSE

REPO = Path(__file__).resolve().parents[1]
Case = tuple[str, t.Any]
"""(dotted key, a wrong value for it)."""


def _wrong(tp: t.Any) -> list[t.Any]:
    """Values of the wrong type or out of range for a field of type ``tp`` (msgspec.inspect)."""
    mi = msgspec.inspect
    if isinstance(tp, mi.FloatType):
        out: list[t.Any] = ["x", [1.0], math.nan, math.inf, -math.inf]
        low = tp.ge if tp.ge is not None else tp.gt
        if low is not None:
            out.append(low - 1 if tp.ge is not None else low)
        high = tp.lt if tp.lt is not None else tp.le
        if high is not None:
            out.append(high if tp.lt is not None else high + 1)
        return out
    if isinstance(tp, mi.IntType):
        out = ["x", 1.5, True]
        if tp.ge is not None:
            out.append(tp.ge - 1)
        if tp.le is not None:
            out.append(tp.le + 1)
        return out
    if isinstance(tp, mi.StrType):
        return [5, ["a"], True]
    if isinstance(tp, mi.BoolType):
        return ["yes", 2]
    if isinstance(tp, mi.LiteralType):
        return ["not-one-of-them", 99, [1]]
    if isinstance(tp, mi.ListType):
        item = tp.item_type
        if isinstance(item, mi.StructType):
            return ["x", [{"no_such_key": 1}], [5]]
        return ["x", *([[bad] for bad in _wrong(item)[:2]])]
    if isinstance(tp, mi.DictType):
        return ["x", *({"K": bad} for bad in _wrong(tp.value_type)[:3])]
    if isinstance(tp, mi.UnionType):
        members = [m for m in tp.types if not isinstance(m, mi.NoneType)]
        return [bad for bad in _wrong(members[0]) if bad is not None]
    raise AssertionError(f"no wrong values for {tp}")


def _cases() -> list[Case]:
    out: list[Case] = []
    for section in msgspec.inspect.type_info(Settings).fields:  # type: ignore[attr-defined]
        for field in section.type.fields:
            out += [(f"{section.name}.{field.name}", value) for value in _wrong(field.type)]
    return out


def _toml(value: t.Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def run_with(tmp_path: Path, key: str, value: t.Any, *args: str) -> t.Any:
    """``arb run`` with a settings file holding ``key = value`` (plus a short duration and a
    database in ``tmp_path``, unless the key is one of those), nothing else set."""
    section, name = key.split(".")
    data: dict[str, dict[str, t.Any]] = {"run": {"duration": 0.05},
                                         "storage": {"path": str(tmp_path / "a.db")},
                                         "log": {"file": str(tmp_path / "arb.log")}}
    data.setdefault(section, {})[name] = value
    config = tmp_path / "settings.toml"
    config.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items())
                              for s, keys in data.items()))
    return CliRunner().invoke(app, ["run", "--config", str(config), "--no-ui", *args], env={})


def assert_one_line(result: t.Any, key: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"settings error: {key}"), result.stderr
    assert "Traceback" not in result.output


CASES = _cases()


def test_every_key_has_wrong_values_to_try() -> None:
    keys = {key for key, _ in CASES}
    assert len(keys) == sum(len(s.type.fields) for s in msgspec.inspect.type_info(Settings).fields)  # type: ignore[attr-defined]
    assert {"strategy.min_profit_bps", "log.rotation", "storage.path", "sim.venues"} <= keys


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v!r}"[:60] for k, v in CASES])
def test_a_wrong_value_for_any_key_is_one_line_naming_it_and_exit_2(tmp_path: Path, key: str,
                                                                    value: t.Any) -> None:
    assert_one_line(run_with(tmp_path, key, value), key)


def _semantic(tmp: Path) -> list[Case]:
    blocker = tmp / "a-file"
    blocker.write_text("")
    return [
        ("strategy.min_profit_bps", -1.0), ("strategy.min_profit_bps", math.nan),
        ("log.rotation", "banana"), ("log.rotation", "20 parsecs"),
        ("log.file", str(blocker / "arb.log")), ("log.file", str(tmp)),
        ("storage.path", str(blocker / "arb.db")), ("storage.path", str(tmp)),
        ("storage.backtest_path", str(blocker / "bt.db")), ("monitor.halt_file", str(blocker / "HALT")),
        ("backtest.record", str(blocker / "rec.jsonl")),
        ("run.source", "nowhere"), ("run.source", "replay"), ("run.strategy", "nope"),
        ("run.plugins", ["nope"]),
        ("run.strategy", "sim"),  # a plugin of another kind
        ("risk.currency", ""), ("sim.symbols", {"BTCUSDT": 1.0}), ("notify.urls", ["just-a-token"]),
        ("notify.config", str(tmp / "missing.yml")),
        ("sim.venues", [{"name": "a"}, {"name": "a"}]), ("sim.venues", [{"name": ""}, {"name": "b"}]),
    ]


def test_values_only_the_running_system_can_refuse_are_one_line_naming_the_key(tmp_path: Path) -> None:
    for key, value in _semantic(tmp_path):
        assert_one_line(run_with(tmp_path, key, value), key)


def test_an_unwritable_storage_path_given_as_a_flag_names_storage_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    result = CliRunner().invoke(app, ["run", "--db", str(tmp_path / "f" / "arb.db"), "--duration", "0.05",
                                      "--no-ui"])
    assert_one_line(result, "storage.path")
    result = CliRunner().invoke(app, ["backtest", "--data", "x.jsonl", "--db", str(tmp_path / "f" / "b.db")])
    assert_one_line(result, "storage.backtest_path")


@pytest.mark.parametrize(("name", "raw", "key"), [
    ("ARB_STRATEGY__MIN_PROFIT_BPS", "nan", "strategy.min_profit_bps"),
    ("ARB_STRATEGY__MIN_PROFIT_BPS", "-3", "strategy.min_profit_bps"),
    ("ARB_TRADING__MAX_NOTIONAL", "lots", "trading.max_notional"),
    ("ARB_LOG__ROTATION", "banana", "log.rotation"),
    ("ARB_TRADNG__MAX_NOTIONAL", "5", "tradng"),
    ("ARB_RUN__SEED", "[1, 2]", "run.seed"),
])
def test_a_wrong_value_from_the_environment_names_the_key_and_the_variable(tmp_path: Path, name: str,
                                                                           raw: str, key: str) -> None:
    result = CliRunner().invoke(app, ["run", "--duration", "0.05", "--no-ui", "--db", str(tmp_path / "a.db")],
                                env={name: raw})
    assert_one_line(result, key)
    if key != "log.rotation":  # refused by the logging setup, after the settings are built
        assert f"(from {name})" in result.stderr


@pytest.mark.parametrize("flags", [["--min-profit-bps", "nan"], ["--min-profit-bps", "-1"],
                                   ["--max-notional", "inf"], ["--duration", "-1"], ["--max-legs", "5"]])
def test_a_wrong_flag_value_names_its_setting(tmp_path: Path, flags: list[str]) -> None:
    result = CliRunner().invoke(app, ["run", "--no-ui", "--db", str(tmp_path / "a.db"), *flags])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("settings error: ")


# -- the environment ---------------------------------------------------------------------------------


def test_a_variable_that_matches_no_setting_is_warned_about_once_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_common, "_warned", set())
    env = {"ARB_TRADING_MAX_NOTIONAL": "5", "ARB_INTERPRETED": os.environ.get(compiled.ENV, "0"),
           ENV_URLS: "", "ARB_BINANCE_API_KEY": "k", "ARB_BINANCE_SECRET": "s", "ARB_KRAKEN_PASSWORD": "p",
           "ARB_RUN__SEED": "3"}
    result = CliRunner().invoke(app, ["run", "--duration", "0.05", "--no-ui", "--json",
                                      "--db", str(tmp_path / "a.db")], env=env)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: environment variable ARB_TRADING_MAX_NOTIONAL matches no setting and is "
                        "ignored (did you mean ARB_TRADING__MAX_NOTIONAL?)"]  # once, though loaded twice


def test_the_variables_read_on_purpose_are_the_ones_the_code_reads() -> None:
    assert {compiled.ENV, ENV_URLS} == READ_ON_PURPOSE
    assert KEY_SUFFIXES == ("_API_KEY", "_SECRET", "_PASSWORD")
    assert stray_env({"ARB_FOO": "1", "ARB_SIM__SEED": "1", "PATH": "/bin"}) == [("ARB_FOO", None)]


# -- Ctrl-C ------------------------------------------------------------------------------------------


def test_ctrl_c_stops_arb_run_cleanly_then_exits_130(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_") or k == compiled.ENV}
    proc = subprocess.Popen([sys.executable, "-m", "arbitrage", "run", "--no-ui", "--json", "--db", "arb.db"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "logs" / "arb.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and "started" in log.read_text()):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)  # the summary of a clean stop, then the shell's code
    assert summary["stop_reason"] == "signal SIGINT"
    assert "Traceback" not in err


def test_ctrl_c_outside_a_run_exits_130_and_an_error_a_command_let_through_is_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from arbitrage.errors import DataError

    def interrupted() -> None:
        raise KeyboardInterrupt

    def failing() -> None:
        raise DataError("x.jsonl: empty data file")

    with pytest.raises(typer.Exit) as caught:
        cli_common.guarded(interrupted)()
    assert caught.value.exit_code == 130 and capsys.readouterr().err == "interrupted\n"
    with pytest.raises(typer.Exit) as caught:
        cli_common.guarded(failing)()
    assert caught.value.exit_code == 2 and capsys.readouterr().err == "error: x.jsonl: empty data file\n"
