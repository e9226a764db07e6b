"""Loading settings: ``settings.toml`` < profile < environment (``ARB_SECTION__KEY``) < command-line flags.

``load_settings`` raises ``SettingsError`` with one line naming the key and the problem; the CLI
prints it and exits with code 2.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing as t
from pathlib import Path

import msgspec

from arbitrage.errors import SettingsError
from arbitrage.settings.profiles import read_profile
from arbitrage.settings.sections import Settings

ENV_PREFIX = "ARB_"
DEFAULT_CONFIG = Path("settings.toml")


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
    if (len(names) < 2 and settings.run.strategy == "cross_exchange" and settings.run.source == "sim"
            and settings.redis.role != "collector"):  # a collector runs no strategy
        raise SettingsError("sim.venues", "cross_exchange needs at least 2 venues")
    for symbol in settings.sim.symbols:
        if symbol.count("/") != 1:
            raise SettingsError(f"sim.symbols.{symbol}", "symbol must look like BASE/QUOTE")
    for venue in settings.paper.venue_balances:
        if venue not in names and settings.run.source == "sim":
            raise SettingsError(f"paper.venue_balances.{venue}", f"unknown venue (venues: {names})")
    _check_ccxt(settings)
    for i, url in enumerate(settings.notify.urls):
        if "://" not in url:  # the value is not echoed: it may be a bare token
            raise SettingsError(f"notify.urls[{i}]", "not an Apprise URL (expected scheme://...)")


def _check_ccxt(settings: Settings) -> None:
    from arbitrage.exchanges.urls import check_base

    ccxt = settings.ccxt
    for i, name in enumerate(ccxt.exchanges):
        if not name or name != name.strip().lower():
            raise SettingsError(f"ccxt.exchanges[{i}]", f"a ccxt exchange id in lower case, got {name!r}")
    if len(set(ccxt.exchanges)) != len(ccxt.exchanges):
        raise SettingsError("ccxt.exchanges", f"exchange names must be unique, got {ccxt.exchanges}")
    for i, symbol in enumerate(ccxt.symbols):
        base, sep, quote = symbol.partition("/")
        if not sep or not base or not quote or "/" in quote:
            raise SettingsError(f"ccxt.symbols[{i}]", f"symbol must look like BASE/QUOTE, got {symbol!r}")
    for name, base in ccxt.urls.items():
        check_base(base, f"ccxt.urls.{name}")
    if ccxt.backoff_max_s < ccxt.backoff_initial_s:
        raise SettingsError("ccxt.backoff_max_s", "must not be less than ccxt.backoff_initial_s")
    if settings.run.source == "ccxt":
        if not ccxt.exchanges:
            raise SettingsError("ccxt.exchanges", "--source ccxt needs at least one exchange (--exchanges)")
        if not ccxt.symbols:
            raise SettingsError("ccxt.symbols", "--source ccxt needs at least one symbol (--symbols)")
