"""Risk checks: the gate every opportunity passes before an order is built.

Pure bookkeeping, no I/O and no clock, so each rule is a plain unit test. ``RiskGate.admit``
answers ``None`` (go) or a ``Refusal`` whose ``reason`` is a short stable code, counted in the
summary and published as ``OpportunityRejected``:

==============  ==========================================================================
reason          when
==============  ==========================================================================
halted          the kill switch is on (``halt``); nothing trades until ``resume``
reconciling     start-up reconciliation has not finished with a venue of the journal's unfinished
                orders or arbitrages (``hold_reconciling``): nothing trades anywhere until every one
                is done (``end_reconciling``); the detail says what each is waiting for
venue_halted    a leg's venue has an order of unknown fate (``halt_venue``): nothing more trades
                there until the venue has told what became of it (``resume_venue``)
busy            ``max_open_arbs`` arbitrages are still executing
duplicate       this opportunity id was already executed (client order ids derive from it)
invalid         no legs, or a leg with a non-positive amount or price
unknown_venue   a leg names a venue we have no account on
unknown_market  a leg names a market its venue did not announce
no price        its notional, or an asset ``max_exposure`` limits, cannot be valued in the risk
                currency from the books
notional        the opportunity spends more than ``max_notional`` (valued in the risk currency)
exposure        an asset's unhedged residual plus all this arbitrage could leave open in it (its
                largest leg in that asset, should the other legs fail) would exceed ``max_exposure``
balance         a venue lacks what the legs spend, after what running arbitrages reserved
                (sequential chains: only what the first leg spends)
==============  ==========================================================================

Limits are amounts of one currency, ``risk.currency``: every notional and position is valued from
the run's books by ``arbitrage.valuation.Valuer`` (ETH/BTC through BTC/USDT; a cycle's start
asset likewise), the rule the strategies size by, so ``max_notional = 1000`` means 1,000 USDT's
worth whatever the market. What cannot be valued is refused (``no price``), never guessed.

Balances are reserved per (venue, asset) while an arbitrage's orders are in flight, because all
legs go out at once and a second arbitrage must not count on money the first is about to spend.
Each leg reserves what it may spend at its limit price, with the fee where the venue takes it from
that asset (a buy on a ``get`` market needs only ``amount * limit`` quote); what legs *receive* is not
counted, since concurrent legs cannot wait for each other. A reservation ends when the venue's
balance reflects the fill (the executor calls ``reserve`` with what is still in flight once the
legs' results are in), so the money is never subtracted twice, once spent and once reserved.

Sequential legs (``trading.sequential_legs``) apply to a *chain*: legs on one venue where each
leg spends the asset the leg before it receives (a cycle such as USDT->BTC->ETH->USDT). Only the
first leg spends inventory, so only the start asset's balance is checked and reserved; the
executor then moves the reservation (``reserve``) onto each asset the chain receives, so no
other arbitrage counts on it before the next leg spends it. Any other opportunity (two venues,
legs that do not chain) runs concurrently and needs every leg's spend, as above.
"""

from __future__ import annotations

import collections.abc as c
import typing as t
from collections import OrderedDict, defaultdict

from arbitrage.book import EPS
from arbitrage.events import Market, Opportunity
from arbitrage.settings import TradingSettings
from arbitrage.valuation import Valuer

Balances = c.Mapping[str, c.Mapping[str, float]]
"""venue -> asset -> free amount."""
Markets = c.Mapping[str, c.Mapping[str, Market]]
"""venue -> symbol -> market."""

_REMEMBERED_IDS = 100_000


class Refusal(t.NamedTuple):
    """Why an opportunity was declined: a stable ``reason`` code and a human ``detail``."""

    reason: str
    detail: str


def requirements(opportunity: Opportunity, markets: Markets, *,
                 sequential: bool = False) -> dict[tuple[str, str], float]:
    """What the legs may spend per (venue, asset): quote for buys at their limit, base for sells,
    each with its fee where the venue takes it from that asset (``Market.reserve``).

    :param sequential: the legs run one after another (see ``chained``): only the first leg
        spends from the balance, the others spend what the chain receives.
    :raises KeyError: if a leg's venue or market is unknown (``admit`` checks that first).
    """
    need: dict[tuple[str, str], float] = defaultdict(float)
    for leg in opportunity.legs[:1] if sequential else opportunity.legs:
        market = markets[leg.venue][leg.symbol]
        asset = market.quote if leg.side == "buy" else market.base
        need[(leg.venue, asset)] += market.reserve(leg.side, leg.amount, leg.price)
    return dict(need)


