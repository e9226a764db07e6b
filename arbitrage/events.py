"""The event vocabulary: every message that crosses the bus.

Events are frozen msgspec Structs in one tagged union (`AnyEvent`), so the same objects encode to
JSON or msgpack for recordings, the database and Redis. Timestamps are integer nanoseconds since
the UNIX epoch: ``ts_event`` is when the source says it happened, ``ts_init`` is when our clock saw
or made it. Prices and amounts are floats (Decimal is too slow for depth walks); exchange
precision is applied when an order is built. Never mutate an event: use
``msgspec.structs.replace``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

Side = Literal["buy", "sell"]
Level = tuple[float, float]
"""One order-book level: (price, amount in base units)."""
Levels = Sequence[Level]
"""One side of a book, best level first: a tuple of levels where code builds a book, a
``RawLevels`` (``arbitrage.readers.levels``: a registered ``Sequence`` parsed past the best level on
demand) where a replay read it from a recording. Encoded as an array of ``[price, amount]`` either
way; msgspec decodes it as a list of tuples."""


class Event(msgspec.Struct, frozen=True, tag=True, gc=False, kw_only=True):
    """Base of every bus event; the class name is the tag in encoded form."""


class Market(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Trading rules of one market on one venue, normalised from ccxt-style market entries."""

    symbol: str
    base: str
    quote: str
    taker_fee: float
    """Fraction of notional charged on a taker fill (0.001 = 0.1 %)."""
    amount_step: float = 0.0
    """Amount precision as a step size (0 = no rounding)."""
    price_step: float = 0.0
    min_amount: float = 0.0
    min_cost: float = 0.0
    """Minimum notional in quote currency."""


class MarketsLoaded(Event, frozen=True, kw_only=True):
    """Represents the market list of a venue becoming known (published by sources before books)."""

    venue: str
    markets: tuple[Market, ...]
    staleness_ms: float
    """A book older than this (by its ``ts_event``) must not be traded on."""
    ts_init: int


class BookUpdate(Event, frozen=True, kw_only=True):
    """Represents a full order-book snapshot of one market on one venue, best levels first."""

    venue: str
    symbol: str
    bids: Levels
    asks: Levels
    ts_event: int
    ts_init: int


class FeedStatus(Event, frozen=True, kw_only=True):
    """Represents a change of a feed's state (connected, reconnecting, stale, stopped, error)."""

    venue: str
    status: Literal["connected", "reconnecting", "stale", "stopped", "error"]
    symbol: str = ""
    detail: str = ""
    ts_init: int


class BalanceUpdate(Event, frozen=True, kw_only=True):
    """Represents the free balances of a venue after a change (asset -> amount)."""

    venue: str
    balances: dict[str, float]
    ts_init: int


