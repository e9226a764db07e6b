"""``arb check`` and ``arb scan`` as a user sees them: their help, and an exchange with no emulator."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from arbitrage.cli import app


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
