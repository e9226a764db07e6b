"""Start-up reconciliation: bring the order journal up to date with the venues before trading.

It exists because a process can die between writing an order and learning its fate (the journal
row is committed before the send, ``storage.plugin``), and the next run must neither trade on a
guess nor send anything twice. The trader runs it at start (``Reconciler.load`` with the
journal's ``storage.queries.unfinished_orders`` / ``unfinished_arbitrages``); while it has work
left the ``RiskGate`` refuses every opportunity (rule ``reconciling``, its detail saying what each
venue waits for: ``TraderView.halted``, the log and a critical ``Alert`` keyed
``reconcile:<venue>`` when a venue cannot answer). A journal that exists but cannot be read
(corrupt, locked, an I/O error) holds trading the same way (key ``journal``, ``unreadable``):
what earlier runs left unfinished is then unknown, never "nothing".

Procedure, per venue of the journal's unfinished live orders and arbitrages, once this run has
opened it (a venue this run does not open keeps trading halted, and says so):

1. Our open orders on the venue (``fetch_open_orders`` on the journal's symbols there and the
   run's markets, ours told by ``trading.ids.is_ours``) are cancelled, or with
   ``live.on_restart_open_orders = "adopt"`` left to the venue and followed (read every
   ``live.unknown_retry_s``) until they end; an adopted order is published ``open`` meanwhile.
2. Every unfinished order is looked up by client order id (``LiveVenue.lookup``): its venue's
   final state and fills are published as the usual ``Fill`` and ``OrderUpdate`` events with the
   ``run_id`` of the run that sent it, so storage updates that run's journal row (the fills are
   stored under it too). An order the venue does not have counts as never placed only once the
   venue could no longer accept it: ``live.not_found_after_s`` after the journal's
   ``ts_submitted`` (Binance refuses a request older than its ``recvWindow``); before that, and
   while the lookups fail, it stays unknown and the question is asked again (backing off to 60 s).
   Nothing is ever sent again. The lookups book nothing into the venue's balances (the fills of
   an earlier process's order are in the balances read since); once every order is looked up the
   balances are read again (retried like every read, trading held meanwhile) and published.

A critical ``Alert`` keyed ``reconcile:<venue>`` is raised (once per step that fails) when a read
keeps failing, an adopted order cannot be followed, or the venue's task dies of an error outside
its retries (a done-callback: trading stays held on that venue, the reason says the redacted
error; a restart tries again); it recovers when the venue is done.

Then every unfinished arbitrage (all its orders known now) is finished by the executor
(``Executor.resume``): what its orders left open is hedged or unwound within the loss cap, as
after any arbitrage, once the books of its markets are in (at most ``BOOK_WAIT_S``); what cannot
be closed is an open position with a critical ``Alert`` naming it; its ``ArbResult`` is this run's
(keyed by its opportunity id: the next start finds it finished). Trading starts when all is done.

Paper venues keep no state across processes: an unfinished order of a killed paper run never
reached any venue and cannot be looked up; it is recorded ``lost`` (reason says why). A paper run
leaves live orders to the next live run (a warning names them). Restarting twice creates nothing
twice: the second start finds every journal row final and every arbitrage with a result.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import typing as t
from collections import Counter, defaultdict

import msgspec

from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import Alert, BalanceUpdate, Fill, Leg, Opportunity, OrderUpdate
from arbitrage.plugin import Books
from arbitrage.redact import redact_line
from arbitrage.settings import LiveSettings
from arbitrage.trading.executor import UNKNOWN_RETRY_MAX_S, Executor
from arbitrage.trading.ids import is_ours
from arbitrage.trading.venue import FILL_TOLERANCE, Order, OrderRequest, OrderResult, Venue

__all__ = ["ARBITRAGES", "BOOK_WAIT_S", "JOURNAL", "Reconciler", "request_of", "result_of"]

BOOK_WAIT_S = 10.0
"""How long (run clock) finishing an arbitrage waits for the books of its markets to arrive."""
ARBITRAGES = "arbitrages"
"""The ``RiskGate.reconciling`` key of the step that finishes unfinished arbitrages."""
JOURNAL = "journal"
"""The ``RiskGate.reconciling`` key held when the journal itself cannot be read."""
_POLL_S = 0.1

Row = c.Mapping[str, t.Any]


class _Lookup(t.Protocol):
    """What a venue needs for reconciliation (``LiveVenue``): its markets, open orders, cancels
    and ``lookup``, each request through the venue's budget and ordering."""

    markets: c.Mapping[str, t.Any]

    async def lookup(self, order: OrderRequest, sent_ns: int) -> OrderResult: ...

    async def open_orders(self, symbol: str) -> list[dict[str, t.Any]]: ...

    async def cancel_venue_order(self, venue_order_id: str, symbol: str) -> None: ...


