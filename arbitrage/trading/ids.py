"""Client order ids: deterministic, short, and valid on every venue we trade.

Every order carries two names. Its *label* is the readable ``{opportunity id}-L{i}`` (``-H{n}``
for a hedge, ``-U{n}`` for an unwind); its *client order id* is derived from the label and is what
the venue sees. Venues restrict client ids: Binance's ``newClientOrderId`` is at most 36 of
``[.A-Z:/a-z0-9_-]``, Kraken's ``cl_ord_id`` a UUID or at most 18 ASCII characters, and
opportunity ids (run id plus a counter) are longer than that. So the id is ``arb`` followed by the
first 15 characters of the lower-case base-32 SHA-256 of the label: 18 characters of ``[a-z2-7]``,
75 bits of hash, fitting both. The same label always gives the same id, so a lookup after a lost
reply asks for exactly the id that was sent; the prefix tells our orders from any other order on
the same account (``cancel_all`` cancels only ours). Paper and live venues use the same ids; the
database keeps the label beside the id (``orders.label``).
"""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = ["ID_LENGTH", "PREFIX", "client_order_id", "is_ours", "order_label"]

PREFIX = "arb"
ID_LENGTH = 18
"""Kraken's limit for a free-text ``cl_ord_id``; Binance allows 36."""
_OURS = re.compile(rf"{PREFIX}[a-z2-7]{{{ID_LENGTH - len(PREFIX)}}}")


def order_label(opportunity_id: str, tag: str, index: int) -> str:
    """The readable name of an order: ``order_label("r-7", "L", 0) == "r-7-L0"``."""
    return f"{opportunity_id}-{tag}{index}"


def client_order_id(label: str) -> str:
    """The venue-side id of the order named ``label`` (deterministic, ``ID_LENGTH`` characters)."""
    digest = base64.b32encode(hashlib.sha256(label.encode()).digest()).decode().lower()
    return PREFIX + digest[:ID_LENGTH - len(PREFIX)]


def is_ours(client_id: str | None) -> bool:
    """True if ``client_id`` has the shape of an id ``client_order_id`` makes."""
    return client_id is not None and _OURS.fullmatch(client_id) is not None
