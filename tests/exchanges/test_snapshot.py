"""``arbitrage.exchanges.snapshot``: ccxt order books to ``BookUpdate``s, bad ones named."""

from __future__ import annotations

import asyncio
import typing as t

from arbitrage.exchanges.snapshot import fetch_books, to_book

NOW = 1_700_000_000_000_000_000


def test_a_good_book_keeps_its_levels_and_the_exchange_timestamp() -> None:
    book = to_book("kraken", "BTC/USD", {"bids": [[100.0, 1.0, 1700000000]], "asks": [["101", "2"]],
                                         "timestamp": 1_600_000_000_000}, NOW)
    assert not isinstance(book, str)
    assert (book.bids, book.asks) == (((100.0, 1.0),), ((101.0, 2.0),))  # Kraken's third field dropped
    assert (book.ts_event, book.ts_init) == (1_600_000_000_000 * 1_000_000, NOW)
    untimed = to_book("x", "A/B", {"bids": [[1, 1]], "asks": [[2, 1]], "timestamp": None}, NOW)
    assert not isinstance(untimed, str) and untimed.ts_event == NOW


def test_bad_books_are_named_not_kept() -> None:
    cases = {
        "empty": {"bids": [], "asks": []},
        "one-sided": {"bids": [[1.0, 1.0]], "asks": []},
        "crossed": {"bids": [[2.0, 1.0]], "asks": [[2.0, 1.0]]},
        "unsorted": {"bids": [[1.0, 1.0], [2.0, 1.0]], "asks": [[3.0, 1.0]]},
        "level": {"bids": [[1.0, 0.0]], "asks": [[3.0, 1.0]]},
    }
    for reason, order_book in cases.items():
        assert to_book("x", "A/B", order_book, NOW) == reason
    assert to_book("x", "A/B", {"bids": [["abc", 1]], "asks": []}, NOW) == "level"


class Batch:
    """An exchange with ``fetchOrderBooks`` (neither emulated venue has it): one call for all."""

    id = "batch"
    has: t.ClassVar[dict[str, bool]] = {"fetchOrderBooks": True}

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []

    async def fetch_order_books(self, symbols: list[str], limit: int) -> dict[str, t.Any]:
        self.calls.append((symbols, limit))
        return {"A/B": {"bids": [[1, 1]], "asks": [[2, 1]]}, "C/D": {"bids": [[3, 1]], "asks": [[2, 1]]}}


def test_fetch_order_books_is_one_call_where_the_exchange_has_it() -> None:
    exchange = Batch()
    snapshot = asyncio.run(fetch_books(exchange, ["A/B", "C/D", "E/F"], depth=10))
    assert exchange.calls == [(["A/B", "C/D", "E/F"], 10)]
    assert [book.symbol for book in snapshot.books] == ["A/B"]
    assert snapshot.skipped == {"C/D": "crossed", "E/F": "empty"}
