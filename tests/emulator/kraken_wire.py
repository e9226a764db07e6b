"""Kraken spot REST wire details the emulator shares: signatures, nonces, ids, numbers, errors.

Signature (docs.kraken.com, "Spot REST Authentication"; ccxt ``kraken.sign``): a private call is a
form POST with a ``nonce``, header ``API-Key`` and ``API-Sign`` = base64(HMAC-SHA512(key =
base64decode(secret), msg = URI path + SHA256(nonce + POST body))). The path signed is
``/0/private/Method``, without the host segment the URL rewrite adds in front of it.

Every reply is HTTP 200 with ``{"error": [...], "result": ...}``, errors included; an error reply
carries only ``error``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import typing as t
import uuid
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

__all__ = [
    "ERRORS", "Credentials", "KrakenError", "fmt", "fmt_down", "kraken_id", "sign", "valid_cl_ord_id",
]

ERRORS: dict[str, str] = {
    "duplicate_client_order_id": "EOrder:Duplicate order",
    "insufficient_funds": "EOrder:Insufficient funds",
    "invalid_order": "EOrder:Invalid order",
    "unknown_symbol": "EQuery:Unknown asset pair",
    "order_not_found": "EOrder:Unknown order",
}
"""Kraken's error string for each ``core.Rejected`` reason (the duplicate wording is the
emulator's: Kraken documents the rule, not the string)."""


class KrakenError(Exception):
    """A request Kraken refuses: answered ``{"error": [error]}`` with HTTP 200."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def sign(path: str, nonce: str, body: str, secret: str) -> str:
    """Kraken's ``API-Sign`` of a private request (``secret`` as base64, the way Kraken issues it)."""
    digest = hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(base64.b64decode(secret), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


@dataclasses.dataclass
class Credentials:
    """The API keys the emulated account accepts (key -> base64 secret) and each key's last nonce."""

    secrets: dict[str, str]
    last_nonce: dict[str, int] = dataclasses.field(default_factory=dict)

    def check(self, path: str, headers: t.Mapping[str, str], body: str, nonce: str | None) -> None:
        """Accept a private request or raise the error Kraken answers.

        Order of checks: the key (``EAPI:Invalid key``), the signature (``EAPI:Invalid
        signature``), then the nonce, which must be an integer above the key's last accepted one
        (``EAPI:Invalid nonce``). Only an accepted request moves the key's nonce.
        """
        key = headers.get("API-Key", "")
        secret = self.secrets.get(key)
        if secret is None:
            raise KrakenError("EAPI:Invalid key")
        signed = nonce is not None and hmac.compare_digest(headers.get("API-Sign", ""),
                                                           sign(path, nonce, body, secret))
        if not signed:
            raise KrakenError("EAPI:Invalid signature")
        if not nonce.isdigit() or int(nonce) <= self.last_nonce.get(key, 0):
            raise KrakenError("EAPI:Invalid nonce")
        self.last_nonce[key] = int(nonce)


_FREE_TEXT = re.compile(r"[\x20-\x7e]{1,18}")


def valid_cl_ord_id(value: str) -> bool:
    """Kraken's ``cl_ord_id`` formats: a UUID (with its dashes, or as 32 hex digits) or free ASCII
    text of at most 18 characters (docs.kraken.com, "Spot Client Order Identifiers")."""
    if len(value) in (32, 36):
        try:
            uuid.UUID(value)
            return len(value) == 32 or value.count("-") == 4
        except ValueError:
            pass
    return _FREE_TEXT.fullmatch(value) is not None


_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def kraken_id(prefix: str, number: int) -> str:
    """A Kraken-shaped id (``OQCLML-BW3P3-BUCMWZ``: 6-5-6 characters) that is unique per ``number``;
    ``prefix`` is ``O`` for orders, ``T`` for trades."""
    digits = []
    for _ in range(16):
        number, rest = divmod(number, 32)
        digits.append(_ID_ALPHABET[rest])
    body = prefix + "".join(reversed(digits))
    return f"{body[:6]}-{body[6:11]}-{body[11:]}"


def fmt(value: Decimal | int, decimals: int, rounding: str = ROUND_HALF_EVEN) -> str:
    """``value`` printed with exactly ``decimals`` decimals, as Kraken prints amounts and prices."""
    return f"{Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=rounding):f}"


def fmt_down(value: Decimal, decimals: int) -> str:
    """``fmt`` truncating, as Kraken does with an order's ``cost``."""
    return fmt(value, decimals, ROUND_DOWN)