def request_of(row: Row) -> OrderRequest:
    """The order a journal row (``orders``) says was sent."""
    return OrderRequest(client_order_id=row["client_order_id"], opportunity_id=row["opportunity_id"],
                        venue=row["venue"], symbol=row["symbol"], side=row["side"], amount=row["amount"],
                        price=row["price"] or 0.0, purpose=row["purpose"] or "leg", label=row["label"] or "")


def result_of(row: Row) -> OrderResult:
    """The final state a journal row records (notional from its average price)."""
    filled = row["filled"] or 0.0
    average = row["average_price"] or 0.0
    return OrderResult(client_order_id=row["client_order_id"], status=row["status"], amount=row["amount"],
                       filled=filled, notional=filled * average, average_price=average, fee=row["fee"] or 0.0,
                       fee_currency=row["fee_currency"] or row["symbol"].rpartition("/")[2],
                       reason=row["reason"] or "", venue_order_id=row["venue_order_id"] or "")


def opportunity_of(arb: Row) -> Opportunity:
    """The opportunity of an unfinished arbitrage: its stored row, or (never written: batched) one
    rebuilt from its leg orders at their limit prices."""
    if arb.get("legs"):
        return Opportunity(id=arb["opportunity_id"], strategy=arb["strategy"],
                           legs=msgspec.json.decode(arb["legs"], type=tuple[Leg, ...]),
                           profit=arb["profit"], profit_bps=arb["profit_bps"], quote=arb["quote"],
                           notional=arb["notional"],
                           book_ts=msgspec.json.decode(arb["book_ts"], type=tuple[int, ...]),
                           ts_event=arb["ts_event"], ts_init=arb["ts_init"])
    legs = [o for o in arb["orders"] if (o["purpose"] or "leg") == "leg"]
    legs.sort(key=lambda o: o["label"] or "")
    quote = legs[0]["symbol"].rpartition("/")[2] if legs else ""
    return Opportunity(id=arb["opportunity_id"], strategy="unknown", quote=quote, profit=0.0, profit_bps=0.0,
                       notional=sum(o["amount"] * (o["price"] or 0.0) for o in legs
                                    if o["symbol"].endswith("/" + quote)),
                       legs=tuple(Leg(venue=o["venue"], symbol=o["symbol"], side=o["side"],
                                      amount=o["amount"], price=o["price"] or 0.0,
                                      expected_price=o["price"] or 0.0, fee_rate=0.0)
                                  for o in legs),
                       book_ts=tuple(0 for _ in legs), ts_event=0, ts_init=0)


