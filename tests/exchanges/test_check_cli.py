"""``arb check`` and ``arb scan`` as a user sees them: their help, and an exchange with no emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from arbitrage.cli import app
from tests.exchanges.emulated import arb
from tests.exchanges.test_check import closed_port


@pytest.mark.parametrize(("command", "shown"), [
    ("check", ["(default [ccxt] exchanges)", "(default [ccxt] symbols)"]),
    ("scan", ["(default [ccxt] symbols)", "(default [ccxt] depth)"]),
])
def test_help_names_the_settings_section_rich_would_take_for_markup(command: str, shown: list[str]) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for phrase in shown:
        assert phrase in text


def test_coinbase_offline_is_one_line_exit_1_no_traceback_and_no_key_shown(tmp_path: Path) -> None:
    """Coinbase has no emulator: pointed at a closed port (the tests have no network) ``check``
    fails on its first request, ccxt's ``v2/currencies`` of ``load_markets``."""
    key, secret = "cb-KEY-Qm4v8Tz1", "cb-SECRET-Hd92Lp0x"
    result = arb("check", "--exchanges", "coinbase", "--exchange-url", f"coinbase=http://127.0.0.1:{closed_port()}",
                 cwd=tmp_path, env={"ARB_COINBASE_API_KEY": key, "ARB_COINBASE_SECRET": secret})
    assert (result.returncode, result.stdout) == (1, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("coinbase: unreachable: ExchangeNotAvailable: coinbase GET http://127.0.0.1:")
    assert line.endswith("/api.coinbase.com/v2/currencies")
    assert key not in result.stderr and secret not in result.stderr
