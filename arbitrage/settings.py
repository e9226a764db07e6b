"""Settings: ``settings.toml`` < environment (``ARB_SECTION__KEY``) < command-line flags.

Every section is a frozen msgspec Struct that rejects unknown keys, so a typo is an error naming
the key, not a silently ignored line. ``load_settings`` raises ``SettingsError`` with one line
naming the key and the problem; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing as t
from pathlib import Path

import msgspec
from msgspec import Meta

from arbitrage.errors import SettingsError

Positive = t.Annotated[float, Meta(gt=0)]
NonNegative = t.Annotated[float, Meta(ge=0)]
Fraction = t.Annotated[float, Meta(ge=0, lt=1)]
Count = t.Annotated[int, Meta(ge=1)]

ENV_PREFIX = "ARB_"
DEFAULT_CONFIG = Path("settings.toml")


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every settings section."""


class RunSettings(Section, frozen=True, kw_only=True):
    source: str = "sim"
    """Market source plugin: ``sim`` (offline simulated venues)."""
    strategy: str = "cross_exchange"
    """Strategy plugin name, see ``arb strategies``."""
    plugins: list[str] = msgspec.field(default_factory=lambda: ["trader", "storage", "monitor", "notifier"])
    """Other plugins to load (trading, storage, ...)."""
    duration: NonNegative = 0.0
    """Seconds to run; 0 = until Ctrl-C."""
    seed: int = 7
    live: bool = False
    """Real orders. Needs ``--live`` on the command line and keys in the environment."""


class SimVenue(Section, frozen=True, kw_only=True):
    name: str
    taker_fee: Fraction = 0.001
    noise_bps: NonNegative = 2.0
    """Venue-specific deviation of its mid from the shared fair price (standard deviation)."""
    spread_bps: NonNegative = 4.0
    """Quoted spread around the venue's mid."""
    staleness_ms: Positive = 2000.0


class SimSettings(Section, frozen=True, kw_only=True):
    venues: list[SimVenue] = msgspec.field(default_factory=lambda: [
        SimVenue(name="alpha", taker_fee=0.001),
        SimVenue(name="beta", taker_fee=0.0008),
        SimVenue(name="gamma", taker_fee=0.0012),
    ])
    symbols: dict[str, Positive] = msgspec.field(
        default_factory=lambda: {"BTC/USDT": 60000.0, "ETH/USDT": 3000.0, "SOL/USDT": 150.0,
                                 "ETH/BTC": 0.05, "SOL/BTC": 0.0025})
    """Symbol -> starting fair price. A cross market (ETH/BTC) whose assets are both priced by
    other symbols is priced from them, so triangles are consistent until a dislocation."""
    levels: Count = 20
    update_hz: Positive = 20.0
    """Book updates per second for each book."""
    volatility_bps: NonNegative = 1.0
    """Random-walk step of the fair price per update (standard deviation)."""
    dislocations_per_minute: NonNegative = 10.0
    """How often one venue's book jumps away from fair price (over all books)."""
    dislocation_bps: Positive = 40.0
    dislocation_ms: Positive = 1500.0
    """How long a dislocation lasts before the venue's price returns."""
    level_amount: Positive = 2.0
    """Typical amount per level, in units of ~10,000 quote (so BTC levels are ~0.33 BTC)."""


class StrategySettings(Section, frozen=True, kw_only=True):
    min_profit_bps: float = 5.0
    """Emit an opportunity only when net profit after all taker fees reaches this."""
    max_notional: Positive = 1000.0
    """Largest trade, in quote currency, per opportunity."""
    cooldown_ms: NonNegative = 250.0
    """Do not emit the same route again within this time unless its books changed."""
    max_legs: t.Literal[3, 4] = 3
    """Triangular: longest cycle of assets (4 multiplies the cycles: small venues only)."""
    start_assets: list[str] = []
    """Triangular: assets a cycle may start and end in, in order of preference ([] = stablecoins,
    then BTC, ETH, BNB)."""


class TradingSettings(Section, frozen=True, kw_only=True):
    latency_ms: NonNegative = 25.0
    """Paper: delay between sending an order and it reaching the book."""
    max_open_arbs: Count = 2
    max_notional: Positive = 1000.0
    """Risk limit: largest notional per arbitrage, in quote currency."""
    max_exposure: dict[str, NonNegative] = {}
    """Asset -> largest absolute residual (unhedged) position allowed before trading stops."""
    hedge_retries: t.Annotated[int, Meta(ge=0)] = 3
    hedge_slippage_bps: NonNegative = 50.0
    """How far past the book a hedge or unwind order may reach."""
    sequential_legs: bool = False
    """Send a cycle's legs one after another, each leg's fill feeding the next (needs only the
    start asset); default: all at once from inventory held on the venue."""


