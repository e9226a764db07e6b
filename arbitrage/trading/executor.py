"""Executor: turns an admitted opportunity into IOC orders, then closes what they left open.

It exists as the one owner of an arbitrage's life: admission, sending, publishing every step,
and the final accounting. Two rule sets of that life are collaborators it calls, each in its own
module, neither of which sends anything: the plan of sequential legs (``trading.chain.Chain``,
stepped through here) and the planning of the orders that close exposure (hedge / unwind,
``trading.hedging.Closer``, whose rounds run here).

One arbitrage runs as one asyncio task:

1. ``on_opportunity`` (inline, on the publisher's stack) asks the ``RiskGate``; a refusal is an
   ``OpportunityRejected`` event. An admitted opportunity reserves its balances and gets a task.
2. Every leg is published as ``OrderSubmitted`` -- all of them, before any is handed to a venue,
   so storage has each order on disk before it can fill -- then all legs go out at once
   (``asyncio.gather``). Orders are labelled ``{opportunity id}-L{i}``; the client order id the
   venue sees derives from the label (``trading.ids``).
   *Sequential legs* (``trading.sequential_legs``, for a chain of legs on one venue: see
   ``risk.chained``) go out one at a time instead, each sized from what the one before
   delivered (``trading.chain``); each delivery becomes the arbitrage's reservation until spent.
   A leg whose venue was halted since admission (kill switch, storage, reconciliation, an order
   of unknown fate there: ``_stopped``) is not sent; the chain ends and what it holds is closed.
   From admission until its result is known, each leg holds the levels its limit order may take
   in the run's book store (``Liquidity.reserve``), so no plan made meanwhile counts on them: an
   opportunity whose legs find their levels already held or taken is refused (``liquidity``).
3. Each result is published as one ``Fill`` per level touched, an ``OrderUpdate`` and, if money
   moved, a ``BalanceUpdate``. The liquidity a fill took is recorded by the venue that filled it
   (paper venues, in the run's book store), once; the executor reads the same store to hedge.
4. Once the legs' results are in, their balance reservations end (the venues' balances show the
   fills). Legs that filled unequally leave a position in some asset. It is closed against the
   opportunity's quote currency on the leg venue with the best price for it, with a limit
   ``hedge_slippage_bps`` past that price and losing no more than ``hedge_max_loss_bps`` of the
   position's entry price, fees included (``trading.hedging``), in at most
   ``1 + hedge_retries`` rounds of orders; while no book is
   within the cap the executor looks again on fresh books every ``HEDGE_RETRY_S`` until
   ``hedge_timeout_s``. What is still open then stays open, with a critical ``Alert`` naming
   venue, asset, amount and mark. Every attempt is a new order with a new id (labelled ``-H{n}``
   for a two-venue hedge, ``-U{n}`` for unwinding a cycle of three or more legs or a sequential
   chain); a failed order is never resent (``trading.hedging``).

An order whose fate is unknown (a live venue lost its answer and its own lookups by client order
id did not find out; or ``submit`` raised) is published as ``unknown`` with a critical ``Alert``,
and its venue is halted in the ``RiskGate`` (``venue_halted``). The executor then asks the venue
again (``Venue.resolve``), waiting ``unknown_retry_s``, doubling up to ``UNKNOWN_RETRY_MAX_S``, until
the venue knows: only then is the order's final ``OrderUpdate`` published, the venue resumed, and
the arbitrage goes on (hedging what the orders, now known, left open). Nothing is hedged on a guess
and the order is never sent again. An arbitrage stopped meanwhile reports the order ``unknown``
and ``failed``; the venue stays halted for the rest of the run.

Live venues read their balances from the exchange after every arbitrage (``Venue.refresh``),
published as a ``BalanceUpdate``.
5. ``ArbResult`` accounts from the balance changes of every order of the arbitrage
   (``venue.ledger``, the rule paper venues move money by). Any other asset left over is
   ``residual`` and becomes ``positions``: the net amount per asset, attributed to the venue(s)
   whose balance of it moved that way, with its cost (what the arbitrage paid per unit for that
   asset against the quote, fees included: its buys for a long, its sells for a short; an asset
   that no order traded against the quote costs its entry price, what the legs gave for it
   through the other market, ``hedging.entry_prices``; only without either, its mark) and its
   mark (``trading.positions``).
   Realized profit is the quote currency's change over all venues plus the cost of those
   positions; unrealized profit is their value at the mark less that cost; the trader's
   positions ledger takes them over. For ``fees`` (and each ``LegResult.fee``), a fee the venue
   took in the market's base is valued at the order's average price (what that base cost), one in
   another currency at that venue's mid. A currency the orders moved only by fees (Binance's BNB,
   ``venue.fee_assets``; each fill's fee counts in its own currency, ``venue.order_deltas``) is
   in ``residual`` and ``positions`` as what it is, a short of that currency, but it is a cost,
   not exposure: never hedged, and it does not make the result ``failed``; its fees count in
   ``fees`` at the venue's mid (``LegResult.fee`` holds the order's fee in the market's currency).

``complete`` means every planned leg was sent and filled fully and nothing had to be hedged or
unwound. Amounts too small to trade (below a market's minimum amount or cost) are dust: reported
in ``residual`` but not hedged, and they do not make the result ``failed``.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import math
import typing as t
from collections import Counter

from arbitrage.book import EPS, BookSide
from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import (
    Alert,
    ArbResult,
    ArbState,
    ArbStateChanged,
    BalanceUpdate,
    Fill,
    LegResult,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
    Position,
)
from arbitrage.plugin import Books, Liquidity
from arbitrage.settings import TradingSettings
from arbitrage.trading.arbstate import EDGES, StateMachine, outcome
from arbitrage.trading.chain import Chain, leg_request
from arbitrage.trading.hedging import Closer, Entries, entry_prices, market_for, venues_of
from arbitrage.trading.positions import Positions
from arbitrage.trading.risk import Markets, Refusal, RiskGate
from arbitrage.trading.venue import (
    FILL_TOLERANCE,
    Order,
    OrderRequest,
    OrderResult,
    Venue,
    balance_deltas,
    fee_assets,
    ledger,
    net_by_asset,
    other_fees,
)
from arbitrage.valuation import Valuer

HEDGE_RETRY_S = 0.1
"""How long (run clock) closing waits before looking again when no book is within the loss cap."""
UNKNOWN_RETRY_MAX_S = 60.0
"""Longest wait between two questions about an order of unknown fate."""


class Executor:
    """Executes admitted opportunities on a set of venues and publishes every step.

    :param venues: venue name -> account; may grow while running (venues appear with their markets).
    :param markets: venue -> symbol -> market, shared with whoever loads them.
    :param books: the run's book store (levels net of what our fills took), for hedging and valuing fees.
    :param staleness_ms: venue -> staleness limit, for choosing where to hedge.
    :param positions: the ledger that values residuals and takes over what stays open.
    :param liquidity: the same store's overlay, where orders in flight hold the levels they may
        take; None = hold nothing.
    :param currency: the risk currency (``risk.currency``) the limits are amounts of.
    :param unknown_retry_s: first wait before asking a venue again about an order of unknown fate.
    """

    def __init__(self, *, bus: Bus, clock: Clock, settings: TradingSettings, venues: c.Mapping[str, Venue],
                 markets: Markets, books: Books, staleness_ms: c.Mapping[str, float], log: t.Any,
                 positions: Positions | None = None, liquidity: Liquidity | None = None,
                 currency: str = "USDT", unknown_retry_s: float = 1.0) -> None:
        self.bus = bus
        self.clock = clock
        self.settings = settings
        self.venues = venues
        self.markets = markets
        self.books = books
        self.liquidity = liquidity
        self.log = log
        self.unknown_retry_s = unknown_retry_s
        self.positions = positions or Positions(bus=bus, clock=clock, books=books, markets=markets,
                                                staleness_ms=staleness_ms)
        self.risk = RiskGate(settings, Valuer(books.by_symbol, currency))
        self.closer = Closer(venues=venues, markets=markets, books=books, clock=clock,
                             staleness_ms=staleness_ms, risk=self.risk,
                             slippage_bps=settings.hedge_slippage_bps,
                             max_loss_bps=settings.hedge_max_loss_bps)
        self._tasks: set[asyncio.Task[None]] = set()
        self.orders: Counter[str] = Counter()
        """Orders sent, by purpose (leg, hedge, unwind)."""
        self.order_status: Counter[str] = Counter()
        self.fills = 0
        self.rejected: Counter[str] = Counter()
        """Opportunities refused, by reason code."""
        self.arbs: Counter[str] = Counter()
        """Finished arbitrages, by status."""
        self.strict_states = False
        """Raise ``IllegalTransition`` on an illegal state move (tests); otherwise it is logged."""
        self.illegal_moves: list[str] = []
        """Every illegal state move asked for (a bug; logged as an error, not made)."""
        self._machines: dict[str, StateMachine] = {}
        self._resumed: dict[str, str] = {}
        """Arbitrages of earlier runs being finished (``resume``): opportunity id -> their run."""
        """Opportunity id -> its state machine, while it executes."""
        self._alerted: set[str] = set()
        """Executing arbitrages that raised a critical alert naming what they leave open."""

    # -- intake ----------------------------------------------------------------------------------

    def on_opportunity(self, opportunity: Opportunity) -> None:
        """Admit or refuse an opportunity; an admitted one runs in its own task. Inline bus handler.

        :raises RuntimeError: if called outside a running event loop (before anything is reserved).
        """
        loop = asyncio.get_running_loop()
        balances = {leg.venue: venue.balances() for leg in opportunity.legs
                    if (venue := self.venues.get(leg.venue)) is not None}
        refusal = self.risk.admit(opportunity, balances, self.markets)
        if refusal is not None:
            self._refuse(opportunity, refusal)
            return
        sequential = self.risk.sequential(opportunity, self.markets)
        first = [leg_request(opportunity, i, leg.amount) for i, leg in enumerate(opportunity.legs)]
        refusal = self._hold(first[:1] if sequential else first)
        if refusal is not None:
            self.risk.release(opportunity.id)
            self._refuse(opportunity, refusal)
            return
        task = loop.create_task(self._execute(opportunity, sequential), name=f"arb:{opportunity.id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        task.add_done_callback(lambda _: self._unhold(first))  # also if it never reached a send

    def _hold(self, requests: c.Sequence[OrderRequest]) -> Refusal | None:
        """Hold the levels each order may take; if another order of ours holds or took part of what
        one needs within its limit, hold nothing and say why."""
        if self.liquidity is None:
            return None
        for r in requests:
            side: BookSide = "asks" if r.side == "buy" else "bids"
            contested = self.liquidity.reserve(r.client_order_id, r.venue, r.symbol, side, r.price, r.amount)
            if contested > r.amount * FILL_TOLERANCE + EPS:
                self._unhold(requests)
                return Refusal("liquidity", f"{r.venue} {r.symbol} {r.side}: {contested:.10g} of "
                                            f"{r.amount:.10g} within {r.price:.10g} already held or taken "
                                            "by our orders")
        return None

    def _unhold(self, requests: c.Iterable[OrderRequest]) -> None:
        if self.liquidity is not None:
            for r in requests:
                self.liquidity.release(r.client_order_id)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.log.opt(exception=exc).error("arbitrage task {} crashed", task.get_name())

    def _refuse(self, opportunity: Opportunity, refusal: Refusal) -> None:
        self.rejected[refusal.reason] += 1
        leg = opportunity.legs[0] if opportunity.legs else None
        log = self.log.bind(opportunity_id=opportunity.id, venue=leg.venue if leg else "",
                            symbol=leg.symbol if leg else "")
        log.debug("rejected: {} ({})", refusal.reason, refusal.detail)
        self.bus.publish(OpportunityRejected(opportunity_id=opportunity.id, reason=refusal.reason,
                                             ts_init=self.clock.time_ns()))

    @property
    def open_arbs(self) -> tuple[str, ...]:
        """Ids of the opportunities being executed."""
        return tuple(self.risk.open)

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until every running arbitrage has finished; False if ``timeout`` seconds passed first."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def cancel(self) -> None:
        """Abandon running arbitrages (each still publishes an ``ArbResult`` of what it did)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one arbitrage ---------------------------------------------------------------------------

    async def _execute(self, opportunity: Opportunity, sequential: bool = False) -> None:
        orders: list[Order] = []
        log = self.log.bind(opportunity_id=opportunity.id, venue=_join(leg.venue for leg in opportunity.legs),
                            symbol=_join(leg.symbol for leg in opportunity.legs))
        self._machines[opportunity.id] = self._machine(opportunity.id, log)
        try:
            if sequential:
                await self._send_chain(Chain(opportunity, self.markets, log), orders, log)
            else:
                legs = [leg_request(opportunity, i, leg.amount) for i, leg in enumerate(opportunity.legs)]
                await self._send(legs, orders)
                self.risk.reserve(opportunity.id, {})  # the balances now show what the legs spent
            await self._close_exposure(opportunity, orders, unwind=sequential or len(opportunity.legs) > 2)
            await self._refresh(dict.fromkeys(r.venue for r, _ in orders), log)
        except asyncio.CancelledError:
            log.error("arbitrage abandoned while executing; reporting what it did")
            raise
        except Exception:
            log.opt(exception=True).error("arbitrage failed unexpectedly; reporting what it did")
        finally:
            self._finish(opportunity, orders, log)

    def resume(self, opportunity: Opportunity, orders: c.Sequence[Order], *, run_id: str = "",
               state: ArbState | None = None) -> asyncio.Task[None]:
        """Finish an arbitrage an earlier process left unfinished (start-up reconciliation), whose
        ``orders`` -- every one it sent, hedges included -- all have their venue's final state now:
        close what they left open (hedge or unwind, numbered after the closing orders already
        sent, within the loss cap), then publish its ``ArbResult`` as ``_execute`` does. It holds
        an open slot and reserves nothing (the venues' balances show what its orders did). Its state
        machine carries on from ``state`` (its newest stored state; None: none was stored), each
        move published with ``run_id``, the run it belongs to."""
        self.risk.open[opportunity.id] = {}
        done = list(orders)
        first = sum(r.purpose != "leg" for r, _ in done)
        unwind = len(opportunity.legs) > 2 or any(r.purpose == "unwind" for r, _ in done)
        log = self.log.bind(opportunity_id=opportunity.id, venue=_join(r.venue for r, _ in done),
                            symbol=_join(r.symbol for r, _ in done))
        self._resumed[opportunity.id] = run_id
        machine = self._machine(opportunity.id, log, run_id=run_id, state=state or "planned")
        self._machines[opportunity.id] = machine
        if machine.state == "planned":  # no state was stored: its orders were sent
            machine.move("submitted", "found in the journal at start")
        if machine.state in ("submitted", "unknown"):  # their fates are known now
            machine.move(*self._outcome(done))

        async def finish() -> None:
            try:
                await self._close_exposure(opportunity, done, unwind=unwind, first=first)
                await self._refresh(dict.fromkeys(r.venue for r, _ in done), log)
            except asyncio.CancelledError:
                log.error("resumed arbitrage abandoned while closing; reporting what it did")
                raise
            except Exception:
                log.opt(exception=True).error("resumed arbitrage failed unexpectedly; reporting what it did")
            finally:
                self._finish(opportunity, done, log)

        task = asyncio.get_running_loop().create_task(finish(), name=f"arb:resume:{opportunity.id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _machine(self, opportunity_id: str, log: t.Any, *, run_id: str = "",
                 state: ArbState = "planned") -> StateMachine:
        """A new arbitrage's state machine (publishes ``planned``; or starts, silently, in ``state``:
        an arbitrage of run ``run_id`` resumed after a restart), each move an ``ArbStateChanged``."""
        def publish(state: ArbState, reason: str) -> None:
            self.bus.publish(ArbStateChanged(opportunity_id=opportunity_id, state=state, reason=reason,
                                             run_id=run_id, ts_init=self.clock.time_ns()))
        def illegal(message: str) -> None:
            self.illegal_moves.append(message)
            log.error(message)
        return StateMachine(publish, strict=self.strict_states, on_illegal=illegal, state=state)

    def _move(self, opportunity_id: str, state: ArbState, reason: str = "") -> None:
        machine = self._machines.get(opportunity_id)
        if machine is not None:
            machine.move(state, reason)

    @staticmethod
    def _outcome(orders: c.Sequence[Order]) -> tuple[ArbState, str]:
        """The state the legs sent so far put the arbitrage in, and what each did."""
        legs = [(r, result) for r, result in orders if r.purpose == "leg"]
        state = outcome((result.status, result.filled) for _, result in legs)
        return state, ", ".join(
            f"{r.label} {result.status} {result.filled:.10g}/{r.amount:.10g}"
            + (f" ({result.reason})" if result.reason else "") for r, result in legs)

    def _conclude(self, opportunity: Opportunity, orders: c.Sequence[Order], status: str,
                  positions: c.Sequence[Position], stuck: c.Mapping[str, str], log: t.Any) -> None:
        """The final state: ``needs_attention`` (with a critical alert naming what is open, unless
        one did already) if exposure or an order of unknown fate is left, else ``done``."""
        machine = self._machines.pop(opportunity.id, None)
        alerted = opportunity.id in self._alerted
        self._alerted.discard(opportunity.id)
        if machine is None:
            return
        unknown = [f"{r.label} ({r.client_order_id}) on {r.venue}" for r, result in orders
                   if result.status == "unknown"]
        if not stuck and not unknown:
            if "done" not in EDGES[machine.state]:  # stopped before its legs' outcome was published
                machine.move(*self._outcome(orders))
            machine.move("done", status)
            return
        open_ = [f"{p.amount:+.10g} {p.asset} on {p.venue} marked at {p.mark:.10g} {p.quote}"
                 + (" (last known price)" if p.stale else "") for p in positions if p.asset in stuck]
        why = ("not closed while an order's fate is unknown" if unknown  # nothing is hedged on a guess
               else ", ".join(sorted(set(stuck.values()))))
        reason = "; ".join(
            ([f"left open: {', '.join(open_)} ({why})"] if open_ else [])
            + ([f"fate unknown: {', '.join(unknown)}"] if unknown else []))
        if not alerted:
            message = f"{opportunity.id} needs attention: {reason}"
            log.critical(message)
            self.bus.publish(Alert(key=f"arb.needs_attention:{opportunity.id}", level="critical",
                                   message=message, ts_init=self.clock.time_ns()))
        machine.move("needs_attention", reason)

    async def _refresh(self, names: c.Iterable[str], log: t.Any) -> None:
        """Read the balances of these venues from the venues themselves (live) and publish them."""
        for name in names:
            venue = self.venues.get(name)
            if venue is None:
                continue
            try:
                if not await venue.refresh():
                    continue
            except Exception:  # the ledger already moved the balances; the next refresh corrects them
                log.opt(exception=True).warning("could not read the balances of {}", name)
                continue
            self.bus.publish(BalanceUpdate(venue=name, balances=venue.balances(),
                                           ts_init=self.clock.time_ns()))

    async def _send_chain(self, chain: Chain, orders: list[Order], log: t.Any) -> None:
        """Send a chain's legs one at a time; what the chain holds then is left for closing exposure.

        A leg whose venue was halted after the arbitrage was admitted (``_stopped``) is not sent:
        the chain ends there, and what the legs before it delivered is closed like any leftover."""
        opportunity_id = chain.opportunity.id
        while (request := chain.next_order()) is not None:
            if why := self._stopped(request.venue):
                log.warning("chain stopped before {} ({} {} {:.10g} @ {:.10g}): {}", request.label,
                            request.side, request.symbol, request.amount, request.price, why)
                self.risk.reserve(opportunity_id, {})  # its delivery is now exposure to close
                return
            await self._send([request], orders)
            # what the leg spent shows in the balance now; only its delivery, until spent, stays held
            self.risk.reserve(opportunity_id, chain.filled(orders[-1][1]) or {})

    def _stopped(self, venue: str) -> str:
        """Why no new leg may go to ``venue`` now ('' if it may): the kill switch or a storage
        failure (``RiskGate.halt``), start-up reconciliation (``reconciling``), or an order of
        unknown fate there (``venue_halted``) -- the rules ``RiskGate.check`` admits by."""
        risk = self.risk
        if risk.halted:
            return f"trading halted: {risk.halted}"
        if risk.reconciling:
            return f"reconciling: {risk.reconciling_reason}"
        if held := risk.halted_venues.get(venue):
            return f"{venue} halted: order(s) {', '.join(sorted(held))} of unknown fate"
        return ""

    async def _close_exposure(self, opportunity: Opportunity, orders: list[Order], *, unwind: bool,
                              first: int = 0) -> None:
        """Hedge or unwind whatever the orders so far left in assets other than the quote currency,
        in at most ``1 + hedge_retries`` rounds of orders, each planned by the ``Closer`` from what is
        left and capped by the entry prices; while nothing can be sent within the cap, look again
        every ``HEDGE_RETRY_S`` until ``hedge_timeout_s``. Alert on what stays open. Closing orders
        are numbered from ``first`` (an arbitrage finished after a restart has sent some already)."""
        purpose: t.Literal["hedge", "unwind"] = "unwind" if unwind else "hedge"
        entry = entry_prices(opportunity, orders, self.markets)
        deadline = self.clock.time_ns() + int(self.settings.hedge_timeout_s * 1e9)
        sent, rounds = first, 0
        while True:
            fees_only = fee_assets(orders, self.markets)  # a cost, not a position to close
            exposure = {asset: amount for asset, amount in self.exposure(opportunity.quote, orders).items()
                        if asset not in fees_only}
            requests, waiting = self.closer.orders(opportunity, exposure, purpose, sent, entry)
            if not requests and not waiting:
                return
            self._move(opportunity.id, "hedging", "closing " + ", ".join(
                f"{amount:+.10g} {asset}" for asset, amount in sorted(exposure.items()) if amount))
            if requests and rounds <= self.settings.hedge_retries:
                rounds += 1
                sent += len(requests)
                await self._send(requests, orders)
                continue
            if rounds > self.settings.hedge_retries or self.clock.time_ns() >= deadline:
                break
            await self.clock.sleep(HEDGE_RETRY_S)
        stuck = dict(waiting)
        for r in requests:
            market = self.markets[r.venue][r.symbol]  # quote/asset when closing through an inverted market
            asset = market.quote if market.base == opportunity.quote else market.base
            stuck[asset] = "hedge retries exhausted"
        self._alert_open(opportunity, orders, stuck)

    def _alert_open(self, opportunity: Opportunity, orders: list[Order], stuck: c.Mapping[str, str]) -> None:
        """A critical ``Alert`` per venue holding a position that stays open (``stuck``: asset -> why):
        amount, mark (the positions ledger's, as the ``ArbResult`` will carry it) and why."""
        quote = opportunity.quote
        net = self.exposure(quote, orders)
        for (venue, asset), amount in sorted(self.ledger(orders).items()):
            if asset not in stuck or abs(amount) < EPS or (amount > 0) != (net.get(asset, 0.0) > 0):
                continue  # closed, or this venue holds the side that was closed
            amount = min(abs(amount), abs(net[asset])) * (1.0 if amount > 0 else -1.0)
            mark, stale = self.positions.mark(venue, asset, quote, amount)
            source = "last known price, no usable book" if stale else "best price"
            message = (f"{opportunity.id}: {amount:+.10g} {asset} left open on {venue}, marked at "
                       f"{mark:.10g} {quote} ({source}): {stuck[asset]}; the arbitrage needs attention")
            self.log.bind(opportunity_id=opportunity.id, venue=venue).critical(message)
            self.bus.publish(Alert(key=f"position.open:{venue}:{asset}", level="critical", message=message,
                                   ts_init=self.clock.time_ns()))
            self._alerted.add(opportunity.id)

    async def _send(self, requests: c.Sequence[OrderRequest], orders: list[Order]) -> None:
        """Publish ``OrderSubmitted`` for every request, hand them all to their venues at once, and
        append each (request, result) to ``orders`` in request order -- also when cancelled, so
        every submitted order ends with an ``OrderUpdate`` and a place in the ``ArbResult``. Returns
        only when the venues know every order's fate (``_resolve``).
        """
        results: dict[int, OrderResult] = {}
        try:
            if self.liquidity is not None:  # in flight from here until its result is known (_submit)
                for r in requests:
                    side: BookSide = "asks" if r.side == "buy" else "bids"
                    self.liquidity.reserve(r.client_order_id, r.venue, r.symbol, side, r.price, r.amount)
            now = self.clock.time_ns()
            for r in requests:
                self.orders[r.purpose] += 1
                self.bus.publish(OrderSubmitted(  # a critical subscriber (storage) may veto: raises
                    client_order_id=r.client_order_id, opportunity_id=r.opportunity_id, venue=r.venue,
                    symbol=r.symbol, side=r.side, amount=r.amount, price=r.price, purpose=r.purpose,
                    label=r.label, ts_init=now))
            opportunity_id = requests[0].opportunity_id if requests else ""
            legs = bool(requests) and requests[0].purpose == "leg"
            self._move(opportunity_id, "submitted" if legs else "hedging", _describe(requests))
            # every submission runs to its end even if one raises: an order that fills after a
            # sibling failed must still be counted (and hedged)
            outcomes = await asyncio.gather(*(self._submit(r, i, results) for i, r in enumerate(requests)),
                                            return_exceptions=True)
            unknown = [i for i, result in results.items() if result.status == "unknown"]
            if unknown:  # nothing is decided (no hedge, no next leg) before the venues know
                self._move(opportunity_id, "unknown", "fate unknown: " + ", ".join(
                    f"{requests[i].label} ({requests[i].client_order_id}) on {requests[i].venue}"
                    for i in unknown))
                await asyncio.gather(*(self._resolve(requests[i], i, results) for i in unknown))
        finally:
            orders.extend((r, results[i]) for i, r in enumerate(requests) if i in results)
            # an order without a result (vetoed, or cancelled before it ran) holds no levels
            self._unhold(r for i, r in enumerate(requests) if i not in results)
        for failure in outcomes:
            if isinstance(failure, BaseException):
                raise failure
        if legs:
            self._move(opportunity_id, *self._outcome(orders))
        else:
            self._move(opportunity_id, "hedging", "fates known")

    async def _submit(self, r: OrderRequest, index: int, results: dict[int, OrderResult]) -> None:
        log = self.log.bind(opportunity_id=r.opportunity_id, venue=r.venue, symbol=r.symbol)
        venue = self.venues.get(r.venue)
        if venue is None:
            result = OrderResult(client_order_id=r.client_order_id, status="rejected", reason="unknown venue")
        else:
            try:
                result = await venue.submit(r)
            except asyncio.CancelledError:
                # Paper: the order never reached the book. Live: it may have been placed and filled,
                # so its fate is unknown: recorded so, its venue halted, with a critical alert.
                reason = "abandoned: executor stopped while in flight"
                if not venue.knows_abandoned:
                    self._abandon_unknown(r, reason, log)
                result = OrderResult(client_order_id=r.client_order_id,
                                     status="canceled" if venue.knows_abandoned else "unknown", reason=reason)
                results[index] = result
                self._unhold((r,))
                self._record(r, result, log)
                raise
            except Exception as exc:  # the venue broke: the order's fate is unknown, never resend it
                log.opt(exception=True).error("{} {}: venue raised; fate unknown", r.purpose, r.label)
                result = OrderResult(client_order_id=r.client_order_id, status="unknown",
                                     reason=f"venue error: {type(exc).__name__}")
        results[index] = result
        self._unhold((r,))  # the result is known: what it took is in the store's taken levels now
        self._record(r, result, log)

    def _abandon_unknown(self, r: OrderRequest, reason: str, log: t.Any) -> None:
        """A live order cut off in flight (the run stopping): halt its venue and say so, critically."""
        self.risk.halt_venue(r.venue, r.client_order_id)
        message = (f"{r.venue}: order {r.client_order_id} ({r.label}: {r.side} {r.amount:.10g} {r.symbol} "
                   f"@ {r.price:.10g}) has an unknown fate ({reason}); look it up on {r.venue} by its "
                   "client order id before trading there again")
        log.critical(message)
        self.bus.publish(Alert(key=f"order.unknown:{r.venue}:{r.client_order_id}", level="critical",
                               message=message, ts_init=self.clock.time_ns()))

    async def _resolve(self, r: OrderRequest, index: int, results: dict[int, OrderResult]) -> None:
        """An order of unknown fate: critical alert, halt its venue, ask the venue again (backing off)
        until it knows, then publish the final state and resume the venue (module doc)."""
        log = self.log.bind(opportunity_id=r.opportunity_id, venue=r.venue, symbol=r.symbol)
        key = f"order.unknown:{r.venue}:{r.client_order_id}"
        what = f"order {r.client_order_id} ({r.label}: {r.side} {r.amount:.10g} {r.symbol} @ {r.price:.10g})"
        self.risk.halt_venue(r.venue, r.client_order_id)
        message = (f"{r.venue}: {what} has an unknown fate ({results[index].reason}); trading on {r.venue} "
                   "is halted until the venue says what became of it")
        log.critical(message)
        self.bus.publish(Alert(key=key, level="critical", message=message, ts_init=self.clock.time_ns()))
        venue = self.venues[r.venue]
        result = results[index]
        delay = self.unknown_retry_s
        while result.status == "unknown":
            await self.clock.sleep(delay)
            delay = min(delay * 2.0, UNKNOWN_RETRY_MAX_S)
            try:
                result = await venue.resolve(r)
            except Exception:
                log.opt(exception=True).warning("{}: asking about {} failed; asking again in {:.3g} s",
                                                r.venue, r.client_order_id, delay)
        results[index] = result
        self.order_status["unknown"] -= 1  # counted by its final status from here
        if not self.order_status["unknown"]:
            del self.order_status["unknown"]
        self._record(r, result, log)
        resumed = self.risk.resume_venue(r.venue, r.client_order_id)
        message = (f"{r.venue}: {what} is {result.status}, filled {result.filled:.10g}"
                   + (f"; trading on {r.venue} resumed" if resumed else ""))
        log.warning(message)
        self.bus.publish(Alert(key=key, level="critical", message=message, recovered=True,
                               ts_init=self.clock.time_ns()))

    def _record(self, r: OrderRequest, result: OrderResult, log: t.Any) -> None:
        """Publish what one order did (the venue recorded the liquidity its fills took)."""
        now = self.clock.time_ns()
        for f in result.fills:
            self.fills += 1
            self.bus.publish(Fill(client_order_id=r.client_order_id, opportunity_id=r.opportunity_id,
                                  venue=r.venue, symbol=r.symbol, side=r.side, price=f.price, amount=f.amount,
                                  fee=f.fee, fee_currency=f.fee_currency, trade_id=f.trade_id,
                                  ts_event=f.ts_event, ts_init=now))
        self.order_status[result.status] += 1
        self.bus.publish(OrderUpdate(
            client_order_id=r.client_order_id, opportunity_id=r.opportunity_id, venue=r.venue,
            symbol=r.symbol, side=r.side, status=result.status, amount=r.amount, filled=result.filled,
            average_price=result.average_price, fee=result.fee, fee_currency=result.fee_currency,
            reason=result.reason, venue_order_id=result.venue_order_id, ts_event=result.ts_event or now,
            ts_init=now))
        venue = self.venues.get(r.venue)
        if result.filled > 0 and venue is not None:
            self.bus.publish(BalanceUpdate(venue=r.venue, balances=venue.balances(), ts_init=now))
        log.info("{} {} ({}) {} {:.10g}@{:.10g}: {} filled {:.10g} avg {:.10g} fee {:.10g} {} {}", r.purpose,
                 r.label, r.client_order_id, r.side, r.amount, r.price, result.status, result.filled,
                 result.average_price, result.fee, result.fee_currency, result.reason)

    # -- accounting ------------------------------------------------------------------------------

    def ledger(self, orders: c.Iterable[Order]) -> dict[tuple[str, str], float]:
        """Balance change per (venue, asset) caused by ``orders``: the same rule the venues apply."""
        return ledger(orders, self.markets)

    def exposure(self, quote: str, orders: c.Iterable[Order]) -> dict[str, float]:
        """Net change of every asset except ``quote``, summed over venues (what is left to hedge)."""
        return {asset: _clean(v) for asset, v in net_by_asset(self.ledger(orders)).items() if asset != quote}

    def _finish(self, opportunity: Opportunity, orders: list[Order], log: t.Any) -> None:
        """Publish the ``ArbResult``, then free the arbitrage's reservations and slot."""
        try:
            quote = opportunity.quote
            changes = self.ledger(orders)
            residual = self.exposure(quote, orders)
            entry = entry_prices(opportunity, orders, self.markets)
            positions = self._open_positions(quote, orders, changes, residual, entry)
            realized = _clean(net_by_asset(changes).get(quote, 0.0) + sum(p.cost for p in positions))
            unrealized = sum(p.unrealized for p in positions)
            venues = venues_of(opportunity)
            why_open = self.closer.why_open
            fees_only = fee_assets(orders, self.markets)
            stuck = {asset: why for asset, amount in residual.items() if amount and asset not in fees_only
                     and (why := why_open(asset, amount, quote, venues, opportunity.id,
                                          entry.get((asset, amount > 0)))) != "dust"}
            legs = [result for r, result in orders if r.purpose == "leg"]
            corrected = len(orders) > len(legs)
            unknown = any(result.status == "unknown" for _, result in orders)  # stopped while asking
            if not any(result.filled > 0 for _, result in orders) or stuck or unknown:
                status: t.Literal["complete", "partial", "failed"] = "failed"
            elif (not corrected and len(legs) == len(opportunity.legs)
                  and all(result.status == "filled" for result in legs)):
                status = "complete"
            else:
                status = "partial"
            fees = sum(self._value(r.venue, *self._fee(r, result), quote) for r, result in orders)
            fees += sum(self._value(r.venue, currency, fee, quote) for r, result in orders
                        if (market := self.markets.get(r.venue, {}).get(r.symbol)) is not None
                        for currency, fee in other_fees(result, market).items())
            result = ArbResult(
                opportunity_id=opportunity.id, strategy=opportunity.strategy, status=status,
                legs=tuple(LegResult(client_order_id=r.client_order_id, venue=r.venue, symbol=r.symbol,
                                     side=r.side, amount=r.amount, filled=res.filled,
                                     average_price=res.average_price, fee=self._fee(r, res)[1],
                                     status=res.status, purpose=r.purpose, label=r.label)
                           for r, res in orders),
                quote=quote, expected_profit=opportunity.profit, realized_profit=realized, fees=fees,
                slippage=opportunity.profit - realized - unrealized, residual=residual,
                unrealized_profit=unrealized, positions=positions,
                run_id=self._resumed.pop(opportunity.id, ""), ts_init=self.clock.time_ns())
            self.arbs[status] += 1
            self.risk.add_residual(residual)
            if stuck:
                log.error("arb {}: exposure left open {} ({})", status, residual, stuck)
            log.info("arb {}: realized {:.10g} {} unrealized {:.10g} (expected {:.10g}), fees {:.10g}, "
                     "orders {}, residual {}", status, realized, quote, unrealized, opportunity.profit, fees,
                     len(orders), residual)
            self.positions.apply(positions)  # before the result: its readers see the ledger it made
            self.bus.publish(result)
            self._conclude(opportunity, orders, status, positions, stuck, log)
        finally:
            self.risk.release(opportunity.id)
            if (machine := self._machines.pop(opportunity.id, None)) is not None:  # accounting failed
                machine.move("needs_attention", "the arbitrage's accounting failed: see the log")
            self._alerted.discard(opportunity.id)

    def _open_positions(self, quote: str, orders: c.Sequence[Order],
                        changes: c.Mapping[tuple[str, str], float],
                        residual: c.Mapping[str, float], entry: Entries) -> tuple[Position, ...]:
        """The residual as positions: each asset's net amount on the venues whose balance of it
        moved the same way (largest move first), with cost and mark (module doc, step 5)."""
        out: list[Position] = []
        for asset, net in residual.items():
            if not net:
                continue
            unit_cost = self._unit_cost(asset, quote, orders, long=net > 0)
            if unit_cost is None:  # reached through another market: what the legs gave for it
                unit_cost = entry.get((asset, net > 0))
            holders = sorted(((delta, venue) for (venue, a), delta in changes.items()
                              if a == asset and delta * net > 0), key=lambda h: (-abs(h[0]), h[1]))
            left = abs(net)
            for delta, venue in holders:
                amount = math.copysign(min(abs(delta), left), net)
                left -= abs(amount)
                mark, stale = self.positions.mark(venue, asset, quote, amount)
                if stale:
                    self.log.warning("no usable {} book on {} to mark {:.10g} {}: last known price {:.10g}",
                                     quote, venue, amount, asset, mark)
                cost = amount * (mark if unit_cost is None else unit_cost)
                out.append(Position(venue=venue, asset=asset, quote=quote, amount=amount, cost=cost,
                                    mark=mark, stale=stale))
                if left <= EPS:
                    break
        return tuple(out)

    def _unit_cost(self, asset: str, quote: str, orders: c.Sequence[Order], *, long: bool) -> float | None:
        """Quote paid per unit of ``asset`` bought (``long``) or received per unit sold, fees
        included, over the orders that traded it against ``quote``; None if none did."""
        amount = money = 0.0
        for r, result in orders:
            market = self.markets.get(r.venue, {}).get(r.symbol)
            if (market is None or result.filled <= 0 or (market.base, market.quote) != (asset, quote)
                    or (r.side == "buy") != long):
                continue
            deltas = balance_deltas(r.side, market, result.filled, result.notional, result.fee,
                                    result.fee_currency)
            amount += deltas[asset]
            money -= deltas.get(quote, 0.0)
        return money / amount if amount else None

    def _fee(self, r: OrderRequest, result: OrderResult) -> tuple[str, float]:
        """The order's fee as (currency, amount), one taken in the market's base as its quote at
        the order's average price (what that base cost)."""
        market = self.markets.get(r.venue, {}).get(r.symbol)
        if market is not None and result.fee_currency == market.base != market.quote:
            return market.quote, result.fee * result.average_price
        return result.fee_currency, result.fee

    def _value(self, venue: str, asset: str, amount: float, quote: str) -> float:
        """``amount`` of ``asset`` in ``quote`` at the venue's mid price (0 if no market links them)."""
        if not amount or not asset or asset == quote:
            return amount
        for base, counter, invert in ((asset, quote, False), (quote, asset, True)):
            market = market_for(self.markets, venue, base, counter)
            book = self.books.get(venue, market.symbol) if market is not None else None
            if book is not None and (book.bids or book.asks):
                tops = [side[0][0] for side in (book.bids, book.asks) if side]
                mid = sum(tops) / len(tops)
                return amount / mid if invert else amount * mid
        self.log.warning("cannot value {} {} in {} on {}: fee left out of the total", amount, asset, quote,
                         venue)
        return 0.0


def _describe(requests: c.Sequence[OrderRequest]) -> str:
    """``L0 alpha buy 0.5 BTC/USDT @ 100, ...``: what a round of orders asks for."""
    return ", ".join(f"{r.label.rpartition('-')[2]} {r.venue} {r.side} {r.amount:.10g} {r.symbol} "
                     f"@ {r.price:.10g}" for r in requests)


def _join(names: c.Iterable[str]) -> str:
    return ",".join(dict.fromkeys(names))


def _clean(value: float) -> float:
    """Float noise (|x| < 1e-12) to exactly 0.0, and -0.0 to 0.0."""
    return 0.0 if abs(value) < EPS else value