class Reconciler:
    """Reconciles the journal with the venues at start (module doc); holds trading until done.

    :param executor: its ``risk`` gate is held, its ``resume`` finishes arbitrages.
    :param live: this run trades live venues (else only paper orders are reconciled: ``lost``).
    """

    def __init__(self, *, bus: Bus, clock: Clock, log: t.Any, executor: Executor, books: Books,
                 settings: LiveSettings, live: bool) -> None:
        self.bus = bus
        self.clock = clock
        self.log = log
        self.executor = executor
        self.risk = executor.risk
        self.books = books
        self.settings = settings
        self.live = live
        self.pending: dict[str, list[Row]] = {}
        """venue -> its unfinished journal orders still to look up."""
        self.arbitrages: list[Row] = []
        self.results: dict[str, OrderResult] = {}
        """client order id -> final state learnt from its venue."""
        self.counts: Counter[str] = Counter()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._alerted: set[tuple[str, str]] = set()
        """(venue, step) pairs a critical alert was raised for."""

    @property
    def active(self) -> bool:
        """Whether reconciliation still holds trading."""
        return bool(self.risk.reconciling)

    # -- start ------------------------------------------------------------------------------------

    def load(self, orders: c.Sequence[Row], arbitrages: c.Sequence[Row]) -> None:
        """Take the journal's unfinished orders and arbitrages: record paper orders ``lost`` now,
        hold trading for each venue the live ones name (a paper run leaves them, warned)."""
        live_orders = []
        for row in orders:
            if row.get("live") == 0:
                self._lost(row)
            else:
                live_orders.append(row)
        if not self.live:
            if live_orders:
                self.log.warning("{} live order(s) of earlier runs are unfinished in the journal ({}); "
                                 "the next `arb run --live` looks them up", len(live_orders),
                                 ", ".join(sorted({r["client_order_id"] for r in live_orders})))
            return
        venues: dict[str, list[Row]] = defaultdict(list)
        for row in live_orders:
            venues[row["venue"]].append(row)
        for arb in arbitrages:
            for row in arb["orders"]:
                venues.setdefault(row["venue"], [])
        self.pending = dict(venues)
        self.arbitrages = list(arbitrages)
        for name, rows in sorted(self.pending.items()):
            self.risk.hold_reconciling(name, f"{len(rows)} unfinished order(s) of earlier runs to look up; "
                                             "waiting for the venue to open")
        if self.arbitrages:
            self.risk.hold_reconciling(ARBITRAGES, f"{len(self.arbitrages)} unfinished arbitrage(s) of "
                                                   "earlier runs to finish")
        if self.active:
            self.log.warning("trading waits for start-up reconciliation: {}", self.risk.reconciling_reason)

    def unreadable(self, error: str) -> None:
        """The journal exists but could not be read (``error``): what earlier runs left unfinished
        is unknown, so nothing trades (rule ``reconciling``, key ``journal``) until a restart reads
        it, and a critical alert says why."""
        text = redact_line(error)[:200]
        why = f"the order journal cannot be read ({text}); fix the database and restart"
        self.risk.hold_reconciling(JOURNAL, why)
        message = f"start-up reconciliation cannot start, nothing trades: {why}"
        self.log.critical(message)
        self.bus.publish(Alert(key=f"reconcile:{JOURNAL}", level="critical", message=message,
                               ts_init=self.clock.time_ns()))

    def _lost(self, row: Row) -> None:
        self.counts["lost"] += 1
        now = self.clock.time_ns()
        reason = (f"lost: run {row['run_id']} ended without its result; a paper order lives only in its "
                  "process, so nothing reached an exchange")
        self.bus.publish(OrderUpdate(
            client_order_id=row["client_order_id"], opportunity_id=row["opportunity_id"], venue=row["venue"],
            symbol=row["symbol"], side=row["side"], status="lost", amount=row["amount"],
            filled=row["filled"] or 0.0, average_price=row["average_price"] or 0.0, fee=row["fee"] or 0.0,
            fee_currency=row["fee_currency"] or "", reason=reason, run_id=row["run_id"], ts_event=now,
            ts_init=now))
        self.log.warning("paper order {} of run {}: {}", row["client_order_id"], row["run_id"], reason)

    def venue_open(self, name: str, venue: Venue) -> None:
        """A live venue of this run is open: reconcile it if the journal names it (in a task)."""
        if name in self.pending and name not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._venue(name, t.cast(_Lookup, venue)),
                                                          name=f"reconcile:{name}")
            task.add_done_callback(lambda done: self._ended(name, done))
            self._tasks[name] = task

    def _ended(self, name: str, task: asyncio.Task[None]) -> None:
        """A venue's reconciliation task ended: if an error killed it (outside its retries),
        trading stays held on that venue, and a critical alert says so with the (redacted) error."""
        if task.cancelled() or (exc := task.exception()) is None:
            return
        text = redact_line(f"{type(exc).__name__}: {exc}")[:200]
        why = f"reconciliation failed ({text}); restart to try again"
        self.log.bind(venue=name).opt(exception=exc).critical("start-up reconciliation of {} failed", name)
        self.risk.hold_reconciling(name, why)
        message = f"start-up reconciliation of {name} failed, nothing trades: {why}"
        self._alerted.add((name, "failed"))
        self.bus.publish(Alert(key=f"reconcile:{name}", level="critical", message=message,
                               ts_init=self.clock.time_ns()))

    async def stop(self) -> None:
        """Abandon what is still running (trading stays held: the next start carries on)."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def summary(self) -> dict[str, t.Any]:
        """What reconciliation did, and what it still waits for."""
        out: dict[str, t.Any] = dict(self.counts)
        if self.active:
            out["waiting"] = self.risk.reconciling_reason
        return out

    # -- one venue --------------------------------------------------------------------------------

    def _waiting(self, name: str, why: str, step: str = "") -> None:
        """Say once per ``step`` (what is being asked), critically, that ``name`` cannot be
        reconciled yet (and keep trading held)."""
        self.risk.hold_reconciling(name, why)
        if (name, step) not in self._alerted:
            self._alerted.add((name, step))
            message = f"start-up reconciliation of {name} cannot complete, nothing trades: {why}"
            self.log.bind(venue=name).critical(message)
            self.bus.publish(Alert(key=f"reconcile:{name}", level="critical", message=message,
                                   ts_init=self.clock.time_ns()))

    async def _venue(self, name: str, venue: _Lookup) -> None:
        rows = self.pending[name]
        log = self.log.bind(venue=name)
        self.risk.hold_reconciling(name, f"looking up {len(rows)} order(s) of earlier runs")
        adopted = await self._open_orders(name, venue, rows)
        for row in rows:
            if row["client_order_id"] in adopted:
                await self._follow(name, venue, row)
            await self._look_up(name, venue, row)
        # what the orders did is in the venue's balances now: read them before anything trades
        await self._retrying(name, "reading balances", t.cast(Venue, venue).refresh)
        self.bus.publish(BalanceUpdate(venue=name, balances=t.cast(Venue, venue).balances(),
                                       ts_init=self.clock.time_ns()))
        del self.pending[name]
        if any(venue == name for venue, _ in self._alerted):
            self.bus.publish(Alert(key=f"reconcile:{name}", level="critical", recovered=True,
                                   message=f"start-up reconciliation of {name} done",
                                   ts_init=self.clock.time_ns()))
        log.warning("start-up reconciliation of {}: {} order(s) looked up", name, len(rows))
        self.risk.end_reconciling(name)
        if not self.pending and self.arbitrages:
            await self._finish_arbitrages()
        self._report_done()

    async def _retrying(self, name: str, what: str, call: c.Callable[[], c.Awaitable[t.Any]]) -> t.Any:
        """``call()`` until it succeeds, backing off; trading held with why meanwhile."""
        delay = self.settings.unknown_retry_s
        while True:
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = redact_line(str(exc))[:160]
                self._waiting(name, f"{what} failed ({type(exc).__name__}: {text}); "
                                    f"asking again in {delay:.3g} s", what)
            await self.clock.sleep(delay)
            delay = min(delay * 2.0, UNKNOWN_RETRY_MAX_S)

    async def _open_orders(self, name: str, venue: _Lookup, rows: c.Sequence[Row]) -> set[str]:
        """Cancel (or adopt) our open orders on the venue; returns the adopted journal orders' ids."""
        symbols = sorted({r["symbol"] for r in rows} | set(venue.markets))
        journal = {r["client_order_id"] for r in rows}
        adopt = self.settings.on_restart_open_orders == "adopt"
        adopted: set[str] = set()
        for symbol in symbols:
            open_orders = await self._retrying(name, f"reading open orders on {symbol}",
                                               lambda s=symbol: venue.open_orders(s))
            for order in open_orders:
                cid = order.get("clientOrderId")
                if not is_ours(cid):
                    continue
                if adopt:
                    if cid in journal:
                        adopted.add(cid)
                        self.counts["adopted"] += 1
                    else:
                        self.log.bind(venue=name).warning("{}: open order {} of ours is not in this journal; "
                                                          "left alone (adopt policy)", name, cid)
                    continue

                await self._retrying(name, f"cancelling open order {cid}",
                                     lambda o=order, s=symbol: venue.cancel_venue_order(o["id"], s))
                self.counts["cancelled_open"] += 1
                self.log.bind(venue=name).warning("{}: cancelled open order {} left by an earlier run",
                                                  name, cid)
        return adopted

    async def _follow(self, name: str, venue: _Lookup, row: Row) -> None:
        """An adopted open order: publish it ``open``, then wait until the venue no longer has it open."""
        cid, symbol = row["client_order_id"], row["symbol"]
        now = self.clock.time_ns()
        self.bus.publish(OrderUpdate(
            client_order_id=cid, opportunity_id=row["opportunity_id"], venue=name, symbol=symbol,
            side=row["side"], status="open", amount=row["amount"], filled=row["filled"] or 0.0,
            average_price=row["average_price"] or 0.0, fee=row["fee"] or 0.0, reason="adopted at start",
            run_id=row["run_id"], ts_event=now, ts_init=now))
        self.log.bind(venue=name).warning("{}: adopted open order {} of run {}: following it until it ends",
                                          name, cid, row["run_id"])

        async def still_open() -> bool:
            return any(o.get("clientOrderId") == cid for o in await venue.open_orders(symbol))

        while True:
            self.risk.hold_reconciling(name, f"adopted open order {cid}: waiting for it to end")
            if not await self._retrying(name, f"following adopted open order {cid} (reading open orders "
                                              f"on {symbol})", still_open):
                return
            await self.clock.sleep(self.settings.unknown_retry_s)

    async def _look_up(self, name: str, venue: _Lookup, row: Row) -> None:
        """Ask the venue until it knows the order's fate; publish its fills and final state."""
        request = request_of(row)
        delay = self.settings.unknown_retry_s
        while True:
            try:
                result = await venue.lookup(request, int(row["ts_submitted"] or 0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                result = OrderResult(client_order_id=request.client_order_id, status="unknown",
                                     reason=f"lookup raised {type(exc).__name__}")
            if result.status != "unknown":
                break
            self._waiting(name, f"order {request.client_order_id} ({request.label or 'no label'}) of run "
                                f"{row['run_id']} has an unknown fate ({result.reason}); "
                                f"asking again in {delay:.3g} s")
            await self.clock.sleep(delay)
            delay = min(delay * 2.0, UNKNOWN_RETRY_MAX_S)
        self.results[request.client_order_id] = result
        self.counts[result.status] += 1
        now = self.clock.time_ns()
        stored = float(row.get("fills_stored") or 0.0)
        # fills already in the journal that add up to the order's fill (e.g. the one fill at its
        # average the earlier run booked when the venue's trades did not add up, or rows from before
        # fills had trade ids) are not stored again under other keys; partial ones are deduplicated
        # by their trade ids
        fills = () if stored and stored >= result.filled * (1.0 - FILL_TOLERANCE) else result.fills
        for f in fills:
            self.bus.publish(Fill(client_order_id=request.client_order_id,
                                  opportunity_id=request.opportunity_id, venue=name, symbol=request.symbol,
                                  side=request.side, price=f.price, amount=f.amount, fee=f.fee,
                                  fee_currency=f.fee_currency, run_id=row["run_id"], trade_id=f.trade_id,
                                  ts_event=f.ts_event, ts_init=now))
        self.bus.publish(OrderUpdate(
            client_order_id=request.client_order_id, opportunity_id=request.opportunity_id, venue=name,
            symbol=request.symbol, side=request.side, status=result.status, amount=request.amount,
            filled=result.filled, average_price=result.average_price, fee=result.fee,
            fee_currency=result.fee_currency, reason=result.reason, venue_order_id=result.venue_order_id,
            run_id=row["run_id"], ts_event=result.ts_event or now, ts_init=now))
        self.log.bind(venue=name, opportunity_id=request.opportunity_id).warning(
            "reconciled {} {} ({}) of run {}: {} filled {:.10g} avg {:.10g} fee {:.10g} {} {}",
            request.purpose, request.label, request.client_order_id, row["run_id"], result.status,
            result.filled, result.average_price, result.fee, result.fee_currency, result.reason)

    # -- arbitrages -------------------------------------------------------------------------------

    async def _finish_arbitrages(self) -> None:
        """Finish every unfinished arbitrage through the executor (hedging within the loss cap)."""
        tasks = []
        for arb in self.arbitrages:
            opportunity = opportunity_of(arb)
            orders: list[Order] = []
            for row in arb["orders"]:
                request = request_of(row)
                orders.append((request, self.results.get(request.client_order_id) or result_of(row)))
            await self._books_of(opportunity)
            self.counts["arbitrages"] += 1
            tasks.append(self.executor.resume(opportunity, orders, run_id=arb["run_id"],
                                              state=arb.get("state")))
        self.risk.hold_reconciling(ARBITRAGES, f"finishing {len(tasks)} arbitrage(s) of earlier runs")
        if tasks:  # not gather: a stop cancelling this must leave the hedges to the executor's stop
            await asyncio.wait(tasks)
        self.arbitrages = []
        self.risk.end_reconciling(ARBITRAGES)

    async def _books_of(self, opportunity: Opportunity) -> None:
        """Wait (at most ``BOOK_WAIT_S``) until every leg market has a book to hedge against."""
        deadline = self.clock.time_ns() + int(BOOK_WAIT_S * 1e9)
        while any(self.books.get(leg.venue, leg.symbol) is None for leg in opportunity.legs):
            if self.clock.time_ns() >= deadline:
                self.log.warning("{}: no book yet for every leg after {} s; closing with what there is",
                                 opportunity.id, BOOK_WAIT_S)
                return
            await self.clock.sleep(_POLL_S)

    def _report_done(self) -> None:
        if not self.active:
            self.log.warning("start-up reconciliation done ({}); trading starts",
                             ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing to do")
