"""Remove secrets from data and text before they reach the database, logs, Redis or notifications.

Two rules, applied recursively by ``redact``:

* a mapping value whose key looks secret (``secret``, ``password``, ``api_key``/``apiKey``,
  ``token``, ``passphrase``, ``private``, ``credential``, ``authorization``, ``signature``) becomes
  ``"***"`` -- empty values (``""``, ``None``) are kept, so "not set" stays visible;
* credentials inside text: ``scheme://user:pass@host`` becomes ``scheme://***@host``; a URL whose
  scheme is not a well-known network scheme (an Apprise URL such as ``tgram://bot-token/chat``
  carries its tokens in the path) becomes ``scheme://***``; ``key=value``, ``key: value`` and
  ``"key": "value"`` pairs with a secret-looking key keep the key and lose the value.

A third rule covers secrets known by value: ``register_secret`` (exchange API keys, secrets and
passwords read from the environment for ``--live``) makes every later ``redact_text`` mask each
occurrence of that exact value, wherever it appears (an exception message, a URL, a sentence).

Limits: a secret with no secret-looking key and no URL around it (a bare token in a sentence)
cannot be recognised unless registered; keep secrets in settings fields or environment variables
whose names say so.
"""

from __future__ import annotations

import re
import typing as t

__all__ = ["MASK", "SECRET_KEY", "is_secret_key", "mask_url", "redact", "redact_line", "redact_text",
           "register_secret"]

MASK = "***"

SECRET_KEY = re.compile(
    r"secret|passw(?:or)?d|api[_-]?key|access[_-]?key|token|passphrase|private|credential|authorization"
    r"|signature|\bsign\b|-sign\b|\burls?\b|webhook", re.I)
"""A key whose name matches this holds a secret."""

_NETWORK_SCHEMES = frozenset({
    "http", "https", "ws", "wss", "redis", "rediss", "unix", "file", "sqlite", "postgres", "postgresql",
    "mysql", "amqp", "amqps", "mongodb", "tcp", "udp", "ftp", "sftp", "ssh", "socks5", "socks5h",
})
"""Schemes whose path is not a secret: only user info and secret query values are removed."""

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>[^\s'\"<>`]+)")
_USERINFO = re.compile(r"^[^/?#@]*@")
_KEY_VALUE = re.compile(
    r"(?P<key>[\w.\-]*(?:" + SECRET_KEY.pattern + r")[\w.\-]*)"
    r"(?P<sep>['\"]?\s*[:=]\s*(?:Bearer\s+|Basic\s+)?)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^'\"\s,&;}\])]+)",
    re.I,
)


_KNOWN: list[str] = []
"""Registered secret values, longest first (so a secret containing another is masked whole)."""
MIN_SECRET_LENGTH = 6
"""Shorter values are not registered: masking every ``abc`` in every log line would hide the log."""


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever ``redact_text`` meets it from now on, for the rest of the process.

    Empty, ``None`` and values shorter than ``MIN_SECRET_LENGTH`` are ignored; registering twice is
    harmless.
    """
    if value and len(value) >= MIN_SECRET_LENGTH and value not in _KNOWN:
        _KNOWN.append(value)
        _KNOWN.sort(key=len, reverse=True)


def is_secret_key(key: object) -> bool:
    """True if a mapping key names a secret."""
    return isinstance(key, str) and SECRET_KEY.search(key) is not None


_WEBHOOK = re.compile(r"hook|discord|slack|telegram|office\.com|/bot\d", re.I)
"""Web URLs whose path carries the token (Discord, Slack, Telegram, Teams webhooks)."""


def _url(match: re.Match[str]) -> str:
    scheme, rest = match["scheme"], match["rest"]
    if scheme.lower() not in _NETWORK_SCHEMES or _WEBHOOK.search(rest):
        return mask_url(match[0])
    rest = _USERINFO.sub(MASK + "@", rest, count=1)
    return f"{scheme}://{rest}"


def mask_url(url: str) -> str:
    """``scheme://host/***``: for URLs whose path may itself be the secret (webhook tokens)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK
    host = _USERINFO.sub("", rest).split("/", 1)[0].split("?", 1)[0]
    if scheme.lower() not in _NETWORK_SCHEMES:
        return f"{scheme}://{MASK}"
    return f"{scheme}://{host}/{MASK}"


def _key_value(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    if value.strip("'\"") in ("", MASK):
        return match[0]
    return f"{match['key']}{match['sep']}{quote}{MASK}{quote}"


def redact_text(text: str) -> str:
    """Return ``text`` with registered secrets, URL credentials, Apprise tokens and ``secret=value``
    pairs masked."""
    for known in _KNOWN:
        if known in text:
            text = text.replace(known, MASK)
    if "://" in text:
        text = _URL.sub(_url, text)
    if SECRET_KEY.search(text) is not None:
        text = _KEY_VALUE.sub(_key_value, text)
    return text


def redact_line(text: str) -> str:
    """``redact_text`` on one line (whitespace runs made one space): an error's text for a log
    line, an alert or a reason. Redacted before any cut, so a secret is never cut unrecognised."""
    return " ".join(redact_text(text).split())


def redact(obj: t.Any) -> t.Any:
    """Return a copy of ``obj`` (dicts, lists, tuples, strings, nested) with secrets masked.

    Other objects are returned unchanged; the input is never mutated.
    """
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {key: _redact_entry(key, value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [redact(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact(item) for item in obj)
    return obj


def _redact_entry(key: object, value: t.Any) -> t.Any:
    if value in (None, "") or not is_secret_key(key):
        return redact(value)
    if isinstance(key, str) and key.lower() in ("url", "urls"):  # keep scheme and host: still useful
        return [mask_url(v) for v in value] if isinstance(value, list) else mask_url(str(value))
    return MASK
