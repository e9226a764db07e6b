"""The settings sections: frozen msgspec Structs that reject unknown keys, with their defaults.

A typo in a settings file is an error naming the key, not a silently ignored line; how the
sections are filled (file, profile, environment, flags) is ``arbitrage.settings.loading``.
"""

from __future__ import annotations

import typing as t

import msgspec
from msgspec import Meta

from arbitrage.errors import SettingsError
from arbitrage.events import FeeSide

Positive = t.Annotated[float, Meta(gt=0)]
NonNegative = t.Annotated[float, Meta(ge=0)]
Fraction = t.Annotated[float, Meta(ge=0, lt=1)]
Count = t.Annotated[int, Meta(ge=1)]


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every settings section."""


class RunSettings(Section, frozen=True, kw_only=True):
    source: str = "sim"
    """Market source plugin: ``sim`` (offline simulated venues), ``ccxt`` (live exchanges), ``replay``."""
    strategy: str = "cross_exchange"
    """Strategy plugin name, see ``arb strategies``."""
    plugins: list[str] = msgspec.field(default_factory=lambda: ["trader", "storage", "monitor", "notifier"])
    """Other plugins to load (trading, storage, ...)."""
    duration: NonNegative = 0.0
    """Seconds to run; 0 = until Ctrl-C."""
    seed: int = 7
    live: bool = False
    """Real orders. Needs ``--live`` on the command line and keys in the environment."""


class SimVenue(Section, frozen=True, kw_only=True):
    name: str
    taker_fee: Fraction = 0.001
    fee_side: FeeSide = "quote"
    """Where the venue takes the fee (``Market.fee_side``): ``get`` as Binance, from what the order
    receives (a buy pays in base); ``quote`` as Kraken."""
    noise_bps: NonNegative = 2.0
    """Venue-specific deviation of its mid from the shared fair price (standard deviation)."""
    spread_bps: NonNegative = 4.0
    """Quoted spread around the venue's mid."""
    staleness_ms: Positive = 2000.0


class SimSettings(Section, frozen=True, kw_only=True):
    venues: list[SimVenue] = msgspec.field(default_factory=lambda: [
        SimVenue(name="alpha", taker_fee=0.001),
        SimVenue(name="beta", taker_fee=0.0008),
        SimVenue(name="gamma", taker_fee=0.0012),
    ])
    symbols: dict[str, Positive] = msgspec.field(
        default_factory=lambda: {"BTC/USDT": 60000.0, "ETH/USDT": 3000.0, "SOL/USDT": 150.0,
                                 "ETH/BTC": 0.05, "SOL/BTC": 0.0025})
    """Symbol -> starting fair price. A cross market (ETH/BTC) whose assets are both priced by
    other symbols is priced from them, so triangles are consistent until a dislocation."""
    levels: Count = 20
    update_hz: Positive = 20.0
    """Book updates per second for each book."""
    volatility_bps: NonNegative = 1.0
    """Random-walk step of the fair price per update (standard deviation)."""
    dislocations_per_minute: NonNegative = 10.0
    """How often one venue's book jumps away from fair price (over all books)."""
    dislocation_bps: Positive = 40.0
    dislocation_ms: Positive = 1500.0
    """How long a dislocation lasts before the venue's price returns."""
    level_amount: Positive = 2.0
    """Typical amount per level, in units of ~10,000 quote (so BTC levels are ~0.33 BTC)."""


class StrategySettings(Section, frozen=True, kw_only=True):
    min_profit_bps: NonNegative = 5.0
    """Emit an opportunity only when net profit after all taker fees reaches this."""
    max_notional: Positive = 1000.0
    """Largest trade per opportunity, in ``risk.currency`` (valued from the books)."""
    cooldown_ms: NonNegative = 250.0
    """Do not emit the same route again within this time unless its books changed."""
    max_legs: t.Literal[3, 4] = 3
    """Triangular: longest cycle of assets (4 multiplies the cycles: small venues only)."""
    start_assets: list[str] = []
    """Triangular: assets a cycle may start and end in, in order of preference ([] = stablecoins,
    then BTC, ETH, BNB)."""
    limit_slippage_bps: NonNegative = 1.0
    """Triangular: how far past the last level walked each leg's limit may reach, so a book that
    moves during the order's latency still fills it; cut so that every leg filling at its limit
    still clears ``min_profit_bps`` after fees."""


