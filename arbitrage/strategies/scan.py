"""One-shot scanners: every profitable opportunity in a set of books, best first.

The library face of ``arb scan``: the command loads a snapshot (``arbitrage.readers.snapshot``)
or fetches one from live exchanges (``arbitrage.exchanges.snapshot``) and calls ``scan``
(triangular) or ``scan_cross`` (cross-exchange). Each runs the strategy's own code -- the
``TriangularDetector``, the ``CrossExchangeStrategy`` plugin on a private bus -- so what it lists
is exactly what the strategy would emit on those books, except that staleness is not applied (a
snapshot is taken over a few seconds by design).
"""

from __future__ import annotations

import collections.abc as c
import typing as t

import msgspec

from arbitrage.book import BookStore
from arbitrage.events import BookUpdate, Market
from arbitrage.strategies.triangular import Found, TriangularDetector

if t.TYPE_CHECKING:
    from arbitrage.events import Opportunity
    from arbitrage.settings import Settings

STRATEGY = "triangular"
CROSS = "cross_exchange"
STRATEGIES = (STRATEGY, CROSS)

NEVER_STALE_MS = 1e15
"""The staleness limit a scan gives the strategy: about 30,000 years, i.e. none."""


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


def scan_cross(books: t.Iterable[BookUpdate], markets: c.Mapping[str, t.Sequence[Market]], settings: Settings,
               fee_override: float | None = None) -> list[dict[str, t.Any]]:
    """Every buy-here/sell-there route that pays ``strategy.min_profit_bps`` after both taker fees,
    best first: the ``cross_exchange`` strategy fed these books once each on a bus of its own.

    Each venue pair of a symbol is evaluated once, when the later of its two books arrives; sizes
    follow the strategy (``strategy.max_notional`` and ``trading.max_notional`` in
    ``risk.currency``, valued from these books: a route whose quote cannot be valued is skipped).
    No balances are known, so they do not cap sizes.

    :param markets: venue -> its markets (a book of a market not listed there is ignored).
    :param fee_override: taker fee for every market; None keeps each market's own.
    :returns: dicts shaped like ``scan``'s, ``venue`` being ``buy->sell`` and each leg naming its venue.
    """
    from arbitrage.bus import Bus
    from arbitrage.clock import Clock
    from arbitrage.events import MarketsLoaded, Opportunity
    from arbitrage.plugin import Context
    from arbitrage.strategies.cross_exchange import CrossExchangeStrategy

    bus, store = Bus(), BookStore()
    bus.subscribe(BookUpdate, store.update, name="books")  # first, as the engine does
    strategy = CrossExchangeStrategy()
    strategy.setup(Context(bus=bus, settings=settings, clock=Clock(), run_id="scan", books=store,
                           liquidity=store))
    for venue, venue_markets in markets.items():
        if fee_override is not None:
            venue_markets = [msgspec.structs.replace(m, taker_fee=fee_override) for m in venue_markets]
        bus.publish(MarketsLoaded(venue=venue, markets=tuple(venue_markets), staleness_ms=NEVER_STALE_MS,
                                  ts_init=0))
    known = {(venue, market.symbol) for venue, venue_markets in markets.items() for market in venue_markets}
    with bus.collect(Opportunity) as seen:
        for book in books:
            if (book.venue, book.symbol) in known:
                bus.publish(book)
    results = [cross_to_dict(found) for found in seen]
    results.sort(key=lambda item: (-item["profit_bps"], -item["profit"]))
    return results


def cross_to_dict(found: Opportunity) -> dict[str, t.Any]:
    """One cross-exchange opportunity in ``to_dict``'s shape: ``amount`` is the buy's notional in
    quote (a fee charged in quote comes on top), ``received`` that plus the profit net of both
    fees (the sale's proceeds when everything bought is sold: see ``CrossExchangeStrategy``)."""
    buy, sell = found.legs
    base = buy.symbol.split("/")[0]
    return {
        "strategy": CROSS,
        "venue": f"{buy.venue}->{sell.venue}",
        "assets": [found.quote, base, found.quote],
        "start_asset": found.quote,
        "amount": found.notional,
        "received": found.notional + found.profit,
        "profit": found.profit,
        "profit_bps": found.profit_bps,
        "quote": found.quote,
        "legs": [{"venue": leg.venue, "symbol": leg.symbol, "side": leg.side, "price": leg.price,
                  "amount": leg.amount, "expected_price": leg.expected_price, "fee_rate": leg.fee_rate}
                 for leg in found.legs],
    }
