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
from msgspec import UNSET, UnsetType

Side = Literal["buy", "sell"]
FeeSide = Literal["quote", "base", "get", "give"]
"""Where a market's taker fee is taken from (``Market.fee_side``)."""
Level = tuple[float, float]
"""One order-book level: (price, amount in base units)."""
Levels = Sequence[Level]
"""One side of a book, best level first: a tuple of levels where code builds a book, a
``RawLevels`` (``arbitrage.readers.levels``: a registered ``Sequence`` parsed past the best level on
demand) where a replay read it from a recording. Encoded as an array of ``[price, amount]`` either
way; msgspec decodes it as a list of tuples."""


class Origin(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Where an event that came in from another process was made (set by the Redis bridge).

    An event made in this process has none (``UNSET``, never encoded), so recordings, results and
    fingerprints of a single process are byte for byte what they were before the bridge existed.
    """

    node: str
    """The publishing process's ``redis.node`` (a host name by default)."""
    run_id: str
    """Its run id: a process never takes back its own events."""
    seq: int
    """Its sequence number of the entry (per run, increasing): ``run_id:seq`` identifies it."""
    ts_init: int
    """The event's ``ts_init`` there, on that machine's clock; the received event's own ``ts_init``
    is when this process got it, so ``ts_init - origin.ts_init`` is the collector-to-engine lag
    (plus the clocks' skew)."""


class Event(msgspec.Struct, frozen=True, tag=True, gc=False, kw_only=True):
    """Base of every bus event; the class name is the tag in encoded form."""

    origin: Origin | UnsetType = UNSET
    """Set only on events received from another process (``Origin``); omitted from the encoding
    while unset."""


def fee_factors(side: Side, fee: float, in_base: bool) -> tuple[float, float]:
    """``(quote, base)`` multipliers of a fill on ``side`` with taker fee ``fee`` taken in the base
    (``in_base``) or the quote: see ``Market.fee_factors``."""
    if in_base:
        return 1.0, (1.0 - fee if side == "buy" else 1.0 + fee)
    return (1.0 + fee if side == "buy" else 1.0 - fee), 1.0


class Market(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Trading rules of one market on one venue, normalised from ccxt-style market entries."""

    symbol: str
    base: str
    quote: str
    taker_fee: float
    """Fraction charged on a taker fill (0.001 = 0.1 %): of the notional, or of the amount where
    the fee is taken in base (``fee_side``)."""
    amount_step: float = 0.0
    """Amount precision as a step size (0 = no rounding)."""
    price_step: float = 0.0
    min_amount: float = 0.0
    min_cost: float = 0.0
    """Minimum notional in quote currency."""
    fee_side: FeeSide = "quote"
    """Which currency the taker fee is taken from, as ccxt's ``feeSide``: ``quote`` or ``base``
    always; ``get`` what the order receives (a buy pays in base, a sell in quote: Binance);
    ``give`` what it spends (a buy pays in quote, a sell in base). A fee in quote is
    ``notional * taker_fee``, one in base ``amount * taker_fee`` (ccxt's ``calculate_fee``)."""

    def fee_in_base(self, side: Side) -> bool:
        """Whether an order on ``side`` pays its fee in the base currency."""
        fee_side = self.fee_side
        return fee_side == "base" or fee_side == ("get" if side == "buy" else "give")

    def fee_currency(self, side: Side) -> str:
        """The currency an order on ``side`` pays its fee in."""
        return self.base if self.fee_in_base(side) else self.quote

    def fee_factors(self, side: Side) -> tuple[float, float]:
        """``(quote, base)`` multipliers of a fill on ``side``, fee included: a buy pays
        ``notional * quote`` and receives ``amount * base``; a sell gives ``amount * base`` and
        receives ``notional * quote``. The fee sits in one of them, the other is 1: a buy is
        ``(1 + fee, 1)`` with the fee in quote, ``(1, 1 - fee)`` in base; a sell ``(1 - fee, 1)``
        or ``(1, 1 + fee)``."""
        return fee_factors(side, self.taker_fee, self.fee_in_base(side))

    def reserve(self, side: Side, amount: float, price: float) -> float:
        """What a venue holds back for a limit order of ``amount`` base at ``price``, in the asset
        the order spends (quote for a buy, base for a sell): the whole amount at the limit, plus
        the fee where it is taken from that asset."""
        quote, base = self.fee_factors(side)
        return amount * price * quote if side == "buy" else amount * base


class MarketsLoaded(Event, frozen=True, kw_only=True):
    """Represents the market list of a venue becoming known (published by sources before books)."""

    venue: str
    markets: tuple[Market, ...]
    staleness_ms: float
    """A book older than this (by its ``ts_event``) must not be traded on."""
    ts_init: int


class BookUpdate(Event, frozen=True, kw_only=True, omit_defaults=True):
    """Represents a full order-book snapshot of one market on one venue, best levels first."""

    venue: str
    symbol: str
    bids: Levels
    asks: Levels
    ts_event: int
    ts_init: int
    seq: int = 0
    """The venue's sequence number of this state (Binance's update id, ccxt's ``nonce``); 0 where
    it gives none. Left out of the encoded form when 0, so recordings keep their line layout."""


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
    label: str = ""
    """The readable name ``client_order_id`` derives from: ``{opportunity id}-L{i}``, ``-H{n}``..."""
    ts_init: int


class OrderUpdate(Event, frozen=True, kw_only=True):
    """Represents the final (or intermediate) state of an order as reported by its venue."""

    client_order_id: str
    opportunity_id: str
    venue: str
    symbol: str
    side: Side
    status: Literal["open", "filled", "partially_filled", "canceled", "rejected", "unknown", "lost"]
    """``unknown``: sent, fate not learnt yet (a lost answer): a later update gives the venue's word.
    ``lost``: a paper order of a run that was killed (its paper venue ended with the process)."""
    amount: float
    filled: float
    average_price: float
    fee: float
    """Fee paid, in ``fee_currency``."""
    fee_currency: str = ""
    """The currency the venue charged the fee in (``Market.fee_currency``; empty: the quote)."""
    reason: str = ""
    venue_order_id: str = ""
    run_id: str = ""
    """The run that submitted the order when it is not this one (start-up reconciliation brings an
    earlier run's journal row up to date); empty: this run."""
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
    run_id: str = ""
    """The run that submitted the order when it is not this one (``OrderUpdate.run_id``)."""
    trade_id: str = ""
    """The venue's id of this execution ('' when it gives none): ``VenueFill.trade_id``."""
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
    """In the market's quote currency, a fee the venue took in base valued at ``average_price``
    (what that base cost, as ``ArbResult.fees`` counts it); a fee in a third currency as charged.
    The order's ``OrderUpdate`` and ``Fill`` events carry the fee as charged, with its currency."""
    status: str
    purpose: str = "leg"
    label: str = ""
    """The readable name the client order id derives from (``{opportunity id}-L{i}``, ``-H{n}``...)."""


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
    """Every order's fee in ``quote``: one taken in the market's base valued at the order's average
    price, one in another currency at the venue's mid (``LegResult.fee``)."""
    slippage: float
    """``expected_profit - net_profit``."""
    residual: dict[str, float] = {}
    """Unhedged exposure left per asset (0 when the executor closed it)."""
    unrealized_profit: float = 0.0
    """Mark-to-market profit of ``positions`` when the arbitrage finished, in ``quote``."""
    positions: tuple[Position, ...] = ()
    """The residual per venue holding it, with its cost and mark (sums to ``residual`` per asset)."""
    run_id: str = ""
    """The run the arbitrage belongs to when it is not this one (``ArbStateChanged.run_id``)."""
    ts_init: int

    @property
    def net_profit(self) -> float:
        """``realized_profit + unrealized_profit``."""
        return self.realized_profit + self.unrealized_profit


ArbState = Literal["planned", "submitted", "filled", "partially_filled", "failed", "unknown", "hedging",
                   "done", "needs_attention"]
"""Where an arbitrage is in its life (``trading.arbstate`` holds the allowed transitions):
``planned`` admitted, nothing sent; ``submitted`` legs handed to venues; ``filled`` every leg sent so
far filled fully, ``partially_filled`` some filled (or part of one), ``failed`` none filled anything;
``unknown`` an order's fate is being asked about; ``hedging`` closing what the legs left open;
``done`` finished with nothing open beyond dust (final); ``needs_attention`` finished with exposure
or an order of unknown fate left open: a critical ``Alert`` names it (final)."""


class ArbStateChanged(Event, frozen=True, kw_only=True):
    """Represents an arbitrage moving to another state (published by the executor at each transition).

    The newest one per ``opportunity_id`` is the arbitrage's current state; one whose newest state is
    not ``done``/``needs_attention`` was still running when the process stopped.
    """

    opportunity_id: str
    state: ArbState
    reason: str = ""
    """Why, in words: what the venues answered, what is left open (asset, amount, mark)."""
    run_id: str = ""
    """The run the arbitrage belongs to when it is not this one (start-up reconciliation finishing
    an earlier run's arbitrage); empty: this run."""
    ts_init: int


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
    ``storage`` (the database cannot be written: no trading without a journal; storage publishes
    ``TradingResumed`` once it writes again)."""
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
    | ArbStateChanged
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