class TradingSettings(Section, frozen=True, kw_only=True):
    latency_ms: NonNegative = 25.0
    """Paper: delay between sending an order and it reaching the book."""
    max_open_arbs: Count = 2
    max_notional: Positive = 1000.0
    """Risk limit: largest notional per arbitrage, in ``risk.currency``."""
    max_exposure: dict[str, NonNegative] = {}
    """Asset -> largest absolute residual (unhedged) position, valued in ``risk.currency``, that
    an arbitrage may leave if it fails: one that could breach it is refused."""
    hedge_retries: t.Annotated[int, Meta(ge=0)] = 3
    """Hedge or unwind orders sent per asset after the legs, at most (besides ``hedge_timeout_s``)."""
    hedge_slippage_bps: NonNegative = 50.0
    """How far past the book a hedge or unwind order may reach."""
    hedge_max_loss_bps: NonNegative = 50.0
    """How much a hedge or unwind may lose against the entry price of the position it closes,
    the taker fees of the opening legs and of the closing order included; a book beyond that is
    waited out (up to ``hedge_timeout_s``), never traded into."""
    hedge_timeout_s: NonNegative = 2.0
    """How long (run clock) a hedge or unwind keeps retrying on fresh books; what is still open
    then stays open, with a critical alert."""
    sequential_legs: bool = False
    """Send a cycle's legs one after another, each leg's fill feeding the next (needs only the
    start asset); default: all at once from inventory held on the venue."""


class LiveSettings(Section, frozen=True, kw_only=True):
    """How a live venue (``--live``) learns what became of its orders."""

    lookup_retries: t.Annotated[int, Meta(ge=0)] = 6
    """Lookups by client order id after a submission whose answer was lost, before the venue
    answers ``unknown`` (and the executor halts trading there until it knows)."""
    lookup_backoff_s: Positive = 0.25
    """Wait before the first lookup; doubles after each (with jitter), at most 4 s."""
    order_deadline_s: t.Annotated[float, Meta(ge=2, le=60)] = 5.0
    """An order that reaches the venue later than this after it was sent is refused there, so a
    delayed request cannot execute after we called it not placed: Kraken's AddOrder ``deadline``
    (now + this, RFC3339; Kraken takes 2 to 60 s), Binance's ``recvWindow`` on orders. Exchanges
    without such a parameter rely on ``not_found_after_s`` alone."""
    not_found_after_s: NonNegative = 12.0
    """An order the venue does not have counts as never placed only if it is still missing this
    long after it was sent: a request in flight may still arrive until ``order_deadline_s``, so
    this must be longer (the margin covers clock skew between us and the venue)."""
    unknown_retry_s: Positive = 1.0
    """How long the executor waits before asking again about an order of unknown fate; doubles,
    at most 60 s, until the venue knows."""
    cancel_after_s: NonNegative = 1.0
    """Venues without immediate-or-cancel orders: a limit order is cancelled this long after it
    was placed."""
    balance_refresh_s: Positive = 30.0
    """Balances are read from the venue this often, besides after every arbitrage."""
    on_restart_open_orders: t.Literal["cancel", "adopt"] = "cancel"
    """Start-up reconciliation: an order of ours an earlier process left open on a venue is
    cancelled (then its fills are recorded), or ``adopt``ed: left to the venue and followed until it
    ends; trading waits for it either way."""

    def __post_init__(self) -> None:
        if self.not_found_after_s <= self.order_deadline_s:
            raise SettingsError("live.not_found_after_s", f"must be above live.order_deadline_s "
                                f"({self.order_deadline_s:g} s): an order may still arrive until then")


class RiskSettings(Section, frozen=True, kw_only=True):
    currency: str = "USDT"
    """The currency every risk limit is an amount of (``strategy.max_notional``,
    ``trading.max_notional``, ``trading.max_exposure``); other assets are valued from the books."""


class PaperSettings(Section, frozen=True, kw_only=True):
    balances: dict[str, NonNegative] = msgspec.field(
        default_factory=lambda: {"USDT": 10000.0, "BTC": 0.2, "ETH": 3.0, "SOL": 60.0})
    """Starting balances on every paper venue."""
    venue_balances: dict[str, dict[str, NonNegative]] = {}
    """Per-venue overrides: venue -> asset -> amount."""


