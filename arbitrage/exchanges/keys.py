"""Exchange API keys, read only from the environment and never shown.

``ARB_<EXCHANGE>_API_KEY``, ``ARB_<EXCHANGE>_SECRET`` and ``ARB_<EXCHANGE>_PASSWORD`` (e.g.
``ARB_BINANCE_API_KEY``; the exchange id in upper case). Keys are not a settings field, so they
never reach a settings file, the stored run settings or a profile. ``Keys`` prints as
``Keys(binance, api_key=***, secret=***, password=-)``: a traceback, a log line or an
f-string shows which parts are set, never their value.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from arbitrage.redact import MASK

__all__ = ["Keys", "env_names", "keys_from_env"]


class Keys:
    """One exchange's credentials; ``repr``/``str`` redacted, no equality on values."""

    __slots__ = ("api_key", "exchange", "password", "secret")

    def __init__(self, exchange: str, api_key: str, secret: str, password: str = "") -> None:
        self.exchange = exchange
        self.api_key = api_key
        self.secret = secret
        self.password = password

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={MASK if getattr(self, name) else '-'}"
                          for name in ("api_key", "secret", "password"))
        return f"Keys({self.exchange}, {shown})"

    __str__ = __repr__

    def __reduce__(self) -> t.NoReturn:
        raise TypeError("Keys are not picklable (they would leave the process)")

    @property
    def complete(self) -> bool:
        """An API key and a secret are both set (the password only some exchanges need)."""
        return bool(self.api_key and self.secret)

    def ccxt_config(self) -> dict[str, str]:
        """The ccxt constructor entries (``apiKey``, ``secret``, ``password`` when set)."""
        config = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            config["password"] = self.password
        return config


def env_names(exchange: str) -> tuple[str, str, str]:
    """The variables holding ``exchange``'s API key, secret and password."""
    prefix = "ARB_" + exchange.upper().replace("-", "_").replace(".", "_")
    return f"{prefix}_API_KEY", f"{prefix}_SECRET", f"{prefix}_PASSWORD"


def keys_from_env(name: str, environ: c.Mapping[str, str]) -> Keys | None:
    """``name``'s keys from ``environ``, or None when neither an API key nor a secret is set.

    Values are stripped of surrounding white space (a pasted newline would break every signature).
    A half-set pair is returned as it is: ``Keys.complete`` says so, and the caller refuses it.
    """
    key_var, secret_var, password_var = env_names(name)
    api_key = environ.get(key_var, "").strip()
    secret = environ.get(secret_var, "").strip()
    if not api_key and not secret:
        return None
    return Keys(name, api_key, secret, environ.get(password_var, "").strip())
