from __future__ import annotations

import pytest

from arbitrage.redact import MASK, is_secret_key, redact, redact_text


@pytest.mark.parametrize("key", ["secret", "apiKey", "api_key", "APIKEY", "password", "passwd", "token",
                                 "access_token", "passphrase", "private_key", "privateKey", "Authorization"])
def test_is_secret_key_matches_secret_names(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["symbol", "venue", "price", "path", 3, None])
def test_is_secret_key_ignores_other_names(key: object) -> None:
    assert not is_secret_key(key)


def test_redact_masks_nested_secret_values_and_keeps_the_rest() -> None:
    data = {"binance": {"apiKey": "k", "secret": "s", "options": {"password": "p"}},
            "venues": [{"name": "alpha", "token": "t"}], "seed": 7, "empty_secret": "", "token_none": None}
    assert redact(data) == {"binance": {"apiKey": MASK, "secret": MASK, "options": {"password": MASK}},
                            "venues": [{"name": "alpha", "token": MASK}], "seed": 7, "empty_secret": "",
                            "token_none": None}
    assert data["binance"]["apiKey"] == "k"  # input untouched


def test_redact_masks_secret_containers_whole() -> None:
    assert redact({"credentials": {"user": "u", "pw": "x"}}) == {"credentials": MASK}


@pytest.mark.parametrize(("text", "expected"), [
    ("https://user:pass@example.com/path?q=1", "https://***@example.com/path?q=1"),
    ("redis://:pw@localhost:6379/0", "redis://***@localhost:6379/0"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("https://api.example.com/v3/order?symbol=BTC&signature=abc123&ts=1",
     "https://api.example.com/v3/order?symbol=BTC&signature=***&ts=1"),
    ("notify tgram://123456:ABC-DEF/987 failed", "notify tgram://*** failed"),
    ("mailto://user:pass@gmail.com?to=x@y.com", "mailto://***"),
    ("discord://webhook_id/webhook_token", "discord://***"),
    ("apiKey=abc123 next", "apiKey=*** next"),
    ("{'apiKey': 'abc', 'secret': \"two words\"}", "{'apiKey': '***', 'secret': \"***\"}"),
    ('{"passphrase": "xyz"}', '{"passphrase": "***"}'),
    ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
    ("token bucket refilled", "token bucket refilled"),
    ("password=***", "password=***"),
    ("no secrets here", "no secrets here"),
])
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_applies_text_rules_to_strings_in_data() -> None:
    assert redact({"urls": ["pover://user@token"], "n": 1.5}) == {"urls": ["pover://***"], "n": 1.5}
    assert redact(("https://a:b@h",)) == ("https://***@h",)


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.com/api/webhooks/1234/SeCrEtToKeN",
        "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
        "https://api.telegram.org/bot123456:ABCsecret/sendMessage",
    ],
)
def test_webhook_urls_whose_path_is_the_token_are_masked(url: str) -> None:
    stored = redact({"notify": {"urls": [url]}})
    assert "SECRET" not in str(stored).upper().replace("***", "")
    assert "secret" not in redact_text(f"sending to {url} failed").lower()


@pytest.mark.parametrize("text", ["api-key=abc123", "X-BAPI-API-KEY: abc123", "OK-ACCESS-SIGN=abc123",
                                  "access_key=abc123"])
def test_exchange_style_key_names_are_masked(text: str) -> None:
    assert "abc123" not in redact_text(text)


def test_a_registered_secret_is_masked_wherever_it_appears() -> None:
    from arbitrage.redact import register_secret

    register_secret("Zq8-registered-SECRET-value")
    register_secret("abc")  # too short to register: it would mask ordinary words
    text = "ccxt said: binance GET /api/v3/order?x=Zq8-registered-SECRET-value failed (abc)"
    assert redact_text(text) == "ccxt said: binance GET /api/v3/order?x=*** failed (abc)"
    assert redact({"note": "key Zq8-registered-SECRET-value"}) == {"note": "key ***"}
