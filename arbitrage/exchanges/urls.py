"""Pointing a ccxt exchange at another place: an emulator, a gateway or a recording proxy.

``--exchange-url NAME=BASE`` rewrites every URL of the ccxt instance's ``urls['api']`` tree so that
the original host becomes the first path segment under BASE::

    https://api.binance.com/api/v3    -> http://127.0.0.1:8080/api.binance.com/api/v3
    wss://stream.binance.com:9443/ws  -> ws://127.0.0.1:8080/stream.binance.com/ws

Keeping the host lets one port serve every host of an exchange, and keeps the path substrings ccxt
itself inspects (Binance tells spot from futures streams by ``/stream``, Kraken picks its ping by
``v2``). A ``http`` BASE gives ``ws`` websockets, ``https`` gives ``wss``. ccxt's sandbox mode is
not used: it swaps in other URLs and adds checks of its own.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit, urlunsplit

from arbitrage.errors import SettingsError

__all__ = ["check_base", "parse_exchange_url", "rewrite_url", "rewrite_urls"]

_WS = {"http": "ws", "https": "wss"}


def _base(base: str, where: str = "--exchange-url") -> tuple[str, str, str]:
    """(scheme, netloc, path prefix) of a BASE such as ``http://127.0.0.1:8080/prefix``."""
    parts = urlsplit(base.strip())
    if parts.scheme not in _WS or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(where, f"BASE must be http(s)://HOST[:PORT][/PATH], got {base!r}")
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


def check_base(base: str, where: str) -> str:
    """``base`` stripped, if it is a usable BASE. :raises SettingsError: naming ``where`` if not."""
    _base(base, where)
    return base.strip()


def rewrite_url(url: str, base: str) -> str:
    """``url`` moved under ``base`` with its host (not its port) as the first path segment.

    Strings that are not http(s) or ws(s) URLs are returned unchanged (ccxt keeps other strings
    in the same tree). :raises SettingsError: naming ``--exchange-url`` for a malformed ``base``.
    """
    scheme, netloc, prefix = _base(base)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        return url
    new_scheme = _WS[scheme] if parts.scheme in ("ws", "wss") else scheme
    return urlunsplit((new_scheme, netloc, f"{prefix}/{parts.hostname}{parts.path}", parts.query,
                       parts.fragment))


def rewrite_urls(tree: t.Any, base: str) -> t.Any:
    """A copy of ccxt's ``urls['api']`` tree (nested dicts and lists of strings) with every URL
    rewritten by ``rewrite_url``; its shape and key names are kept, whatever the ccxt version."""
    if isinstance(tree, str):
        return rewrite_url(tree, base)
    if isinstance(tree, dict):
        return {key: rewrite_urls(value, base) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(rewrite_urls(value, base) for value in tree)
    return tree


def parse_exchange_url(item: str) -> tuple[str, str]:
    """``"binance=http://127.0.0.1:8080"`` -> ``("binance", "http://127.0.0.1:8080")``.

    :raises SettingsError: naming ``--exchange-url`` when the item is not ``NAME=BASE``.
    """
    name, sep, base = item.partition("=")
    name = name.strip().lower()
    if not sep or not name:
        raise SettingsError("--exchange-url", f"expected NAME=BASE, got {item!r}")
    _base(base)
    return name, base.strip()
