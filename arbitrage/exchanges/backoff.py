"""How long to wait after an exchange said no: exponential backoff with jitter, and the exchange's own word.

``Backoff`` counts failures in a row (``reset`` after a success) and gives the next wait:
``min(max_s, initial_s * 2 ** (failures - 1))`` with "equal jitter" (a uniform draw between half and
all of it), so that many clients cut off together do not come back together. ``retry_after_s``
reads what the exchange asked for: the ``Retry-After`` header of its last answer (seconds or an
HTTP date), or Binance's "banned until <ms>" in a 418/-1003 message. The wait is the longer of the
two. The retry loop itself is tenacity's (``retrying``): every error path waits, none spins.

ccxt keeps one ``last_response_headers`` per instance (its public attribute, set by every REST
answer before the error is raised), so with several requests in flight the header read may be
another answer's; it is read only for rate-limit errors, where that is the answer that matters.
"""

from __future__ import annotations

import collections.abc as c
import email.utils
import random
import re
import time
import typing as t

__all__ = ["Backoff", "is_rate_limit", "is_resync", "retry_after_s", "retrying"]

_BANNED_UNTIL = re.compile(r"banned until (\d{12,14})")


def _ccxt() -> t.Any:
    import ccxt

    return ccxt


def is_rate_limit(error: BaseException) -> bool:
    """ccxt's rate-limit answers: ``DDoSProtection`` (HTTP 418, Kraken's ``EAPI:Rate limit
    exceeded``) and ``RateLimitExceeded`` (429) -- siblings in ccxt 4.5, not parent and child."""
    ccxt = _ccxt()
    return isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded)


def is_resync(error: BaseException) -> bool:
    """A sequence gap or bad checksum: ccxt dropped the book and the next watch resubscribes."""
    return isinstance(error, _ccxt().InvalidNonce)  # ChecksumError is one


def _header(headers: c.Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def retry_after_s(exchange: t.Any, error: BaseException, now_s: float | None = None) -> float | None:
    """Seconds the exchange asked us to wait after ``error``, or None when it did not say.

    Only for rate-limit errors (``is_rate_limit``): the ``Retry-After`` header of
    ``exchange.last_response_headers`` (delta seconds or an HTTP date) and a Binance
    ``banned until <epoch ms>`` in the message; the longer wins.
    """
    if not is_rate_limit(error):
        return None
    now_s = time.time() if now_s is None else now_s
    waits: list[float] = []
    value = _header(getattr(exchange, "last_response_headers", None), "retry-after")
    if value:
        try:
            waits.append(float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value.strip() else None
            if when is not None:
                waits.append(when.timestamp() - now_s)
    match = _BANNED_UNTIL.search(str(error))
    if match:
        waits.append(int(match[1]) / 1000.0 - now_s)
    return max(0.0, *waits) if waits else None


class Backoff:
    """Exponential backoff with equal jitter over failures in a row (module doc)."""

    def __init__(self, initial_s: float, max_s: float, *, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._random = (rng or random.Random()).random

    def reset(self) -> None:
        """A success: the next failure waits ``initial_s`` again (at most)."""
        self.failures = 0

    def next_wait(self, asked_s: float | None = None) -> float:
        """Count one more failure and return how long to wait: the backoff, or what the exchange
        asked (``asked_s``) when that is longer."""
        self.failures += 1
        step = min(self.max_s, self.initial_s * 2.0 ** min(self.failures - 1, 32))
        wait = step * (0.5 + 0.5 * self._random())
        return max(wait, asked_s or 0.0)


def retrying(wait: c.Callable[[BaseException], float],
             before_sleep: c.Callable[[BaseException, float], None]) -> t.Any:
    """A tenacity ``AsyncRetrying`` that retries every ccxt error for ever, waiting
    ``wait(error)`` seconds first and calling ``before_sleep(error, seconds)`` (announce it).
    Anything else (a bug) is raised at once."""
    import tenacity

    ccxt = _ccxt()

    class _Wait(tenacity.wait.wait_base):
        def __call__(self, retry_state: tenacity.RetryCallState) -> float:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            return wait(error) if error is not None else 0.0

    def announce(retry_state: tenacity.RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if error is not None:
            before_sleep(error, retry_state.upcoming_sleep)

    return tenacity.AsyncRetrying(retry=tenacity.retry_if_exception_type(ccxt.BaseError), wait=_Wait(),
                                  before_sleep=announce, reraise=True)