class StorageSettings(Section, frozen=True, kw_only=True):
    path: str = "data/arb.db"
    """Where ``arb run`` stores its runs (paper or live); ``arb report`` reads it by default."""
    backtest_path: str = "data/backtest.db"
    """Where ``arb backtest`` stores its runs: a file of their own, so that ``arb report`` after a
    backtest still shows the last paper or live run (``arb report --db data/backtest.db``)."""
    batch_size: Count = 500
    store_books: bool = False
    """Also store every BookUpdate (large); off by default."""


class LogSettings(Section, frozen=True, kw_only=True):
    level: t.Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    file: str = "logs/arb.log"
    """JSON-lines log file ('' = none)."""
    rotation: str = "20 MB"
    retention: Count = 5
    """Rotated files kept."""


class MonitorSettings(Section, frozen=True, kw_only=True):
    check_interval_s: Positive = 0.5
    """How often the rules are evaluated and the halt file is looked at (run clock)."""
    heartbeat_s: Positive = 5.0
    """The monitor publishes a ``Heartbeat`` this often; a plugin that sent heartbeats and then
    stays silent for three times this long raises an alert."""
    feed_stale_s: NonNegative = 0.0
    """A venue with no book for this long is stale; 0 = the venue's own staleness limit."""
    loop_lag_ms: Positive = 100.0
    """Alert when the event loop wakes a timer this late."""
    queue_full: t.Annotated[float, Meta(gt=0, le=1)] = 0.8
    """Alert when a queued subscriber holds this fraction of its ``maxsize``."""
    error_quiet_s: Positive = 60.0
    """A subscriber's error or drop alert clears after this long without new ones."""
    halt_file: str = "data/HALT"
    """``arb halt`` writes it and ``arb resume`` removes it; a tripped rule writes it too, so a
    halt survives a restart. "" = no file (rule halts last until the run ends)."""
    daily_loss_limit: NonNegative = 0.0
    """Net loss in one UTC day, in ``risk.currency`` (every quote valued from the books), that halts
    trading; 0 = off."""
    max_failed_arbs: t.Annotated[int, Meta(ge=0)] = 5
    """Consecutive failed arbitrages that halt trading; 0 = off."""
    max_residual: dict[str, NonNegative] = {}
    """Asset -> absolute unhedged position, over the run, that halts trading."""
    metrics_host: str = "127.0.0.1"
    metrics_port: t.Annotated[int, Meta(ge=0, le=65535)] = 0
    """Serve Prometheus ``/metrics`` and ``/health`` on this port; 0 = off."""


class NotifySettings(Section, frozen=True, kw_only=True):
    urls: list[str] = []
    """Apprise URLs; ``ARB_NOTIFY_URLS`` (comma or space separated) and ``--notify`` add more."""
    config: str = ""
    """An Apprise configuration file (text or YAML) with more URLs; "" = none."""
    alert_level: t.Literal["off", "info", "warning", "error", "critical"] = "warning"
    """Send alerts at or above this level, and their recovery."""
    arbs: t.Literal["off", "each", "batch"] = "batch"
    """Arbitrage results: one message each, or one summary every ``batch_minutes``."""
    batch_minutes: Positive = 15.0
    lifecycle: bool = True
    """Send run started and run stopped."""
    halt: bool = True
    """Send kill-switch halts and resumes."""
    daily_summary: bool = True
    """Send the day's counts and PnL when the UTC day changes."""
    dedupe_s: NonNegative = 600.0
    """A message with the same key (same alert, same text) is not sent again within this time."""
    max_per_minute: Count = 12
    """Throttle over all channels; messages beyond it are dropped and counted in the next one sent."""
    timeout_s: Positive = 10.0
    """Connect and read timeout of one send, per channel."""


class BacktestSettings(Section, frozen=True, kw_only=True):
    data: list[str] = []
    """Recordings the ``replay`` source reads (``arb backtest --data FILE...``)."""
    taker_fee: Fraction = 0.001
    """Taker fee of markets whose data carries none (CSV, Tardis, SQLite books, bare JSON lines)."""
    fee: Fraction | None = None
    """``--fee``: replaces every market's taker fee, recorded ones included; None keeps them."""
    staleness_ms: Positive = 2000.0
    """Staleness limit of venues whose data carries none."""
    record: str = ""
    """``arb run --record FILE``: the ``recorder`` plugin writes every book here ('.zst' = compressed)."""