class Leg(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One order of an opportunity: an IOC limit order to send."""

    venue: str
    symbol: str
    side: Side
    amount: float
    """Base amount, already rounded to the market's precision."""
    price: float
    """Limit price: the last book level the sizing walk used (no worse)."""
    expected_price: float
    """Volume-weighted price the walk expects to get."""
    fee_rate: float


class Opportunity(Event, frozen=True, kw_only=True):
    """Represents a detected arbitrage that pays at least ``min_profit_bps`` after taker fees."""

    id: str
    strategy: str
    legs: tuple[Leg, ...]
    profit: float
    """Expected profit net of fees, in ``quote`` currency."""
    profit_bps: float
    """Expected profit relative to the notional spent, in basis points."""
    quote: str
    notional: float
    book_ts: tuple[int, ...]
    """``ts_event`` of each book the detection used, in leg order."""
    ts_event: int
    """Newest ``ts_event`` among the books used."""
    ts_init: int
    """Detection time."""


class OpportunityRejected(Event, frozen=True, kw_only=True):
    """Represents the executor declining an opportunity (risk limit, balance, halted, busy)."""

    opportunity_id: str
    reason: str
    ts_init: int


class OrderSubmitted(Event, frozen=True, kw_only=True):
    """Represents an IOC limit order handed to a venue (written to storage before it is sent)."""

    client_order_id: str
    opportunity_id: str
    venue: str
    symbol: str
    side: Side
    amount: float
    price: float
    purpose: Literal["leg", "hedge", "unwind"] = "leg"
    ts_init: int


class OrderUpdate(Event, frozen=True, kw_only=True):
    """Represents the final (or intermediate) state of an order as reported by its venue."""

    client_order_id: str
    opportunity_id: str
    venue: str
    symbol: str
    side: Side
    status: Literal["open", "filled", "partially_filled", "canceled", "rejected"]
    amount: float
    filled: float
    average_price: float
    fee: float
    """Fee paid, in the market's quote currency."""
    reason: str = ""
    venue_order_id: str = ""
    ts_event: int
    ts_init: int


class Fill(Event, frozen=True, kw_only=True):
    """Represents one execution of an order against one price level."""

    client_order_id: str
    opportunity_id: str
    venue: str
    symbol: str
    side: Side
    price: float
    amount: float
    fee: float
    fee_currency: str
    ts_event: int
    ts_init: int


class LegResult(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What one leg of an arbitrage actually did."""

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    amount: float
    filled: float
    average_price: float
    fee: float
    status: str
    purpose: str = "leg"


class Position(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """An amount of one asset held open on one venue, with what it cost and its mark.

    ``cost`` and ``mark`` are in ``quote``; ``cost`` is what acquiring it paid (fees included), so
    a short, which received money, has a negative cost. Value and unrealized profit follow:
    ``value = amount * mark``, ``unrealized = value - cost``.
    """

    venue: str
    asset: str
    quote: str
    amount: float
    """Positive: long (held); negative: short (owed back)."""
    cost: float
    mark: float
    """Price of one unit in ``quote``: a long at the venue's best bid, a short at its best ask
    (what closing it would get, before the closing fee)."""
    stale: bool = False
    """No usable book: ``mark`` is the last known price (our last mark or fill there)."""

    @property
    def value(self) -> float:
        return self.amount * self.mark

    @property
    def unrealized(self) -> float:
        return self.amount * self.mark - self.cost


class PositionUpdate(Event, frozen=True, kw_only=True):
    """Represents a change of one open position of the trader's ledger: opened, added to, reduced
    or closed by an arbitrage's residual, or re-marked on a new book (``amount`` 0 once closed).
    """

    position: Position
    realized: float = 0.0
    """Profit realized by reducing this position so far in the run, in ``position.quote``
    (cumulative: the newest update per (venue, asset, quote) holds the whole figure)."""
    ts_init: int


class ArbResult(Event, frozen=True, kw_only=True):
    """Represents a finished arbitrage attempt: fills of every leg, hedges, and its profit.

    Net profit is ``realized_profit + unrealized_profit``: what the quote balances changed by,
    plus the mark-to-market value of what the arbitrage left open.
    """

    opportunity_id: str
    strategy: str
    status: Literal["complete", "partial", "failed"]
    """``complete``: every leg filled fully; ``partial``: filled unequally and hedged;
    ``failed``: nothing filled or exposure could not be removed."""
    legs: tuple[LegResult, ...]
    quote: str
    expected_profit: float
    realized_profit: float
    """Profit of what was closed, net of all fees, hedges included, in ``quote`` currency: the quote
    balance change plus the cost of what stays open (``positions``)."""
    fees: float
    slippage: float
    """``expected_profit - net_profit``."""
    residual: dict[str, float] = {}
    """Unhedged exposure left per asset (0 when the executor closed it)."""
    unrealized_profit: float = 0.0
    """Mark-to-market profit of ``positions`` when the arbitrage finished, in ``quote``."""
    positions: tuple[Position, ...] = ()
    """The residual per venue holding it, with its cost and mark (sums to ``residual`` per asset)."""
    ts_init: int

    @property
    def net_profit(self) -> float:
        """``realized_profit + unrealized_profit``."""
        return self.realized_profit + self.unrealized_profit


class Alert(Event, frozen=True, kw_only=True):
    """Represents a condition the trader should know about; ``key`` is stable across repeats."""

    key: str
    level: Literal["info", "warning", "error", "critical"]
    message: str
    recovered: bool = False
    ts_init: int


class Heartbeat(Event, frozen=True, kw_only=True):
    """Represents a plugin saying it is alive."""

    source: str
    ts_init: int


class TradingHalted(Event, frozen=True, kw_only=True):
    """Represents the kill switch stopping new trading (published by the monitor).

    The trader refuses every new opportunity and cancels its open orders until
    ``TradingResumed``; arbitrages already executing finish, hedges included.
    """

    reason: str
    rule: str
    """What tripped: ``daily_loss``, ``failed_arbs``, ``residual``, ``halt_file`` (``arb halt``), or
    ``storage`` (the database cannot be written: no trading without a journal; lasts the run)."""
    ts_init: int


class TradingResumed(Event, frozen=True, kw_only=True):
    """Represents the kill switch being lifted (``arb resume`` removed the halt file)."""

    reason: str = ""
    ts_init: int


HALT_ALERT_KEY = "kill_switch"
"""``Alert.key`` of the critical alert that accompanies ``TradingHalted`` (recovered on resume)."""
STORAGE_ALERT_KEY = "storage"
"""``Alert.key`` of the critical alert storage raises when it cannot write (recovered once it can)."""


AnyEvent = (
    MarketsLoaded
    | BookUpdate
    | FeedStatus
    | BalanceUpdate
    | Opportunity
    | OpportunityRejected
    | OrderSubmitted
    | OrderUpdate
    | Fill
    | ArbResult
    | PositionUpdate
    | Alert
    | Heartbeat
    | TradingHalted
    | TradingResumed
)
"""The tagged union of every event, for decoding."""

EVENT_TYPES: tuple[type[Event], ...] = AnyEvent.__args__  # type: ignore[attr-defined]



def encode_hook(value: object) -> object:
    """For msgspec encoders: any other sequence (a replay's lazily parsed book side) as an array.

    :raises NotImplementedError: for anything else (msgspec then reports the unsupported type).
    """
    if isinstance(value, Sequence):
        return tuple(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_json_encoder = msgspec.json.Encoder(enc_hook=encode_hook)
_json_decoder = msgspec.json.Decoder(AnyEvent)


def encode_json(event: Event) -> bytes:
    """Encode any event as tagged JSON."""
    return _json_encoder.encode(event)


def decode_json(data: bytes | str) -> Event:
    """Decode tagged JSON back into its event type.

    :raises msgspec.ValidationError: if the payload is not a known event.
    """
    return _json_decoder.decode(data)
