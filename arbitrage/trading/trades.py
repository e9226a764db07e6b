"""An order's executions from the account's trade history, paged where a venue pages it.

It exists because Kraken's ``TradesHistory`` (ccxt ``fetch_my_trades``) lists only the 50 newest
trades after ``start``: after a long downtime, or on a busy account, an order's trades are pages
back, and reading the first page only missed them (then the order was booked as one fill at its
rounded average). On such venues pages are read (``ofs``: the trades listed so far) until the
order's trades add up, a page comes back short (the last), or ``MAX_PAGES`` were read. Elsewhere one read:
Binance's ``myTrades`` lists the oldest first from ``startTime``, where the order's trades are.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

__all__ = ["MAX_PAGES", "PAGED_BY_OFFSET", "order_trades"]

PAGED_BY_OFFSET: dict[str, int] = {"kraken": 50}
"""Exchanges whose trade history pages newest first by a result offset (``ofs``) -> their page size
(a shorter page is the last)."""
MAX_PAGES = 40
"""Pages read at most for one order (2,000 Kraken trades)."""

Trade = dict[str, t.Any]
Fetch = c.Callable[..., c.Awaitable[list[Trade]]]


async def order_trades(exchange_id: str, fetch: Fetch, symbol: str, since_ms: int, order_id: str,
                       complete: c.Callable[[list[Trade]], bool]) -> list[Trade]:
    """The trades of venue order ``order_id`` since ``since_ms``, oldest first.

    :param fetch: ccxt's ``fetch_my_trades`` (``symbol, since, limit, params``), through the
        venue's request budget.
    :param complete: whether the trades found so far are all of the order's (they add up).
    """
    if exchange_id not in PAGED_BY_OFFSET:
        return [tr for tr in await fetch(symbol, since_ms) if str(tr.get("order")) == order_id]
    # every symbol (ccxt filters a symbol's after the venue paged, so a page would look short), from
    # a whole second: Kraken's ``start`` is in seconds, and ccxt's own ``since`` filter then drops none
    since = since_ms // 1000 * 1000
    size = PAGED_BY_OFFSET[exchange_id]
    found: dict[str, Trade] = {}
    for read in range(MAX_PAGES):
        page = await fetch(None, since, None, {"ofs": read * size})
        for tr in page:  # a trade made meanwhile shifts the pages: one seen twice is one trade
            if str(tr.get("order")) == order_id and tr.get("symbol") == symbol:
                found.setdefault(str(tr.get("id")), tr)
        mine = sorted(found.values(), key=lambda tr: tr.get("timestamp") or 0)
        if complete(mine) or len(page) < size:
            return mine
    return mine