class CcxtSettings(Section, frozen=True, kw_only=True):
    """``[ccxt]``: the live market source (``--source ccxt``) and what the live venue shares with it."""

    exchanges: list[str] = []
    """ccxt exchange ids to watch (``--exchanges binance,kraken``)."""
    symbols: list[str] = []
    """Unified symbols (``BTC/USDT``); a symbol a venue lacks is reported once and skipped there."""
    urls: dict[str, str] = {}
    """Exchange -> BASE: every URL of that exchange moved under BASE (``--exchange-url NAME=BASE``)."""
    rest: bool = False
    """Poll ``fetch_order_book`` instead of websockets (``--rest``); exchanges with no websocket
    order books are polled anyway."""
    rest_interval_s: Positive = 1.0
    """Time between two REST polls of one symbol."""
    depth: Count = 10
    """Levels a side to ask for, at least; an exchange with fixed depths (Kraken: 10, 25, 100,
    500, 1000) gets the smallest one that is not less (the largest beyond them)."""
    staleness_ms: Positive = 5000.0
    """A book older than this (exchange time to our clock) is not traded; also announced stale."""
    venue_staleness_ms: dict[str, Positive] = {}
    """Exchange -> its own staleness limit, overriding ``staleness_ms``."""
    markets_cache: str = "data/markets"
    """Directory of the on-disk ``load_markets`` cache ('' = no cache)."""
    markets_max_age_s: NonNegative = 3600.0
    """A cached market list older than this is fetched again (0 = always fetch)."""
    timeout_ms: Positive = 10000.0
    """ccxt's request timeout."""
    max_resyncs: Count = 2
    """Simultaneous REST snapshot resyncs (subscriptions that fetch a snapshot) in the process."""
    enable_rate_limit: bool = True
    """ccxt's own request throttle (``enableRateLimit``); tests turn it off."""
    rate_limits: dict[str, Positive] = {}
    """Exchange -> requests per second of our budget shared by data and orders (orders first);
    default: what ccxt's ``rateLimit`` of the exchange allows."""
    backoff_initial_s: Positive = 0.5
    """First wait before reconnecting; doubled on every failure in a row, with jitter."""
    backoff_max_s: Positive = 30.0
    """Longest wait between reconnects (a ``Retry-After`` or ban may ask for longer: honoured)."""

    def staleness_of(self, exchange: str) -> float:
        """The staleness limit of ``exchange``, in milliseconds."""
        return self.venue_staleness_ms.get(exchange, self.staleness_ms)


EventName = t.Literal[
    "MarketsLoaded", "BookUpdate", "FeedStatus", "BalanceUpdate", "Opportunity", "OpportunityRejected",
    "OrderSubmitted", "OrderUpdate", "Fill", "ArbResult", "ArbStateChanged", "PositionUpdate", "Alert",
    "Heartbeat", "TradingHalted", "TradingResumed"]
"""The name of an event type (``arbitrage.events.EVENT_TYPES``; a test keeps the two equal)."""
INBOUND_ALLOWED = ("MarketsLoaded", "BookUpdate", "FeedStatus", "Heartbeat", "Alert")
"""Event types an engine may accept from Redis: market data and notices, never an order, a fill, an
opportunity or anything else that moves money or trading state."""