def chained(opportunity: Opportunity, markets: Markets) -> bool:
    """True when the opportunity is a chain: two or more legs on one venue, each spending the asset
    the leg before it receives (a buy spends the quote and receives the base, a sell the reverse).

    :raises KeyError: if a leg's venue or market is unknown (``admit`` checks that first).
    """
    legs = opportunity.legs
    if len(legs) < 2 or any(leg.venue != legs[0].venue for leg in legs):
        return False
    received = ""
    for i, leg in enumerate(legs):
        market = markets[leg.venue][leg.symbol]
        spent, got = (market.quote, market.base) if leg.side == "buy" else (market.base, market.quote)
        if i and spent != received:
            return False
        received = got
    return True


def at_risk(opportunity: Opportunity, markets: Markets) -> dict[str, float]:
    """What the arbitrage could leave open per asset (its quote currency excluded): the largest leg
    amount in that asset (base amount, or notional at the limit for a quote side), which is what
    stays if that leg fills and the others do not."""
    out: dict[str, float] = {}
    for leg in opportunity.legs:
        market = markets[leg.venue][leg.symbol]
        for asset, amount in ((market.base, leg.amount), (market.quote, leg.amount * leg.price)):
            if asset != opportunity.quote and amount > out.get(asset, 0.0):
                out[asset] = amount
    return out


