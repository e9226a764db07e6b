"""One-shot scanner: every profitable triangular cycle in a set of books, best first.

The library face of ``arb scan``: the command loads a snapshot (``arbitrage.readers.snapshot``)
and calls ``scan``. The scan uses the same detector as the ``triangular`` strategy, so what it
lists is exactly what the strategy would emit on those books, except that staleness is not
applied (a snapshot is taken over a few seconds by design).
"""

from __future__ import annotations

import typing as t

import msgspec

from arbitrage.book import BookStore
from arbitrage.events import BookUpdate, Market
from arbitrage.strategies.triangular import Found, TriangularDetector

STRATEGY = "triangular"


def scan(books: t.Iterable[BookUpdate], markets: t.Sequence[Market], fee_override: float | None = None,
         min_profit_bps: float = 0.0, balances: t.Mapping[str, float] | None = None,
         max_notional: float | None = None, start_assets: t.Sequence[str] | None = None,
         max_legs: int = 3) -> list[dict[str, t.Any]]:
    """Find every cycle that pays at least ``min_profit_bps`` after taker fees, best first.

    Books are grouped by venue (the last book per venue and symbol wins); every venue is scanned
    with the same ``markets``. Crossed books are ignored, staleness is not checked.

    :param fee_override: taker fee for every market (a fraction: 0.001 = 0.1 %); None keeps each
        market's own.
    :param balances: free balances (asset -> amount) capping every leg's input; None = no cap.
    :param max_notional: largest start amount in dollars; None = no cap.
    :param start_assets: starting assets in order of preference; cycles without one are skipped.
        None = stablecoins first, then BTC, ETH, BNB.
    :param max_legs: 3, or 4 to add 4-asset cycles.
    :returns: one dict per opportunity, sorted by ``profit_bps`` (then profit) descending:
        ``strategy``, ``venue``, ``assets`` (the cycle in order, start asset first and last),
        ``start_asset``, ``amount`` (start asset spent), ``received``, ``profit`` (in the start
        asset), ``profit_bps``, ``quote`` (= start asset) and ``legs`` (``symbol``, ``side``,
        ``price`` = limit, ``amount`` = base amount, ``expected_price``, ``fee_rate``).
    :raises ValueError: if ``max_legs`` is not 3 or 4.
    """
    if fee_override is not None:
        markets = [msgspec.structs.replace(m, taker_fee=fee_override) for m in markets]
    store = BookStore()
    by_venue: dict[str, dict[str, BookUpdate]] = {}
    for book in books:
        store.update(book)
        by_venue.setdefault(book.venue, {})[book.symbol] = book
    results: list[dict[str, t.Any]] = []
    for venue, latest in sorted(by_venue.items()):
        detector = TriangularDetector(venue, markets, store, min_profit_bps=min_profit_bps,
                                      max_notional=max_notional, max_legs=max_legs, start_assets=start_assets)
        detector.set_balances(balances)
        for book in latest.values():
            detector.refresh(book)
        results.extend(to_dict(venue, found) for found in detector.evaluate_all())
    results.sort(key=lambda item: (-item["profit_bps"], -item["profit"]))
    return results


def to_dict(venue: str, found: Found) -> dict[str, t.Any]:
    """One opportunity as plain JSON-ready builtins (the ``arb scan --json`` item)."""
    assets = list(found.cycle.assets)
    return {
        "strategy": STRATEGY,
        "venue": venue,
        "assets": [*assets, assets[0]],
        "start_asset": assets[0],
        "amount": found.spent,
        "received": found.received,
        "profit": found.profit,
        "profit_bps": found.profit_bps,
        "quote": assets[0],
        "legs": [{"symbol": leg.symbol, "side": leg.side, "price": leg.price, "amount": leg.amount,
                  "expected_price": leg.expected_price, "fee_rate": leg.fee_rate} for leg in found.legs],
    }