class RedisSettings(Section, frozen=True, kw_only=True):
    """The Redis bridge (``docs/redis.md``): mirror events out, or split collectors and one engine."""

    url: str = ""
    """``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) or ``unix://path``; "" = no
    bridge. ``arb run --redis URL``. The password is redacted wherever the URL is shown."""
    role: t.Literal["", "collector", "engine"] = ""
    """``collector``: only the market source and the bridge, books to a stream per venue;
    ``engine``: everything but a market source, on books read from Redis; "" = one process
    (the bridge only mirrors). ``arb run --role``."""
    node: str = ""
    """This process's name in the origin of what it writes ("" = the host name)."""
    prefix: str = "arb:"
    """Of every channel and key: Pub/Sub ``<prefix><Type>``, streams ``<prefix>stream:<Type>``."""
    events: list[EventName] = msgspec.field(default_factory=lambda: [
        "Opportunity", "OrderSubmitted", "OrderUpdate", "Fill", "ArbResult", "ArbStateChanged",
        "PositionUpdate", "Alert", "FeedStatus", "TradingHalted", "TradingResumed"])
    """Event types mirrored out."""
    books: bool = False
    """Also mirror every ``BookUpdate`` (Pub/Sub; a stream too if listed in ``streams``)."""
    pubsub: bool = True
    """Publish mirrored events on Pub/Sub (fire and forget, for live viewers)."""
    streams: list[EventName] = msgspec.field(default_factory=lambda: ["Opportunity", "FeedStatus"])
    """Mirrored types also written to a stream; trading events (orders, fills, results, positions,
    balances, alerts, halts) always are."""
    maxlen: Count = 100_000
    """``MAXLEN ~`` of each event stream."""
    feed_maxlen: Count = 10_000
    """``MAXLEN ~`` of each venue's feed stream (collector)."""
    batch_size: Count = 500
    """Events per pipelined write (one to four commands each)."""
    market_buffer: Count = 10_000
    """Market data (books, opportunities, heartbeats) waiting while Redis is slow or down; the
    oldest is dropped first, and counted."""
    trading_buffer: Count = 100_000
    """Every other event waiting while Redis is slow or down; past this the oldest is dropped,
    counted and alerted."""
    inbound: list[EventName] = msgspec.field(default_factory=lambda: ["MarketsLoaded", "BookUpdate",
                                                                        "FeedStatus"])
    """Engine: event types accepted from the collectors' feeds; anything else is rejected and counted."""
    read_count: Count = 1000
    """Engine: entries read per venue at once; a full read means it is behind, and only the newest
    book per symbol of that read is published."""
    block_ms: Count = 100
    """Engine: how long one read waits for new entries."""
    discover_s: Positive = 1.0
    """Engine: how often the list of collector venues is looked at."""
    connect_timeout_s: Positive = 2.0
    """Connecting, and answering one command (a blocked read adds ``block_ms``)."""
    retry_max_s: Positive = 2.0
    """Longest wait between two reconnection attempts (exponential backoff with jitter)."""
    flush_timeout_s: NonNegative = 5.0
    """At stop, how long to keep trying to write what waits (then it is counted as unwritten)."""

    def __post_init__(self) -> None:
        scheme = self.url.partition("://")[0].lower() if "://" in self.url else ""
        if self.url and scheme not in ("redis", "rediss", "unix"):  # not echoed: it may hold a password
            raise SettingsError("redis.url", "expected redis://, rediss:// or unix:// and an address")
        if self.role and not self.url:
            raise SettingsError("redis.role", f"{self.role} needs redis.url (--redis URL)")
        for i, name in enumerate(self.inbound):
            if name not in INBOUND_ALLOWED:
                raise SettingsError(f"redis.inbound[{i}]", f"{name} may never come in from Redis "
                                                           f"(allowed: {', '.join(INBOUND_ALLOWED)})")
        if not self.prefix or any(ch.isspace() for ch in self.prefix):
            raise SettingsError("redis.prefix", f"must be non-empty without spaces, got {self.prefix!r}")


class Settings(Section, frozen=True, kw_only=True):
    run: RunSettings = RunSettings()
    sim: SimSettings = SimSettings()
    strategy: StrategySettings = StrategySettings()
    trading: TradingSettings = TradingSettings()
    risk: RiskSettings = RiskSettings()
    live: LiveSettings = LiveSettings()
    paper: PaperSettings = PaperSettings()
    storage: StorageSettings = StorageSettings()
    log: LogSettings = LogSettings()
    backtest: BacktestSettings = BacktestSettings()
    monitor: MonitorSettings = MonitorSettings()
    notify: NotifySettings = NotifySettings()
    ccxt: CcxtSettings = CcxtSettings()
    redis: RedisSettings = RedisSettings()

    def to_dict(self) -> dict[str, t.Any]:
        """Plain builtins, e.g. to store with a run."""
        return t.cast(dict[str, t.Any], msgspec.to_builtins(self))