class PaperSettings(Section, frozen=True, kw_only=True):
    balances: dict[str, NonNegative] = msgspec.field(
        default_factory=lambda: {"USDT": 10000.0, "BTC": 0.2, "ETH": 3.0, "SOL": 60.0})
    """Starting balances on every paper venue."""
    venue_balances: dict[str, dict[str, NonNegative]] = {}
    """Per-venue overrides: venue -> asset -> amount."""


class StorageSettings(Section, frozen=True, kw_only=True):
    path: str = "data/arb.db"
    batch_size: Count = 500
    store_books: bool = False
    """Also store every BookUpdate (large); off by default."""


class LogSettings(Section, frozen=True, kw_only=True):
    level: t.Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    file: str = "logs/arb.log"
    """JSON-lines log file ('' = none)."""
    rotation: str = "20 MB"
    retention: Count = 5
    """Rotated files kept."""


class MonitorSettings(Section, frozen=True, kw_only=True):
    check_interval_s: Positive = 0.5
    """How often the rules are evaluated and the halt file is looked at (run clock)."""
    heartbeat_s: Positive = 5.0
    """The monitor publishes a ``Heartbeat`` this often; a plugin that sent heartbeats and then
    stays silent for three times this long raises an alert."""
    feed_stale_s: NonNegative = 0.0
    """A venue with no book for this long is stale; 0 = the venue's own staleness limit."""
    loop_lag_ms: Positive = 100.0
    """Alert when the event loop wakes a timer this late."""
    queue_full: t.Annotated[float, Meta(gt=0, le=1)] = 0.8
    """Alert when a queued subscriber holds this fraction of its ``maxsize``."""
    error_quiet_s: Positive = 60.0
    """A subscriber's error or drop alert clears after this long without new ones."""
    halt_file: str = "data/HALT"
    """``arb halt`` writes it and ``arb resume`` removes it; a tripped rule writes it too, so a
    halt survives a restart. "" = no file (rule halts last until the run ends)."""
    daily_loss_limit: dict[str, Positive] = {}
    """Quote currency -> realized loss in one UTC day that halts trading (a positive number)."""
    max_failed_arbs: t.Annotated[int, Meta(ge=0)] = 5
    """Consecutive failed arbitrages that halt trading; 0 = off."""
    max_residual: dict[str, NonNegative] = {}
    """Asset -> absolute unhedged position, over the run, that halts trading."""
    metrics_host: str = "127.0.0.1"
    metrics_port: t.Annotated[int, Meta(ge=0, le=65535)] = 0
    """Serve Prometheus ``/metrics`` and ``/health`` on this port; 0 = off."""


class NotifySettings(Section, frozen=True, kw_only=True):
    urls: list[str] = []
    """Apprise URLs; ``ARB_NOTIFY_URLS`` (comma or space separated) and ``--notify`` add more."""
    config: str = ""
    """An Apprise configuration file (text or YAML) with more URLs; "" = none."""
    alert_level: t.Literal["off", "info", "warning", "error", "critical"] = "warning"
    """Send alerts at or above this level, and their recovery."""
    arbs: t.Literal["off", "each", "batch"] = "batch"
    """Arbitrage results: one message each, or one summary every ``batch_minutes``."""
    batch_minutes: Positive = 15.0
    lifecycle: bool = True
    """Send run started and run stopped."""
    halt: bool = True
    """Send kill-switch halts and resumes."""
    daily_summary: bool = True
    """Send the day's counts and PnL when the UTC day changes."""
    dedupe_s: NonNegative = 600.0
    """A message with the same key (same alert, same text) is not sent again within this time."""
    max_per_minute: Count = 12
    """Throttle over all channels; messages beyond it are dropped and counted in the next one sent."""
    timeout_s: Positive = 10.0
    """Connect and read timeout of one send, per channel."""


class BacktestSettings(Section, frozen=True, kw_only=True):
    data: list[str] = []
    """Recordings the ``replay`` source reads (``arb backtest --data FILE...``)."""
    taker_fee: Fraction = 0.001
    """Taker fee of markets whose data carries none (CSV, Tardis, SQLite books, bare JSON lines)."""
    fee: Fraction | None = None
    """``--fee``: replaces every market's taker fee, recorded ones included; None keeps them."""
    staleness_ms: Positive = 2000.0
    """Staleness limit of venues whose data carries none."""
    record: str = ""
    """``arb run --record FILE``: the ``recorder`` plugin writes every book here ('.zst' = compressed)."""


