"""What a notification says, and the gate that deduplicates and throttles them.

A ``Message`` has a ``topic`` (what it is about: one alert key, the halt state, one arbitrage)
and a ``key`` (which state of the topic it reports). The ``Gate`` drops a message whose topic's
last *sent* message had the same key less than ``dedupe_s`` ago -- so an alert that fires,
recovers and fires again is sent three times, but the same firing twice is sent once -- and
throttles to ``max_per_minute`` over a sliding minute. Urgent messages (halts, critical alerts)
pass the throttle; nothing passes deduplication. Throttled messages are counted and the count is
appended to the next message that goes out. Time is the run's clock, so tests are deterministic.
"""

from __future__ import annotations

import collections
import collections.abc as c
import typing as t

from arbitrage.events import Alert, ArbResult, PositionUpdate, TradingHalted, TradingResumed

Kind = t.Literal["info", "success", "warning", "failure"]
"""Apprise notification type."""

_KIND_OF_LEVEL: dict[str, Kind] = {"info": "info", "warning": "warning", "error": "failure",
                                   "critical": "failure"}
_S = 1_000_000_000


class Message(t.NamedTuple):
    """One notification, before it is sent to every channel."""

    topic: str
    key: str
    title: str
    body: str
    kind: Kind = "info"
    urgent: bool = False
    """Passes the throttle (halts, critical alerts)."""


def alert_message(alert: Alert) -> Message:
    """An alert firing or recovering."""
    if alert.recovered:
        return Message(f"alert:{alert.key}", "recovered", f"arb recovered: {alert.key}", alert.message,
                       "success")
    return Message(f"alert:{alert.key}", alert.level, f"arb {alert.level.upper()}: {alert.key}",
                   alert.message, _KIND_OF_LEVEL[alert.level], urgent=alert.level == "critical")


def halt_message(event: TradingHalted | TradingResumed) -> Message:
    """The kill switch halting or resuming trading."""
    if isinstance(event, TradingHalted):
        return Message("halt", f"halted:{event.reason}", "arb HALTED: new trading stopped",
                       f"{event.reason} (rule {event.rule}). Open orders are being cancelled. "
                       "Run `arb resume` to trade again.", "failure", urgent=True)
    return Message("halt", "resumed", "arb resumed: trading again", event.reason or "kill switch lifted",
                   "success", urgent=True)


def _money(value: float) -> str:
    return f"{value:+,.6g}"


def arb_message(result: ArbResult) -> Message:
    """One finished arbitrage: its net profit, and the realized and unrealized parts of it."""
    legs = "; ".join(f"{leg.side} {leg.filled:.8g}/{leg.amount:.8g} {leg.symbol}@{leg.venue} {leg.status}"
                     for leg in result.legs)
    residual = {a: v for a, v in result.residual.items() if v}
    body = (f"{result.opportunity_id} ({result.strategy}): net {_money(result.net_profit)} {result.quote} "
            f"(realized {_money(result.realized_profit)}, unrealized {_money(result.unrealized_profit)}), "
            f"expected {_money(result.expected_profit)}, fees {result.fees:.6g}. {legs}")
    if residual:
        body += f". Residual {residual}"
    kind: Kind = {"complete": "success", "partial": "warning"}.get(result.status, "failure")  # type: ignore[assignment]
    return Message(f"arb:{result.opportunity_id}", result.status,
                   f"arb {result.status}: net {_money(result.net_profit)} {result.quote}", body, kind)


def pnl_text(realized: c.Mapping[str, float], unrealized: c.Mapping[str, float]) -> str:
    """``realized +1 USDT; unrealized -0.5 USDT; net +0.5 USDT`` over every quote of either."""
    quotes = sorted(set(realized) | set(unrealized))
    figures = {"realized": {q: realized.get(q, 0.0) for q in quotes},
               "unrealized": {q: unrealized.get(q, 0.0) for q in quotes}}
    figures["net"] = {q: figures["realized"][q] + figures["unrealized"][q] for q in quotes}
    return "; ".join(f"{name} " + ", ".join(f"{_money(v)} {q}" for q, v in values.items())
                     for name, values in figures.items())


_PositionKey = tuple[str, str, str]


