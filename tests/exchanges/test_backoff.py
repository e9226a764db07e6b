"""What the exchange asked and the backoff between: retry_after_s on ccxt's own error classes."""

from __future__ import annotations

import random
import types

import pytest

from arbitrage.exchanges.backoff import Backoff, is_rate_limit, is_resync, retry_after_s
from arbitrage.exchanges.client import rest_depth, ws_depth

ccxt = pytest.importorskip("ccxt")

NOW = 1_700_000_000.0


def _exchange(**headers: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(last_response_headers=headers)


def test_retry_after_is_read_in_seconds_or_as_an_http_date_only_for_rate_limits() -> None:
    limited = ccxt.RateLimitExceeded("binance GET /api/v3/depth 429")
    assert retry_after_s(_exchange(**{"Retry-After": "7"}), limited, NOW) == 7.0
    assert retry_after_s(_exchange(**{"retry-after": "Tue, 14 Nov 2023 22:13:40 GMT"}), limited, NOW) == 20.0
    assert retry_after_s(_exchange(), limited, NOW) is None
    assert retry_after_s(_exchange(**{"Retry-After": "7"}), ccxt.ExchangeNotAvailable("503"), NOW) is None


def test_a_binance_ban_until_counts_even_without_a_header_and_the_longer_wait_wins() -> None:
    ban = ccxt.DDoSProtection('binance 418 {"code":-1003,"msg":"Way too much request weight used; '
                              f'IP banned until {int((NOW + 90) * 1000)}."}}')
    assert retry_after_s(_exchange(), ban, NOW) == pytest.approx(90.0)
    assert retry_after_s(_exchange(**{"Retry-After": "120"}), ban, NOW) == 120.0
    assert retry_after_s(_exchange(**{"Retry-After": "5"}), ban, NOW) == pytest.approx(90.0)


def test_errors_are_classified_by_ccxt_s_classes() -> None:
    assert is_rate_limit(ccxt.DDoSProtection("kraken EAPI:Rate limit exceeded"))
    assert is_rate_limit(ccxt.RateLimitExceeded("429")) and not is_rate_limit(ccxt.NetworkError("x"))
    assert is_resync(ccxt.ChecksumError("gap")) and is_resync(ccxt.InvalidNonce("x"))
    assert not is_resync(ccxt.NetworkError("x"))


def test_the_backoff_doubles_with_equal_jitter_up_to_its_cap_resets_and_yields_to_what_was_asked() -> None:
    backoff = Backoff(0.5, 4.0, rng=random.Random(1))
    waits = [backoff.next_wait() for _ in range(6)]
    for wait, step in zip(waits, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
        assert step / 2 <= wait <= step
    assert backoff.next_wait(asked_s=30.0) == 30.0
    backoff.reset()
    assert backoff.next_wait() <= 0.5


@pytest.mark.parametrize(("name", "depth", "ws", "rest"), [
    ("kraken", 10, 10, 10), ("kraken", 11, 25, 11), ("kraken", 5000, 1000, 5000),
    ("binance", 10, None, 10), ("binance", 30, None, 50), ("binance", 9999, None, 5000),
    ("coinbase", 7, 7, 7),
])
def test_depths_are_mapped_to_what_each_exchange_accepts(name: str, depth: int, ws: int | None,
                                                         rest: int) -> None:
    assert (ws_depth(name, depth), rest_depth(name, depth)) == (ws, rest)