class Settings(Section, frozen=True, kw_only=True):
    run: RunSettings = RunSettings()
    sim: SimSettings = SimSettings()
    strategy: StrategySettings = StrategySettings()
    trading: TradingSettings = TradingSettings()
    paper: PaperSettings = PaperSettings()
    storage: StorageSettings = StorageSettings()
    log: LogSettings = LogSettings()
    backtest: BacktestSettings = BacktestSettings()
    monitor: MonitorSettings = MonitorSettings()
    notify: NotifySettings = NotifySettings()

    def to_dict(self) -> dict[str, t.Any]:
        """Plain builtins, e.g. to store with a run."""
        return t.cast(dict[str, t.Any], msgspec.to_builtins(self))


def _merge(base: dict[str, t.Any], extra: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_value(raw: str) -> t.Any:
    """Read an environment value as a TOML value when it parses, else as a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: t.Mapping[str, str]) -> dict[str, t.Any]:
    """``ARB_TRADING__MAX_NOTIONAL=500`` -> ``{"trading": {"max_notional": 500}}``."""
    out: dict[str, t.Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _env_value(raw)
    return out


_PATH_RE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN_RE = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")


def _lookup(data: t.Any, path: str) -> t.Any:
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        name, index = part
        try:
            data = data[name] if name else data[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _explain(error: msgspec.ValidationError, data: dict[str, t.Any]) -> SettingsError:
    match = _PATH_RE.match(str(error))
    assert match is not None
    message, path = match["msg"], (match["path"] or "")
    key = path.lstrip(".")
    unknown = _UNKNOWN_RE.match(message)
    if unknown:
        return SettingsError(f"{key}.{unknown['field']}".lstrip("."), "unknown setting")
    problem = message[0].lower() + message[1:]
    if "got" not in problem and "invalid enum" not in problem:
        problem += f", got {_lookup(data, path)!r}"
    return SettingsError(key, problem)


def _read_toml(path: Path) -> dict[str, t.Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(str(path), "config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(str(path), f"not valid TOML ({exc})") from None


def load_settings(config: Path | None = None, overrides: t.Mapping[str, t.Any] | None = None,
                  environ: t.Mapping[str, str] | None = None, profile: str | None = None) -> Settings:
    """Build settings from the config file, the environment and explicit overrides, in that order.

    :param config: a TOML file; ``None`` reads ``./settings.toml`` if it exists, else defaults.
    :param profile: a profile (``profiles/NAME.toml``) layered between the file and the environment.
    :raises SettingsError: naming the first wrong key and what is wrong with it.
    """
    data: dict[str, t.Any] = {}
    if config is not None:
        data = _read_toml(config)
    elif DEFAULT_CONFIG.exists():
        data = _read_toml(DEFAULT_CONFIG)
    if profile:
        from arbitrage.backtest.profiles import read_profile

        data = _merge(data, read_profile(profile))
    data = _merge(data, env_overrides(os.environ if environ is None else environ))
    return from_dict(_merge(data, overrides or {}))


def from_dict(data: dict[str, t.Any]) -> Settings:
    """Validate plain settings data (sections of keys) into ``Settings``.

    :raises SettingsError: naming the first wrong key and what is wrong with it.
    """
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        raise _explain(exc, data) from None
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    """Rules that span keys, which field types cannot express."""
    names = [v.name for v in settings.sim.venues]
    if len(set(names)) != len(names):
        raise SettingsError("sim.venues", f"venue names must be unique, got {names}")
    if len(names) < 2 and settings.run.strategy == "cross_exchange" and settings.run.source == "sim":
        raise SettingsError("sim.venues", "cross_exchange needs at least 2 venues")
    for symbol in settings.sim.symbols:
        if symbol.count("/") != 1:
            raise SettingsError(f"sim.symbols.{symbol}", "symbol must look like BASE/QUOTE")
    for venue in settings.paper.venue_balances:
        if venue not in names and settings.run.source == "sim":
            raise SettingsError(f"paper.venue_balances.{venue}", f"unknown venue (venues: {names})")
    for i, url in enumerate(settings.notify.urls):
        if "://" not in url:  # the value is not echoed: it may be a bare token
            raise SettingsError(f"notify.urls[{i}]", "not an Apprise URL (expected scheme://...)")
