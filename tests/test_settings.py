"""Settings layering and the one-line errors for wrong keys, types and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbitrage.errors import SettingsError
from arbitrage.settings import Settings, env_overrides, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_shipped_settings_file_loads_and_matches_the_defaults() -> None:
    assert load_settings(REPO / "settings.toml", environ={}) == Settings()


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text("[strategy]\nmin_profit_bps = 1.0\nmax_notional = 300.0\n")
    env = {"ARB_STRATEGY__MIN_PROFIT_BPS": "2.5", "ARB_STRATEGY__MAX_NOTIONAL": "400"}
    settings = load_settings(config, overrides={"strategy": {"max_notional": 500.0}}, environ=env)
    assert settings.strategy.min_profit_bps == 2.5
    assert settings.strategy.max_notional == 500.0


def test_env_overrides_parse_toml_values_and_nest_by_double_underscore() -> None:
    env = {"ARB_RUN__SEED": "11", "ARB_RUN__PLUGINS": '["trader"]', "ARB_RUN__SOURCE": "sim", "OTHER": "x"}
    assert env_overrides(env) == {"run": {"seed": 11, "plugins": ["trader"], "source": "sim"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[strategy]\nmin_profit_bpz = 1\n", "strategy.min_profit_bpz: unknown setting"),
        ("[stratgy]\nmin_profit_bps = 1\n", "stratgy: unknown setting"),
        ('[trading]\nmax_notional = "lots"\n', "trading.max_notional: expected `float`, got `str`"),
        ("[trading]\nmax_notional = -5\n", "trading.max_notional: expected `float` > 0.0, got -5"),
        ("[[sim.venues]]\nname = 'a'\ntaker_fee = 2\n",
         "sim.venues[0].taker_fee: expected `float` < 1.0, got 2"),
        ('[log]\nlevel = "LOUD"\n', "log.level: invalid enum value 'LOUD'"),
        ("[[sim.venues]]\nname = 'a'\nfee_side = 'sideways'\n",
         "sim.venues[0].fee_side: invalid enum value 'sideways'"),
        ("[strategy\n", "not valid TOML"),
    ],
)
def test_bad_settings_raise_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_settings(config, environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_missing_config_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(SettingsError, match=r"^strategy.min_profit_bps: expected `float`, got `str`"):
        load_settings(overrides={}, environ={"ARB_STRATEGY__MIN_PROFIT_BPS": "abc"})


def test_duplicate_sim_venues_are_refused() -> None:
    venues = [{"name": "a"}, {"name": "a"}]
    with pytest.raises(SettingsError, match="sim.venues: venue names must be unique"):
        load_settings(overrides={"sim": {"venues": venues}}, environ={})
