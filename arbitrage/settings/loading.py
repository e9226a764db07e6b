"""Loading settings: ``settings.toml`` < profile < environment (``ARB_SECTION__KEY``) < command-line flags.

``load_settings`` raises ``SettingsError`` with one line naming the key and the problem (and the
environment variable, when one set it); the CLI prints it and exits with code 2. Every number
must be finite: ``nan`` and ``inf`` (valid TOML) are refused for every key.

Environment variables: ``ARB_SECTION__KEY`` (two underscores between section and key, one
between words: ``ARB_TRADING__MAX_NOTIONAL``) sets ``[section] key``. Besides those, arb reads
``ARB_INTERPRETED`` (``arbitrage.compiled``), ``ARB_NOTIFY_URLS`` (``arbitrage.notify``) and the
exchange keys ``ARB_<EXCHANGE>_API_KEY`` / ``_SECRET`` / ``_PASSWORD``; ``stray_env`` lists any
other ``ARB_`` variable, which the CLI warns about once (a typo would otherwise be ignored).
"""

from __future__ import annotations

import math
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
READ_ON_PURPOSE = frozenset({"ARB_INTERPRETED", "ARB_NOTIFY_URLS"})
"""``ARB_`` variables arb reads that are not settings (``compiled.ENV``, ``notify.channels.ENV_URLS``)."""
KEY_SUFFIXES = ("_API_KEY", "_SECRET", "_PASSWORD")
"""Endings of the exchange key variables ``ARB_<EXCHANGE>_API_KEY`` and so on."""


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


def _env_path(name: str) -> list[str] | None:
    """``ARB_TRADING__MAX_NOTIONAL`` -> ``["trading", "max_notional"]``; None for other names."""
    if not name.startswith(ENV_PREFIX) or "__" not in name:
        return None
    return name[len(ENV_PREFIX):].lower().split("__")


def env_overrides(environ: t.Mapping[str, str]) -> dict[str, t.Any]:
    """``ARB_TRADING__MAX_NOTIONAL=500`` -> ``{"trading": {"max_notional": 500}}``."""
    out: dict[str, t.Any] = {}
    for name, raw in environ.items():
        path = _env_path(name)
        if path is None:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _env_value(raw)
    return out


def stray_env(environ: t.Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``ARB_`` variables that are neither ``ARB_SECTION__KEY`` settings nor read on purpose, each
    with the setting's variable it most likely meant (``ARB_TRADING_MAX_NOTIONAL`` ->
    ``ARB_TRADING__MAX_NOTIONAL``) or None."""
    stray = [name for name in sorted(environ) if name.startswith(ENV_PREFIX) and "__" not in name
             and name not in READ_ON_PURPOSE and not name.endswith(KEY_SUFFIXES)]
    if not stray:
        return []
    keys = {(section.name, field.name) for section in _sections() for field in section.type.fields}
    out: list[tuple[str, str | None]] = []
    for name in stray:
        words = name[len(ENV_PREFIX):].lower()
        cut = next((i for i, ch in enumerate(words) if ch == "_" and (words[:i], words[i + 1:]) in keys), 0)
        meant = f"{ENV_PREFIX}{words[:cut].upper()}__{words[cut + 1:].upper()}" if cut else None
        out.append((name, meant))
    return out


def _sections() -> tuple[t.Any, ...]:
    """The fields of ``Settings`` (sections), each with its Struct's fields (``msgspec.inspect``,
    imported only when the environment has a stray variable to explain)."""
    import msgspec.inspect

    return t.cast(msgspec.inspect.StructType, msgspec.inspect.type_info(Settings)).fields

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
    environ = os.environ if environ is None else environ
    data = _merge(data, env_overrides(environ))
    try:
        return from_dict(_merge(data, overrides or {}))
    except SettingsError as exc:
        raise _from_env(exc, environ, overrides or {}) from None


def _from_env(error: SettingsError, environ: t.Mapping[str, str],
              overrides: t.Mapping[str, t.Any]) -> SettingsError:
    """``error``, naming the environment variable that set its key (unless a flag replaced it)."""
    parts = error.key.replace("[", ".[").split(".")
    for name in environ:
        path = _env_path(name)
        if path is None or parts[:len(path)] != path[:len(parts)]:
            continue
        node: t.Any = overrides
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:  # not overridden by a command-line flag
            return SettingsError(error.key, f"{error.problem} (from {name})")
    return error


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


def _not_finite(value: t.Any, key: str) -> tuple[str, float] | None:
    """The key and value of the first ``nan`` or infinite number in ``value`` (builtins), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (key, value)
    if isinstance(value, dict):
        items: t.Iterable[tuple[str, t.Any]] = ((f"{key}.{k}" if key else str(k), v)
                                                for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub, item in items:
        found = _not_finite(item, sub)
        if found is not None:
            return found
    return None


PATH_KEYS = ("storage.path", "storage.backtest_path", "log.file", "monitor.halt_file", "backtest.record")
"""Settings naming a file arb writes ('' = none where allowed)."""


def _path_problem(value: str) -> str | None:
    """Why a file cannot be written at ``value`` (a folder in its way is a file, or it is a folder),
    found without creating anything; None if it looks writable."""
    path = Path(value)
    if path.is_dir():
        return f"{value} is a folder, not a file"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, so {value} cannot be created"
            if not os.access(parent, os.W_OK | os.X_OK) and not path.exists():
                return f"cannot create files in {parent} (permission denied)"
            return None
    return None


def _check(settings: Settings) -> None:
    """Rules that span keys, which field types cannot express."""
    found = _not_finite(settings.to_dict(), "")
    if found is not None:
        raise SettingsError(found[0], f"expected a finite number, got {found[1]}")
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        problem = _path_problem(value) if value else None
        if problem is not None:
            raise SettingsError(key, problem)
    if settings.notify.config and not Path(settings.notify.config).is_file():
        raise SettingsError("notify.config", f"Apprise config file not found: {settings.notify.config}")
    if not settings.risk.currency.strip():
        raise SettingsError("risk.currency", "must name a currency, e.g. USDT")
    names = [v.name for v in settings.sim.venues]
    for i, name in enumerate(names):
        if not name.strip():
            raise SettingsError(f"sim.venues[{i}].name", "must not be empty")
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
