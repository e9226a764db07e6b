"""One fault-injection run: the whole engine (ccxt source, ``cross_exchange``, the live trader,
storage) in this loop against a Binance and a Kraken emulator in the same loop, the real ccxt and
ccxt.pro between them.

``trade(tmp_path, scenario)`` plants the books and balances (no arbitrage yet), starts the engine
with ``--live`` settings, waits until both live venues are open and both books arrived, runs
``scenario(desk)`` (which injects faults and plants the dislocation through ``desk``), stops the
engine cleanly and returns the ``Outcome``: the emulators' ledgers, every event of interest the run
published and the SQLite file it wrote. ``assert_end_state`` holds that outcome to the same rules
in every scenario; ``FIGURES`` counts what the suite saw (``tests/conftest.py`` prints and writes it).
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import dataclasses
import sqlite3
import typing as t
from collections import Counter
from decimal import Decimal
from pathlib import Path

import msgspec
from loguru import logger

from arbitrage.engine import Engine
from arbitrage.events import Alert, ArbResult, BalanceUpdate, FeedStatus, OpportunityRejected, OrderUpdate
from arbitrage.settings import Settings
from tests.emulator.core import EmulatedExchange, Order, RequestRecord, Trade
from tests.faults.figures import FIGURES
from tests.trading.live_helpers import FAST, Live, emulated

B, K = "binance", "kraken"
SYMBOL = "BTC/USDT"
START = {B: {"USDT": Decimal("1000"), "BTC": Decimal("0")}, K: {"USDT": Decimal("0"), "BTC": Decimal("1")}}
"""Binance holds quote to buy with, Kraken base to sell."""
QUIET = {B: ([("99.0", "5")], [("112.0", "5")]), K: ([("98.0", "5")], [("111.0", "5")])}
"""Books that do not cross: Binance asks 112, Kraken bids 98."""
DISLOCATED = {B: ([("99.0", "5")], [("100.0", "0.5"), ("112.0", "5")]),
              K: ([("110.0", "0.5"), ("98.0", "5")], [("111.0", "5")])}
"""Binance asks 100 for 0.5 BTC that Kraken bids 110 for: one arbitrage of 0.5 BTC, then none."""
ORDER_ENDPOINT = {B: "POST /api/v3/order", K: "POST /0/private/AddOrder"}
CLIENT_ID_PARAM = {B: "newClientOrderId", K: "cl_ord_id"}
MIN_COST = Decimal("5")
"""The larger of the two BTC/USDT minimum costs (Binance's 5 USDT notional): less is dust."""
TOP_PRICE = Decimal("112")
"""The highest price planted: a residual is valued at it to compare with ``MIN_COST``."""
VENUE_STATUS = {"closed": "filled", "canceled": "canceled", "expired": "canceled"}



@dataclasses.dataclass
class Desk:
    """A running scenario: the two emulators, the engine and what it published so far."""

    binance: Live
    kraken: Live
    engine: Engine
    seen: list[t.Any]

    def live(self, venue: str) -> Live:
        return self.binance if venue == B else self.kraken

    def plant(self, books: c.Mapping[str, tuple[t.Any, t.Any]], *venues: str) -> None:
        """Set the venues' books (default: both, Kraken first so the cross appears whole)."""
        for venue in venues or (K, B):
            bids, asks = books[venue]
            self.live(venue).exchange.set_book(SYMBOL, bids, asks)

    def dislocate(self) -> None:
        self.plant(DISLOCATED)

    def events(self, kind: type[T]) -> list[T]:
        return [e for e in self.seen if isinstance(e, kind)]

    def results(self) -> list[ArbResult]:
        return self.events(ArbResult)

    def statuses(self, venue: str, symbol: str = "") -> list[str]:
        """The venue feed's ``FeedStatus`` states in order: venue-wide ones, or those of ``symbol``
        (``stale`` and ``connected`` again)."""
        return [f.status for f in self.events(FeedStatus) if f.venue == venue and f.symbol == symbol]

    async def until(self, condition: c.Callable[[], t.Any], what: str, timeout_s: float = 15.0) -> None:
        """Wait for ``condition`` (a generous backstop, never a timing assertion)."""
        for _ in range(int(timeout_s / 0.01)):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    async def arbs(self, n: int = 1) -> list[ArbResult]:
        """Wait until ``n`` arbitrages finished (a result is published after the venues' balances
        were read again) and their tasks ended."""
        await self.until(lambda: len(self.results()) >= n, f"{n} arbitrage result(s)")
        await self.engine.plugin("trader").executor.join(10.0)  # type: ignore[attr-defined]
        return self.results()

    async def quiet(self, seconds: float) -> None:
        """Let the run go on with nothing planted (to show that it does nothing)."""
        await asyncio.sleep(seconds)


T = t.TypeVar("T")


@dataclasses.dataclass
class Ledger:
    """What an emulator in another process booked during one run: its orders, trades and requests
    from ``GET /_emulator/state``, less those of the state ``before`` the run."""

    orders: dict[str, Order]
    trades: list[Trade]
    requests: list[RequestRecord]

    @classmethod
    def between(cls, before: c.Mapping[str, t.Any], after: c.Mapping[str, t.Any]) -> Ledger:
        old = {o["id"] for o in before["orders"]}
        orders = {o["id"]: _order(o) for o in after["orders"] if o["id"] not in old}
        return cls(orders, [tr for o in orders.values() for tr in o.trades],
                   [RequestRecord(**r) for r in after["requests"][len(before["requests"]):]])

    def request_log(self) -> str:
        return "\n".join(f"{r.status or '---'} {r.method} {r.path} {r.params}" for r in self.requests)


def _order(data: c.Mapping[str, t.Any]) -> Order:
    numbers = {"amount", "price", "filled", "cost", "fee", "reserved"}
    fields = {k: Decimal(v) if k in numbers and v is not None else v for k, v in data.items()}
    fields["trades"] = [Trade(**{k: Decimal(v) if k in ("price", "amount", "cost", "fee") else v
                                 for k, v in tr.items()}) for tr in data["trades"]]
    return Order(**fields)


@dataclasses.dataclass
class Outcome:
    """What one scenario left: ledgers, events, database rows."""

    binance: EmulatedExchange | Ledger
    kraken: EmulatedExchange | Ledger
    seen: list[t.Any]
    db: Path
    summary: dict[str, t.Any]

    def exchange(self, venue: str) -> EmulatedExchange | Ledger:
        return self.binance if venue == B else self.kraken

    def rows(self, sql: str, *args: t.Any) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def results(self) -> list[ArbResult]:
        return [e for e in self.seen if isinstance(e, ArbResult)]

    def alerts(self, level: str = "critical") -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM alerts WHERE level = ? ORDER BY id", level)

    def orders(self, venue: str) -> list[Order]:
        return list(self.exchange(venue).orders.values())

    def sent(self, venue: str) -> list[str]:
        """Client order ids of every order request that reached the venue, answered or not."""
        exchange = self.exchange(venue)
        path = ORDER_ENDPOINT[venue].split(" ", 1)[1]
        return [r.params.get(CLIENT_ID_PARAM[venue], "") for r in exchange.requests
                if r.method == "POST" and r.path == path]

    def requests(self, venue: str, endpoint: str) -> list[t.Any]:
        return [r for r in self.exchange(venue).requests if r.endpoint == endpoint]

    def residual(self) -> Decimal:
        """Net BTC the run's fills moved over both accounts (fees in BTC included), from the
        venues' own trades: the exposure the run's orders left."""
        net = Decimal(0)
        for venue in (B, K):
            for trade in self.exchange(venue).trades:
                net += trade.amount if trade.side == "buy" else -trade.amount
                net -= trade.fee if trade.fee_currency == "BTC" else 0
        return net


def settings(tmp_path: Path, urls: c.Mapping[str, str], **sections: c.Mapping[str, t.Any]) -> Settings:
    """``arb run --source ccxt --live --yes`` on both emulators, storage in ``tmp_path/arb.db``;
    ``sections`` override fields of a section (``ccxt={"staleness_ms": 500}``)."""
    base = Settings()
    wanted: dict[str, dict[str, t.Any]] = {
        "run": {"source": "ccxt", "strategy": "cross_exchange", "live": True,
                "plugins": ["trader", "storage"]},
        "live": {f.name: getattr(FAST, f.name) for f in msgspec.structs.fields(FAST)},
        "trading": {"hedge_max_loss_bps": 10_000.0},
        "storage": {"path": str(tmp_path / "arb.db")},
        "log": {"file": ""},
        "ccxt": {"exchanges": sorted(urls), "symbols": [SYMBOL], "urls": dict(urls),
                 "enable_rate_limit": False, "markets_cache": "", "rate_limits": dict.fromkeys(urls, 1000.0),
                 "timeout_ms": 1000.0,
                 "backoff_initial_s": 0.05, "backoff_max_s": 0.5},
    }
    for name, fields in sections.items():
        wanted.setdefault(name, {}).update(fields)
    return msgspec.structs.replace(base, **{name: msgspec.structs.replace(getattr(base, name), **fields)
                                            for name, fields in wanted.items()})


Scenario = c.Callable[[Desk], c.Awaitable[None]]
WATCHED = (ArbResult, OrderUpdate, Alert, FeedStatus, OpportunityRejected, BalanceUpdate)


def trade(tmp_path: Path, scenario: Scenario, **sections: c.Mapping[str, t.Any]) -> Outcome:
    """Run ``scenario`` against a fresh engine and emulator pair (module doc)."""
    return asyncio.run(_trade(tmp_path, scenario, sections))


async def _trade(tmp_path: Path, scenario: Scenario,
                 sections: c.Mapping[str, c.Mapping[str, t.Any]]) -> Outcome:
    async with emulated(B) as binance, emulated(K) as kraken:
        for live in (binance, kraken):
            for asset, amount in START[live.name].items():
                live.exchange.set_balance(asset, amount)
            live.exchange.set_book(SYMBOL, *QUIET[live.name])
        engine = Engine(settings(tmp_path, {B: binance.base_url, K: kraken.base_url}, **sections),
                        run_id="faults")
        seen: list[t.Any] = []
        for kind in WATCHED:
            engine.bus.subscribe(kind, seen.append, name="faults")
        desk = Desk(binance, kraken, engine, seen)
        running = asyncio.get_running_loop().create_task(engine.run(duration=60.0))
        try:
            trader = engine.plugin("trader")
            def ready() -> bool:
                venues = set(getattr(trader, "venues", ()))
                return venues == {B, K} and all(engine.books.get(v, SYMBOL) for v in venues)

            await desk.until(lambda: running.done() or ready(), "both live venues open and both books in")
            if running.done():
                running.result()  # the engine failed to start: say why
            await scenario(desk)
        finally:
            engine.ctx.request_stop("scenario done")
            summary = await running
        outcome = Outcome(binance.exchange, kraken.exchange, seen, tmp_path / "arb.db", summary)
    try:
        assert not summary["handler_errors"], summary
        return outcome
    except BaseException as error:
        error.add_note("binance requests:\n" + binance.exchange.request_log()[-4000:])
        error.add_note("kraken requests:\n" + kraken.exchange.request_log()[-4000:])
        raise


def assert_end_state(outcome: Outcome, *, open_position: bool = False) -> None:
    """The rules every scenario ends by (docs/reliability.md, "Fault-injection suite"):

    1. no client order id reached a venue twice (its request log), nor does a venue hold two
       orders with one id;
    2. the journal equals the venues: every order a venue holds is in the ``orders`` table with the
       venue's id, side, fill and final state, every stored order that reached no venue is
       ``rejected`` with nothing filled, and the ``fills`` table holds exactly the venues' trades
       (in process, also every ``ArbResult`` and ``Alert`` the run published);
    3. the residual BTC over both accounts is dust (below the market minimum), or, with
       ``open_position``, it is not and a critical alert names the asset and its amount.
    """
    FIGURES["scenarios"] += 1
    stored = {r["client_order_id"]: r for r in outcome.rows("SELECT * FROM orders")}
    at_venues: dict[str, tuple[str, Order]] = {}
    for venue in (B, K):
        sent = Counter(outcome.sent(venue))
        held = Counter(o.client_order_id for o in outcome.orders(venue))
        FIGURES["orders placed"] += len(outcome.orders(venue))
        FIGURES["duplicates"] += sum(n - 1 for n in sent.values()) + sum(n - 1 for n in held.values())
        assert all(n == 1 for n in sent.values()), f"{venue}: a client order id sent twice: {sent}"
        assert all(n == 1 for n in held.values()), f"{venue}: two orders with one client id: {held}"
        at_venues.update({o.client_order_id: (venue, o) for o in outcome.orders(venue)})
    lost = [cid for cid in at_venues if cid not in stored]
    lost += [cid for cid, r in stored.items()
             if cid not in at_venues and (r["status"] != "rejected" or r["filled"])]
    FIGURES["data lost"] += len(lost)
    assert not lost, f"orders the journal and the venues disagree on: {lost}"
    for cid, (venue, order) in at_venues.items():
        row = stored[cid]
        partly = order.status != "closed" and order.filled
        status = "partially_filled" if partly else VENUE_STATUS[order.status]
        assert (row["venue"], row["side"], row["venue_order_id"], row["status"]) == (
            venue, order.side, order.id, status), (dict(row), order)
        assert Decimal(str(row["filled"])) == order.filled, (dict(row), order)
    if outcome.seen:  # in process: every result and alert the run published is stored
        published = sorted(r.opportunity_id for r in outcome.results())
        stored_results = sorted(r["opportunity_id"] for r in outcome.rows("SELECT * FROM arb_results"))
        alerts = [(a.key, a.level, int(a.recovered)) for a in outcome.seen if isinstance(a, Alert)]
        stored_alerts = [(a["key"], a["level"], a["recovered"]) for a in outcome.rows("SELECT * FROM alerts")]
        FIGURES["data lost"] += len(set(published) - set(stored_results))
        FIGURES["data lost"] += len(set(alerts) - set(stored_alerts))
        assert (stored_results, sorted(stored_alerts)) == (published, sorted(alerts))
    fills = sorted((r["venue"], r["client_order_id"], Decimal(str(r["price"])), Decimal(str(r["amount"])),
                    Decimal(str(r["fee"])), r["fee_currency"]) for r in outcome.rows("SELECT * FROM fills"))
    trades = sorted((venue, order.client_order_id, tr.price, tr.amount, tr.fee, tr.fee_currency)
                    for venue, order in at_venues.values() for tr in order.trades)
    FIGURES["data lost"] += len(set(trades) - set(fills))
    assert fills == trades
    residual = outcome.residual()
    dust = abs(residual) * TOP_PRICE < MIN_COST
    if open_position:
        assert not dust, f"expected an open position, the residual is {residual} BTC"
        amount = f"{abs(residual):.10g}"
        named = [a for a in outcome.alerts() if "BTC" in a["message"] and amount in a["message"]]
        assert named, [dict(a) for a in outcome.alerts()]
        FIGURES["open positions alerted"] += 1
    else:
        if not dust:
            FIGURES["residuals"] += 1
        assert dust, f"{residual} BTC left open"
    logger.info("fault scenario end state: {} orders, residual {} BTC", len(at_venues), residual)