class RiskGate:
    """Admits or refuses opportunities and holds the state the rules need.

    Not thread-safe: use it from the event loop's thread.
    """

    def __init__(self, settings: TradingSettings, valuer: Valuer | None = None) -> None:
        """
        :param valuer: values notionals and positions in the risk currency from the run's books;
            None = no books, USDT: only amounts of USDT itself can be valued.
        """
        self.settings = settings
        self.valuer = valuer if valuer is not None else Valuer({}, "USDT")
        self._sequential = settings.sequential_legs
        self.open: dict[str, dict[tuple[str, str], float]] = {}
        """Running arbitrages: opportunity id -> what it reserved per (venue, asset)."""
        self.reserved: dict[tuple[str, str], float] = defaultdict(float)
        self.residual: dict[str, float] = defaultdict(float)
        """Unhedged position per asset, summed over finished arbitrages."""
        self.halted = ""
        """Why trading is halted; empty while trading is allowed."""
        self.reconciling: dict[str, str] = {}
        """What start-up reconciliation still waits for: venue (or step) -> why, one line."""
        self.halted_venues: dict[str, set[str]] = {}
        """venue -> client order ids of unknown fate there; the venue trades again once empty."""
        self._seen: OrderedDict[str, None] = OrderedDict()

    def admit(self, opportunity: Opportunity, balances: Balances, markets: Markets) -> Refusal | None:
        """Check every rule; on success reserve the legs' spend and count the arbitrage as open.

        :returns: None when the opportunity may be executed, else the first rule it breaks.
        """
        refusal = self.check(opportunity, balances, markets)
        if refusal is None:
            need = requirements(opportunity, markets, sequential=self.sequential(opportunity, markets))
            for key, amount in need.items():
                self.reserved[key] += amount
            self.open[opportunity.id] = need
            self._seen[opportunity.id] = None
            if len(self._seen) > _REMEMBERED_IDS:
                self._seen.popitem(last=False)
        return refusal

    def check(self, opportunity: Opportunity, balances: Balances, markets: Markets) -> Refusal | None:
        """The rules of ``admit`` without reserving anything (first broken rule, cheapest first)."""
        s = self.settings
        if self.halted:
            return Refusal("halted", self.halted)
        if self.reconciling:
            return Refusal("reconciling", self.reconciling_reason)
        if len(self.open) >= s.max_open_arbs:
            return Refusal("busy", f"{len(self.open)} arbitrages open (max_open_arbs={s.max_open_arbs})")
        if opportunity.id in self._seen:
            return Refusal("duplicate", f"opportunity {opportunity.id} was already executed")
        if not opportunity.legs:
            return Refusal("invalid", "no legs")
        for leg in opportunity.legs:
            if self.halted_venues.get(leg.venue):
                orders = ", ".join(sorted(self.halted_venues[leg.venue]))
                return Refusal("venue_halted", f"{leg.venue} halted: order(s) {orders} of unknown fate")
        for i, leg in enumerate(opportunity.legs):
            if not (leg.amount > 0 and leg.price > 0):
                return Refusal("invalid", f"leg {i}: amount {leg.amount} at price {leg.price}")
            if leg.venue not in balances or leg.venue not in markets:
                return Refusal("unknown_venue", f"leg {i}: no account on {leg.venue}")
            if leg.symbol not in markets[leg.venue]:
                return Refusal("unknown_market", f"leg {i}: {leg.venue} has no market {leg.symbol}")
        currency = self.valuer.currency
        notional = self.valuer.value(opportunity.quote, opportunity.notional)
        if notional is None:
            return Refusal("no price", f"cannot value {opportunity.quote} in {currency}")
        if notional > s.max_notional * (1.0 + 1e-9):
            return Refusal("notional", f"notional {opportunity.notional:.8g} {opportunity.quote} = "
                                       f"{notional:.8g} {currency} > max_notional {s.max_notional:.8g}")
        if s.max_exposure:
            for asset, amount in sorted(at_risk(opportunity, markets).items()):
                limit = s.max_exposure.get(asset)
                if limit is None:
                    continue
                worst = abs(self.residual.get(asset, 0.0)) + amount
                value = self.valuer.value(asset, worst)
                if value is None:
                    return Refusal("no price", f"cannot value {asset} in {currency}")
                if value > limit * (1.0 + 1e-9):
                    return Refusal("exposure", f"{asset} residual {self.residual.get(asset, 0.0):.8g} plus "
                                               f"{amount:.8g} at risk = {value:.8g} {currency} > "
                                               f"max_exposure {limit:.8g}")
        need = requirements(opportunity, markets, sequential=self.sequential(opportunity, markets))
        for (venue, asset), amount in sorted(need.items()):
            free = balances[venue].get(asset, 0.0) - self.reserved.get((venue, asset), 0.0)
            if free < amount:
                return Refusal("balance", f"{venue} has {free:.8g} {asset} free, legs need {amount:.8g}")
        return None

    def sequential(self, opportunity: Opportunity, markets: Markets) -> bool:
        """Whether the legs run one after another: ``sequential_legs`` is on and they form a chain.

        :raises KeyError: if a leg's venue or market is unknown (``check`` tests that first).
        """
        return self._sequential and chained(opportunity, markets)

    def reserve(self, opportunity_id: str, need: c.Mapping[tuple[str, str], float]) -> None:
        """Replace what a running arbitrage holds reserved (a chain moving on to its next asset).

        Does nothing for an arbitrage that is not open.
        """
        held = self.open.get(opportunity_id)
        if held is None:
            return
        self._unreserve(held)
        for key, amount in need.items():
            self.reserved[key] += amount
        self.open[opportunity_id] = dict(need)

    def held_by_others(self, opportunity_id: str, venue: str, asset: str) -> float:
        """What running arbitrages other than ``opportunity_id`` hold reserved of ``asset`` on ``venue``."""
        mine = self.open.get(opportunity_id, {}).get((venue, asset), 0.0)
        return max(self.reserved.get((venue, asset), 0.0) - mine, 0.0)

    def release(self, opportunity_id: str) -> None:
        """End an arbitrage: free its reservations and its open slot (idempotent)."""
        self._unreserve(self.open.pop(opportunity_id, {}))

    def _unreserve(self, need: c.Mapping[tuple[str, str], float]) -> None:
        for key, amount in need.items():
            left = self.reserved.get(key, 0.0) - amount
            if left > EPS:
                self.reserved[key] = left
            else:
                self.reserved.pop(key, None)

    def add_residual(self, residual: c.Mapping[str, float]) -> None:
        """Add what a finished arbitrage left unhedged to the running exposure per asset."""
        for asset, amount in residual.items():
            self.residual[asset] += amount

    def halt(self, reason: str) -> None:
        """Refuse every new opportunity until ``resume`` (running ones finish, hedges included)."""
        self.halted = reason or "halted"

    def resume(self) -> None:
        """Allow trading again after ``halt``."""
        self.halted = ""

    def hold_reconciling(self, key: str, reason: str) -> None:
        """Refuse every opportunity until ``end_reconciling(key)``; ``reason`` (one line) says why
        and may be replaced by calling again."""
        self.reconciling[key] = reason

    def end_reconciling(self, key: str) -> bool:
        """Reconciliation of ``key`` is done; True once nothing is left to reconcile."""
        self.reconciling.pop(key, None)
        return not self.reconciling

    @property
    def reconciling_reason(self) -> str:
        """Why start-up reconciliation holds trading ('' when it does not)."""
        return "; ".join(f"{key}: {why}" for key, why in sorted(self.reconciling.items()))

    def halt_venue(self, venue: str, client_order_id: str) -> None:
        """Refuse every opportunity touching ``venue`` while ``client_order_id``'s fate is unknown."""
        self.halted_venues.setdefault(venue, set()).add(client_order_id)

    def resume_venue(self, venue: str, client_order_id: str) -> bool:
        """The venue told what became of ``client_order_id``; True if ``venue`` trades again."""
        held = self.halted_venues.get(venue, set())
        held.discard(client_order_id)
        if not held:
            self.halted_venues.pop(venue, None)
        return not held
