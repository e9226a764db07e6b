"""`arb notify test`: one test message per configured URL, each result reported, secrets never printed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from arbitrage.cli import app
from tests.notify.helpers import Sink, closed_port


def test_notify_test_reports_each_channel_and_fails_if_one_fails(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    with Sink() as sink:
        config.write_text(f'[notify]\nurls = ["{sink.url()}"]\n')
        dead = f"json://arb:DeadPw99@127.0.0.1:{closed_port()}/hook"
        result = CliRunner().invoke(app, ["notify", "test", "--notify", dead, "--config", str(config)],
                                    env={"ARB_NOTIFY_URLS": ""})
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == ["ok     #1 json://***", "FAILED #2 json://***",
                                          "1 of 2 channel(s) reached"]
    assert "Connection error" in result.stderr  # Apprise's reason, redacted
    assert [m[0] for m in sink.messages()] == ["arb test notification"]
    assert "S3cretPw" not in result.output and "DeadPw99" not in result.output


def test_notify_test_reads_urls_from_the_environment_and_succeeds(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("")
    with Sink() as sink:
        result = CliRunner().invoke(app, ["notify", "test", "--config", str(config)],
                                    env={"ARB_NOTIFY_URLS": f"{sink.url('a')}, {sink.url('b')}"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 of 2 channel(s) reached"
    assert sorted(p.path for p in sink.posts) == ["/a", "/b"]


def test_notify_test_without_any_url_is_a_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("")
    result = CliRunner().invoke(app, ["notify", "test", "--config", str(config)], env={"ARB_NOTIFY_URLS": ""})
    assert result.exit_code == 2
    assert "no notification URL" in result.output
