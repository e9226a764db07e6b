"""Profiles: named settings files (``profiles/NAME.toml``) that ``arb optimize --save`` writes.

A profile holds only the keys it sets, by section, e.g. ``[strategy] min_profit_bps = 5.0``. It is
layered between ``settings.toml`` and the environment: settings file < profile < ``ARB_*``
variables < command-line flags (``load_settings(..., profile=NAME)``, ``--profile NAME``).

Command-line parameters (``--param key=value``, ``--grid key=v1,v2``) name a setting either by
its full path (``trading.latency_ms``) or by its bare key, which is looked up in ``strategy``,
then ``trading``, then ``backtest``; ``max_notional`` sets both the strategy's sizing cap and
the trading risk limit, as ``--max-notional`` does.
"""

from __future__ import annotations

import math
import tomllib
import typing as t
from pathlib import Path

import msgspec

from arbitrage.errors import SettingsError
from arbitrage.settings.sections import Settings

__all__ = ["PROFILE_DIR", "parse_assignment", "parse_value", "profile_path", "read_profile", "resolve_key",
           "set_value", "to_toml", "write_profile"]

PROFILE_DIR = Path("profiles")
"""Where profiles live, relative to the working directory (like ``settings.toml``)."""

_SEARCH = ("strategy", "trading", "backtest")
_BOTH = {"max_notional": ("strategy", "trading")}


def profile_path(name: str) -> Path:
    """``NAME`` -> ``profiles/NAME.toml``; a name ending in ``.toml`` is taken as a path.

    :raises SettingsError: if the name is empty or would leave the profiles folder.
    """
    if name.endswith(".toml"):
        return Path(name)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise SettingsError("--profile", f"a profile name is a plain word, got {name!r}")
    return PROFILE_DIR / f"{name}.toml"


MARKET_KEYS: tuple[tuple[str, str], ...] = (("trading", "latency_ms"), ("backtest", "fee"))
"""What the market a backtest simulates is like (order latency, taker fees): inputs of a backtest,
never parameters of the strategy, so no grid searches them and no profile carries them into
``arb run`` (where the venue decides them)."""


def market_key_error(where: str, section: str, name: str) -> SettingsError:
    return SettingsError(where, f"{section}.{name} describes the market a backtest simulates, not the "
                                "strategy: give it with --latency-ms / --fee, it is never a profile's")


def read_profile(name: str) -> dict[str, t.Any]:
    """The settings a profile sets, as nested sections.

    :raises SettingsError: if the profile does not exist, is not valid TOML, or sets a market key.
    """
    path = profile_path(name)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError("--profile", f"no profile {name!r} ({path} not found)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(str(path), f"not valid TOML ({exc})") from None
    for section, key in MARKET_KEYS:
        if key in data.get(section, {}):
            raise market_key_error(str(path), section, key)
    return data


def _sections() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for field in msgspec.structs.fields(Settings):
        if isinstance(field.default, msgspec.Struct):
            out[field.name] = {f.name for f in msgspec.structs.fields(type(field.default))}
    return out


def resolve_key(key: str) -> list[tuple[str, str]]:
    """Where a parameter goes: ``[(section, field), ...]``.

    :raises SettingsError: if no section has that key.
    """
    sections = _sections()
    section, dot, name = key.strip().rpartition(".")
    if dot:
        if section not in sections or name not in sections[section]:
            raise SettingsError(key, "unknown setting")
        return [(section, name)]
    if name in _BOTH:
        return [(s, name) for s in _BOTH[name]]
    for section in _SEARCH:
        if name in sections.get(section, set()):
            return [(section, name)]
    raise SettingsError(key, f"unknown setting (not in {', '.join(_SEARCH)}; use section.key)")


def parse_value(text: str) -> t.Any:
    """A parameter's value as TOML reads it (``5`` -> 5, ``2.5`` -> 2.5, ``true``), else a string."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_assignment(item: str, flag: str = "--param") -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")``.

    :raises SettingsError: naming ``flag`` when there is no ``=`` or no key.
    """
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise SettingsError(flag, f"expected KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def set_value(overrides: dict[str, t.Any], key: str, value: t.Any) -> None:
    """Put ``value`` at every place ``key`` resolves to in a nested override dict."""
    for section, name in resolve_key(key):
        overrides.setdefault(section, {})[name] = value


def _toml_value(value: t.Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} to TOML")
        return repr(value)
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ValueError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else msgspec.json.encode(key).decode()


def to_toml(sections: t.Mapping[str, t.Mapping[str, t.Any]], comment: str = "") -> str:
    """Nested ``{section: {key: value}}`` as TOML text, with ``comment`` lines on top."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    for section, values in sections.items():
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_profile(name: str, sections: t.Mapping[str, t.Mapping[str, t.Any]], comment: str = "") -> Path:
    """Write ``profiles/NAME.toml`` (creating the folder), replacing an older one; returns its path."""
    path = profile_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(sections, comment))
    return path
