"""Where each event goes in Redis, and which events may never be lost or taken in.

Keys and channels all start with ``redis.prefix`` (``arb:``):

* Pub/Sub ``arb:<Type>`` -- every mirrored event, fire and forget;
* stream ``arb:stream:<Type>`` -- trading events always, other mirrored types listed in
  ``redis.streams``; ``MAXLEN ~ redis.maxlen``;
* stream ``arb:feed:<venue>`` -- a collector's books, market lists and feed status of one venue,
  in publish order; ``MAXLEN ~ redis.feed_maxlen``;
* string ``arb:markets:<venue>`` -- the venue's latest ``MarketsLoaded`` (an engine starting later
  reads it before the books); set ``arb:feeds`` -- the venues that have a feed;
* sorted set ``arb:done:<group>`` -- entries a consumer group has handled (``bridge.consumer``).
"""

from __future__ import annotations

import typing as t

from arbitrage.events import (
    Alert,
    ArbResult,
    ArbStateChanged,
    BalanceUpdate,
    BookUpdate,
    Event,
    FeedStatus,
    Fill,
    Heartbeat,
    MarketsLoaded,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
    PositionUpdate,
    TradingHalted,
    TradingResumed,
)

__all__ = ["FEED_TYPES", "LOSSY", "TRADING", "Names"]

TRADING: frozenset[type[Event]] = frozenset({
    OrderSubmitted, OrderUpdate, Fill, ArbResult, ArbStateChanged, PositionUpdate, BalanceUpdate, Alert,
    TradingHalted, TradingResumed,
})
"""Events that record what trading did: always written to a stream, and never dropped while
Redis is slow or down unless ``redis.trading_buffer`` overflows."""
LOSSY: frozenset[type[Event]] = frozenset({BookUpdate, Opportunity, OpportunityRejected, Heartbeat})
"""Market data and other events a newer one supersedes: dropped oldest first while Redis is slow
or down (``redis.market_buffer``). Every other event (market lists, feed status) waits like a
trading event."""
FEED_TYPES: tuple[type[Event], ...] = (MarketsLoaded, BookUpdate, FeedStatus)
"""What a collector writes to its venues' feed streams."""


class Names:
    """The keys and channels under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.feeds = f"{prefix}feeds"
        """Set of the venues that have a feed stream."""

    def channel(self, event_type: str) -> str:
        return f"{self.prefix}{event_type}"

    def stream(self, event_type: str) -> str:
        return f"{self.prefix}stream:{event_type}"

    def feed(self, venue: str) -> str:
        return f"{self.prefix}feed:{venue}"

    def markets(self, venue: str) -> str:
        return f"{self.prefix}markets:{venue}"

    def done(self, group: str) -> str:
        return f"{self.prefix}done:{group}"

    def venue_of(self, feed_key: str | bytes) -> str:
        """The venue of a feed stream key."""
        key = feed_key.decode() if isinstance(feed_key, bytes) else feed_key
        return key[len(self.prefix) + len("feed:"):]

    def resolve_stream(self, name: str) -> str:
        """``arb redis tail --stream NAME``: an event type, ``feed:VENUE``, or a full key as given."""
        if name.startswith(self.prefix):
            return name
        if name.startswith("feed:"):
            return f"{self.prefix}{name}"
        return self.stream(name)


def type_names(types: t.Iterable[type[Event]]) -> list[str]:
    return sorted(tp.__name__ for tp in types)