class ResultTally:
    """Counts and PnL of a period (a batch, a day), so that consecutive periods add up to the run.

    ``realized``: the period's ``ArbResult.realized_profit`` plus what reducing positions realized
    in it (the change of ``PositionUpdate.realized``); ``unrealized``: how much the open positions'
    value less cost moved in it. Their sum, the net, is for a day the kill switch's daily net per quote.
    """

    def __init__(self, positions: c.Mapping[_PositionKey, tuple[str, float, float]] | None = None) -> None:
        """:param positions: (quote, realized, unrealized) of each position when the period began
            (``next()`` passes them on)."""
        self.count = 0
        self.by_status: collections.Counter[str] = collections.Counter()
        self.fees: dict[str, float] = collections.defaultdict(float)
        self.alerts = 0
        self._arb_pnl: dict[str, float] = collections.defaultdict(float)
        self._start = dict(positions or {})
        self.positions = dict(self._start)
        """(venue, asset, quote) -> (quote, realized, unrealized) of its newest update."""

    def add(self, result: ArbResult) -> None:
        self.count += 1
        self.by_status[result.status] += 1
        self._arb_pnl[result.quote] += result.realized_profit
        self.fees[result.quote] += result.fees

    def add_position(self, update: PositionUpdate) -> None:
        p = update.position
        self.positions[(p.venue, p.asset, p.quote)] = (p.quote, update.realized,
                                                       p.unrealized if p.amount else 0.0)

    def next(self) -> ResultTally:
        """An empty tally for the period that follows this one."""
        return ResultTally(self.positions)

    def _moved(self, field: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, figures in sorted(self.positions.items()):
            before = self._start.get(key)
            moved = figures[field] - (before[field] if before is not None else 0.0)
            if moved:
                out[figures[0]] = out.get(figures[0], 0.0) + moved
        return out

    @property
    def realized(self) -> dict[str, float]:
        """Per quote currency."""
        out = dict(self._arb_pnl)
        for quote, value in self._moved(1).items():
            out[quote] = out.get(quote, 0.0) + value
        return out

    @property
    def unrealized(self) -> dict[str, float]:
        """Per quote currency."""
        return self._moved(2)

    def text(self) -> str:
        """``3 arbitrages (2 complete, 1 partial); realized +1.2 USDT; unrealized -0.2 USDT; net +1 USDT;
        fees 0.3 USDT``."""
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.by_status.items()))
        out = f"{self.count} arbitrage{'s' if self.count != 1 else ''}"
        if statuses:
            out += f" ({statuses})"
        realized, unrealized = self.realized, self.unrealized
        if realized or unrealized:
            out += "; " + pnl_text(realized, unrealized)
        if self.fees:
            out += "; fees " + ", ".join(f"{v:,.6g} {q}" for q, v in sorted(self.fees.items()))
        if self.alerts:
            out += f"; {self.alerts} alert{'s' if self.alerts != 1 else ''}"
        return out


def batch_message(tally: ResultTally, seconds: float, ts_ns: int) -> Message:
    """The arbitrages of the last ``seconds`` (a batch period, or less at the end of a run)."""
    period = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    title = f"arb: {tally.count} arbitrages in the last {period}"
    return Message("arbs:batch", str(ts_ns), title, tally.text())


def daily_message(day: str, tally: ResultTally) -> Message:
    """The summary of one UTC day."""
    return Message("daily", day, f"arb daily summary {day}", tally.text())


class Gate:
    """Deduplication by topic and key, and a sliding-minute throttle, on the run clock."""

    def __init__(self, dedupe_s: float, max_per_minute: int) -> None:
        self.dedupe_ns = int(dedupe_s * _S)
        self.max_per_minute = max_per_minute
        self.duplicates = 0
        """Messages dropped as repeats."""
        self.throttled = 0
        """Messages dropped by the throttle."""
        self._held_back = 0
        self._last: dict[str, tuple[str, int]] = {}
        self._sent: collections.deque[int] = collections.deque()

    def admit(self, message: Message, now_ns: int) -> t.Literal["send", "duplicate", "throttled"]:
        """Decide whether ``message`` goes out now, and count it as sent if so."""
        last = self._last.get(message.topic)
        if last is not None and last[0] == message.key and now_ns - last[1] < self.dedupe_ns:
            self.duplicates += 1
            return "duplicate"
        sent = self._sent
        while sent and now_ns - sent[0] >= 60 * _S:
            sent.popleft()
        if not message.urgent and len(sent) >= self.max_per_minute:
            self.throttled += 1
            self._held_back += 1
            return "throttled"
        sent.append(now_ns)
        self._last[message.topic] = (message.key, now_ns)
        if len(self._last) > 4096:
            self._prune(now_ns)
        return "send"

    def footer(self) -> str:
        """A note on messages throttled since the last one sent (then forgets them), or ''."""
        if not self._held_back:
            return ""
        n, self._held_back = self._held_back, 0
        return f"\n({n} more notification{'s' if n != 1 else ''} held back by the throttle)"

    def _prune(self, now_ns: int) -> None:
        self._last = {k: v for k, v in self._last.items() if now_ns - v[1] < self.dedupe_ns}


def level_passes(level: str, threshold: str, order: c.Mapping[str, int]) -> bool:
    """True if alert ``level`` is at or above ``threshold`` ('off' passes nothing)."""
    return threshold != "off" and order[level] >= order[threshold]
