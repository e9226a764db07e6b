"""The one book store: latest book per venue and symbol, minus what our own fills took."""

from __future__ import annotations

import pytest

from arbitrage.book import BookStore
from tests.trading.helpers import book


def test_store_hides_what_we_took_until_the_level_changes():
    store = BookStore()
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0), (101.0, 2.0)], 1))
    store.take("a", "BTC/USDT", "asks", 100.0, 0.4)
    assert store.levels("a", "BTC/USDT", "asks") == [(100.0, pytest.approx(0.6)), (101.0, 2.0)]
    store.take("a", "BTC/USDT", "asks", 100.0, 0.6)
    assert store.levels("a", "BTC/USDT", "asks") == [(101.0, 2.0)]
    assert store.levels("a", "BTC/USDT", "bids") == [(99.0, 1.0)]
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0), (101.0, 2.0)], 2))
    assert store.levels("a", "BTC/USDT", "asks") == [(101.0, 2.0)]  # same level, same size: still ours
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(101.0, 2.0)], 3))
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0), (101.0, 2.0)], 4))
    assert store.levels("a", "BTC/USDT", "asks") == [(100.0, 1.0), (101.0, 2.0)]  # gone and back: fresh
    assert store.taken() == {}


def test_taking_is_kept_per_venue_and_symbol_and_the_raw_snapshot_is_untouched():
    store = BookStore()
    a = book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0)], 1)
    b = book("b", "BTC/USDT", [(99.5, 2.0)], [(100.5, 2.0)], 1)
    for snapshot in (a, b):
        store.update(snapshot)
    store.take("a", "BTC/USDT", "bids", 99.0, 0.25)
    assert store.levels("a", "BTC/USDT", "bids") == [(99.0, 0.75)]
    assert store.levels("b", "BTC/USDT", "bids") == [(99.5, 2.0)]
    assert store.get("a", "BTC/USDT") is a  # the snapshot as the venue published it
    assert dict(store.venues("BTC/USDT")) == {"a": a, "b": b}
    assert store.by_symbol == {"BTC/USDT": {"a": a, "b": b}}


def test_a_take_never_exceeds_the_level_and_unknown_books_or_prices_are_ignored():
    store = BookStore()
    store.take("a", "BTC/USDT", "asks", 100.0, 1.0)  # no book yet: nothing to reduce
    assert store.taken() == {} and store.levels("a", "BTC/USDT", "asks") == []
    store.update(book("a", "BTC/USDT", [(99.0, 1.0)], [(100.0, 1.0)], 1))
    store.take("a", "BTC/USDT", "asks", 100.5, 1.0)  # a price the snapshot does not show
    assert store.taken() == {}
    store.take("a", "BTC/USDT", "asks", 100.0, 0.7)
    store.take("a", "BTC/USDT", "asks", 100.0, 0.7)
    assert store.taken() == {("a", "BTC/USDT"): {"asks@100.0": 1.0}}
    assert store.levels("a", "BTC/USDT", "asks") == []
