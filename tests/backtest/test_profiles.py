"""Profiles, parameter keys, grids and ranking."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from arbitrage.backtest.analysis import max_drawdown
from arbitrage.backtest.optimize import apply, combinations, parse_grid, rank, save_profile
from arbitrage.errors import SettingsError
from arbitrage.settings import Settings, load_settings
from arbitrage.settings.profiles import resolve_key, to_toml


def test_bare_keys_resolve_to_their_section() -> None:
    assert resolve_key("min_profit_bps") == [("strategy", "min_profit_bps")]
    assert resolve_key("latency_ms") == [("trading", "latency_ms")]
    assert resolve_key("max_notional") == [("strategy", "max_notional"), ("trading", "max_notional")]
    assert resolve_key("paper.balances") == [("paper", "balances")]
    with pytest.raises(SettingsError, match="min_profit_bpz"):
        resolve_key("min_profit_bpz")


def test_parse_grid_reads_toml_values_and_rejects_unknown_keys() -> None:
    grid = parse_grid(["min_profit_bps=2,5,10", "cooldown_ms=0, 50", "trading.max_notional=500.0"])
    assert grid == {"min_profit_bps": [2, 5, 10], "cooldown_ms": [0, 50], "trading.max_notional": [500.0]}
    assert len(combinations(grid)) == 6
    assert combinations(grid)[1] == {"min_profit_bps": 2, "cooldown_ms": 50, "trading.max_notional": 500.0}
    with pytest.raises(SettingsError, match="--grid"):
        parse_grid(["min_profit_bps"])


@pytest.mark.parametrize("key", ["latency_ms", "trading.latency_ms", "backtest.fee"])
def test_the_simulated_market_is_not_a_grid_parameter(key: str) -> None:
    """Latency and fees describe the market, not the strategy: a search never tunes them."""
    with pytest.raises(SettingsError, match="--grid.*describes the market a backtest simulates"):
        parse_grid([f"{key}=1,2"])


def test_apply_validates_values_like_settings() -> None:
    assert apply(Settings(), {"latency_ms": 5}).trading.latency_ms == 5.0
    with pytest.raises(SettingsError, match="trading.latency_ms"):
        apply(Settings(), {"latency_ms": -1})


def test_rank_orders_by_net_pnl_then_lower_drawdown_then_grid_order() -> None:
    def row(n: int, pnl: float, dd: float) -> dict[str, object]:
        return {"params": {"n": n}, "realized_pnl": {"USDT": pnl}, "max_drawdown": {"USDT": dd}}

    ranked = rank([row(0, 5.0, 2.0), row(1, 7.0, 3.0), row(2, 5.0, 1.0), row(3, 5.0, 1.0)])
    assert [r["params"]["n"] for r in ranked] == [1, 2, 3, 0]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]


def test_rank_counts_what_each_setting_left_open() -> None:
    def row(n: int, realized: float, unrealized: float) -> dict[str, object]:
        return {"params": {"n": n}, "realized_pnl": {"USDT": realized},
                "unrealized_pnl": {"USDT": unrealized}, "max_drawdown": {"USDT": 0.0}}

    # n=0 realized 7 but holds a position 3 under its cost: net 4 < n=1's 5 (nothing open)
    ranked = rank([row(0, 7.0, -3.0), row(1, 5.0, 0.0)])
    assert [(r["params"]["n"], r["net_pnl"]) for r in ranked] == [(1, 5.0), (0, 4.0)]


def test_max_drawdown_is_the_largest_fall_from_a_running_peak() -> None:
    # cumulative: 1, -1, -0.5, -1.5, 1.5 -> peak 1 before the fall to -1.5: drawdown 2.5
    assert max_drawdown([1.0, -2.0, 0.5, -1.0, 3.0]) == pytest.approx(2.5)
    assert max_drawdown([-1.0, -1.0]) == pytest.approx(2.0)  # the curve starts at 0
    assert max_drawdown([1.0, 2.0]) == 0.0


def test_saved_profile_sits_between_settings_file_and_environment(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    best = {"params": {"min_profit_bps": 3, "max_notional": 500.0}, "net_pnl": 1.5,
            "quote": "USDT", "drawdown": 0.1, "arbs": 4}
    path = save_profile("fast", best, strategy="cross_exchange", data=["rec.jsonl"])
    assert path == Path("profiles/fast.toml")
    assert tomllib.loads(path.read_text())["strategy"] == {"min_profit_bps": 3, "max_notional": 500.0}
    Path("settings.toml").write_text("[strategy]\nmin_profit_bps = 9.0\ncooldown_ms = 1.0\n")
    loaded = load_settings(Path("settings.toml"), environ={}, profile="fast")
    assert (loaded.strategy.min_profit_bps, loaded.strategy.cooldown_ms) == (3.0, 1.0)
    assert (loaded.trading.latency_ms, loaded.trading.max_notional) == (Settings().trading.latency_ms, 500.0)
    env = load_settings(Path("settings.toml"), environ={"ARB_STRATEGY__MIN_PROFIT_BPS": "7"}, profile="fast")
    assert env.strategy.min_profit_bps == 7.0
    with pytest.raises(SettingsError, match="no profile 'slow'"):
        load_settings(None, environ={}, profile="slow")
    # a hand-written profile that sets the market's latency is refused, naming the key
    Path("profiles/latent.toml").write_text("[trading]\nlatency_ms = 1.0\n")
    with pytest.raises(SettingsError, match=r"latent.toml: trading.latency_ms describes the market"):
        load_settings(None, environ={}, profile="latent")


def test_to_toml_writes_what_tomllib_reads_back() -> None:
    sections = {"strategy": {"min_profit_bps": 2.5, "name": 'a "b"'}, "paper": {"balances": {"USDT": 1.0}},
                "run": {"plugins": ["trader", "storage"], "live": False}}
    assert tomllib.loads(to_toml(sections, "two\nlines")) == sections
