"""Settings: ``settings.toml`` < profile < environment (``ARB_SECTION__KEY``) < command-line flags.

Three modules, each importing only the ones before it: ``sections`` (the frozen Structs and their
defaults), ``profiles`` (named settings files ``profiles/NAME.toml`` and parameter keys, which
``arb optimize --save`` writes) and ``loading`` (layering and validation). The names below are
the ones the rest of arb imports from ``arbitrage.settings``.
"""

from arbitrage.settings.loading import (
    DEFAULT_CONFIG,
    ENV_PREFIX,
    env_overrides,
    from_dict,
    load_settings,
    stray_env,
)
from arbitrage.settings.sections import (
    BacktestSettings,
    CcxtSettings,
    Count,
    Fraction,
    LiveSettings,
    LogSettings,
    MonitorSettings,
    NonNegative,
    NotifySettings,
    PaperSettings,
    Positive,
    RedisSettings,
    RiskSettings,
    RunSettings,
    Section,
    Settings,
    SimSettings,
    SimVenue,
    StorageSettings,
    StrategySettings,
    TradingSettings,
)

__all__ = ["DEFAULT_CONFIG", "ENV_PREFIX", "BacktestSettings", "CcxtSettings", "Count", "Fraction",
           "LiveSettings", "LogSettings", "MonitorSettings", "NonNegative", "NotifySettings", "PaperSettings",
           "Positive", "RedisSettings", "RiskSettings", "RunSettings",
           "Section", "Settings", "SimSettings", "SimVenue", "StorageSettings", "StrategySettings",
           "TradingSettings", "env_overrides", "from_dict", "load_settings", "stray_env"]
