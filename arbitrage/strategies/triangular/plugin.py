"""The ``triangular`` strategy plugin: one ``TriangularDetector`` per venue, opportunities out.

Each detector is built from the venue's ``MarketsLoaded`` (``detector``): a ``BookUpdate`` tests
only the cycles through its market at top of book, and sizes the few that pass by walking depth
(``sizing``) on the engine's book store (``Context.books``). Each profitable cycle becomes one
``Opportunity`` with a leg per market, its profit and notional in the cycle's starting asset
(``Opportunity.quote``).

Balances: ``BalanceUpdate`` events cap every leg's input (legs go out concurrently from inventory);
with ``trading.sequential_legs`` only the starting asset's balance limits the size. Without any
balance event there is no balance cap. ``max_notional`` is the smaller of the strategy's and the
trading settings', an amount of ``risk.currency`` (each cycle's start asset valued from the books);
leg limits reach ``strategy.limit_slippage_bps`` past the last level walked (``detector``).
"""

from __future__ import annotations

import itertools
import typing as t

from arbitrage.events import BalanceUpdate, BookUpdate, Leg, MarketsLoaded, Opportunity
from arbitrage.plugin import Context, Plugin
from arbitrage.strategies.triangular.detector import TriangularDetector
from arbitrage.strategies.triangular.sizing import Found

__all__ = ["TriangularStrategy"]


class TriangularStrategy(Plugin):
    """Three markets, one venue: trade around a cycle of assets when the rates pay all fees."""

    name = "triangular"
    kind = "strategy"
    description = "Cycles of three markets on one venue (e.g. USDT->BTC->ETH->USDT) that pay all taker fees."

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        cfg = ctx.settings.strategy
        self.min_profit_bps = cfg.min_profit_bps
        self.max_notional = min(cfg.max_notional, ctx.settings.trading.max_notional)
        self.cooldown_ms = cfg.cooldown_ms
        self.max_legs = int(getattr(cfg, "max_legs", 3))
        start = getattr(cfg, "start_assets", None)
        self.start_assets: tuple[str, ...] | None = tuple(start) if start else None
        self.sequential = bool(getattr(ctx.settings.trading, "sequential_legs", False))
        self.detectors: dict[str, TriangularDetector] = {}
        self._balances: dict[str, dict[str, float]] = {}
        self._ids = itertools.count(1)
        self.updates = 0
        self.emitted = 0
        ctx.bus.subscribe(MarketsLoaded, self.on_markets, name=self.name)
        ctx.bus.subscribe(BalanceUpdate, self.on_balances, name=self.name)
        ctx.bus.subscribe(BookUpdate, self.on_book, name=self.name)

    def on_markets(self, event: MarketsLoaded) -> None:
        """Build the venue's cycle index (replacing any earlier one and its rates)."""
        detector = TriangularDetector(
            event.venue, event.markets, self.ctx.books, min_profit_bps=self.min_profit_bps,
            max_notional=self.max_notional, staleness_ms=event.staleness_ms, max_legs=self.max_legs,
            start_assets=self.start_assets, sequential=self.sequential, cooldown_ms=self.cooldown_ms,
            currency=self.ctx.settings.risk.currency,
            limit_slippage_bps=self.ctx.settings.strategy.limit_slippage_bps)
        detector.set_balances(self._balances.get(event.venue))
        self.detectors[event.venue] = detector
        self.ctx.log.info("triangular: {} cycles over {} markets on {}", len(detector.index),
                          len(event.markets), event.venue)

    def on_balances(self, event: BalanceUpdate) -> None:
        self._balances[event.venue] = event.balances
        detector = self.detectors.get(event.venue)
        if detector is not None:
            detector.set_balances(event.balances)

    def on_book(self, book: BookUpdate) -> None:
        """Evaluate the cycles through the updated market; publish an ``Opportunity`` per paying one."""
        detector = self.detectors.get(book.venue)
        if detector is None:
            return
        self.updates += 1
        now = self.ctx.clock.time_ns()
        found = detector.update(book, now)
        for item in found:
            self._emit(detector, item, now)

    def _emit(self, detector: TriangularDetector, found: Found, now: int) -> None:
        self.emitted += 1
        venue = detector.venue
        self.ctx.bus.publish(Opportunity(
            id=f"{self.ctx.run_id}-tri{next(self._ids)}",
            strategy=self.name,
            legs=tuple(Leg(venue=venue, symbol=leg.symbol, side=leg.side, amount=leg.amount, price=leg.price,
                           expected_price=leg.expected_price, fee_rate=leg.fee_rate) for leg in found.legs),
            profit=found.profit,
            profit_bps=found.profit_bps,
            quote=found.cycle.start,
            notional=found.spent,
            book_ts=found.book_ts,
            ts_event=max(found.book_ts),
            ts_init=now,
        ))

    def summary(self) -> dict[str, t.Any]:
        ds = self.detectors.values()
        return {
            "venues": len(self.detectors),
            "cycles": sum(len(d.index) for d in ds),
            "updates": self.updates,
            "cycles_sized": sum(d.passed for d in ds),
            "opportunities": self.emitted,
            "stale_books_skipped": sum(d.skipped_stale for d in ds),
            "crossed_books_skipped": sum(d.skipped_crossed for d in ds),
            "malformed_books_skipped": sum(d.skipped_malformed for d in ds),
            "cooldown_skipped": sum(d.skipped_cooldown for d in ds),
        }
