"""Small event builders shared by the storage and report tests."""

from __future__ import annotations

import typing as t

from arbitrage.events import (
    Alert,
    ArbResult,
    ArbState,
    ArbStateChanged,
    BookUpdate,
    Fill,
    Leg,
    LegResult,
    Opportunity,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
    Position,
    PositionUpdate,
)
from arbitrage.settings import Settings, StorageSettings


def settings_for(path: t.Any, **storage: t.Any) -> Settings:
    return Settings(storage=StorageSettings(path=str(path), **storage))


def opportunity(oid: str, *, symbol: str = "BTC/USDT", profit: float = 1.0, quote: str = "USDT",
                venues: tuple[str, str] = ("alpha", "beta"), ts: int = 1) -> Opportunity:
    legs = (Leg(venue=venues[0], symbol=symbol, side="buy", amount=0.01, price=100.0, expected_price=99.9,
                fee_rate=0.001),
            Leg(venue=venues[1], symbol=symbol, side="sell", amount=0.01, price=101.0, expected_price=101.1,
                fee_rate=0.001))
    return Opportunity(id=oid, strategy="cross_exchange", legs=legs, profit=profit, profit_bps=10.0,
                       quote=quote, notional=1.0, book_ts=(ts, ts), ts_event=ts, ts_init=ts + 1)


def submitted(coid: str, oid: str, *, venue: str = "alpha", symbol: str = "BTC/USDT", side: t.Any = "buy",
              price: float = 100.0, amount: float = 0.01, ts: int = 10) -> OrderSubmitted:
    return OrderSubmitted(client_order_id=coid, opportunity_id=oid, venue=venue, symbol=symbol, side=side,
                          amount=amount, price=price, ts_init=ts)


def update(coid: str, oid: str, *, venue: str = "alpha", symbol: str = "BTC/USDT", side: t.Any = "buy",
           status: t.Any = "filled", amount: float = 0.01, filled: float = 0.01, average_price: float = 100.0,
           fee: float = 0.001, ts: int = 20, fee_currency: str = "") -> OrderUpdate:
    return OrderUpdate(client_order_id=coid, opportunity_id=oid, venue=venue, symbol=symbol, side=side,
                       status=status, amount=amount, filled=filled, average_price=average_price, fee=fee,
                       fee_currency=fee_currency, ts_event=ts, ts_init=ts)


def fill(coid: str, oid: str, *, venue: str = "alpha", price: float = 100.0, amount: float = 0.01,
         fee: float | None = None, fee_currency: str = "USDT") -> Fill:
    return Fill(client_order_id=coid, opportunity_id=oid, venue=venue, symbol="BTC/USDT", side="buy",
                price=price, amount=amount, fee=price * amount * 0.001 if fee is None else fee,
                fee_currency=fee_currency, ts_event=5, ts_init=6)


def leg_result(coid: str, venue: str, *, symbol: str = "BTC/USDT", side: t.Any = "buy", filled: float = 0.01,
               average_price: float = 100.0, fee: float = 0.001, purpose: str = "leg") -> LegResult:
    return LegResult(client_order_id=coid, venue=venue, symbol=symbol, side=side, amount=0.01, filled=filled,
                     average_price=average_price, fee=fee, status="filled" if filled else "canceled",
                     purpose=purpose)


def result(oid: str, *, realized: float, expected: float = 1.0, fees: float = 0.1, quote: str = "USDT",
           status: t.Any = "complete", legs: tuple[LegResult, ...] | None = None,
           residual: dict[str, float] | None = None, ts: int = 30, unrealized: float = 0.0) -> ArbResult:
    if legs is None:
        legs = (leg_result(f"{oid}-b", "alpha"), leg_result(f"{oid}-s", "beta", side="sell"))
    return ArbResult(opportunity_id=oid, strategy="cross_exchange", status=status, legs=legs, quote=quote,
                     expected_profit=expected, realized_profit=realized, fees=fees,
                     slippage=expected - realized - unrealized, residual=residual or {},
                     unrealized_profit=unrealized, ts_init=ts)


def position(*, venue: str = "alpha", asset: str = "BTC", quote: str = "USDT", amount: float = 0.6,
             cost: float = 60.06, mark: float = 99.0, stale: bool = False, realized: float = 0.0,
             ts: int = 31) -> PositionUpdate:
    return PositionUpdate(position=Position(venue=venue, asset=asset, quote=quote, amount=amount, cost=cost,
                                            mark=mark, stale=stale), realized=realized, ts_init=ts)


def rejected(oid: str, reason: str = "busy") -> OpportunityRejected:
    return OpportunityRejected(opportunity_id=oid, reason=reason, ts_init=3)


def alert(key: str = "feed.stale", level: t.Any = "warning", message: str = "feed stale") -> Alert:
    return Alert(key=key, level=level, message=message, ts_init=4)


def book(venue: str = "alpha", symbol: str = "BTC/USDT", ts: int = 1) -> BookUpdate:
    return BookUpdate(venue=venue, symbol=symbol, bids=((99.0, 1.0),), asks=((101.0, 1.0),), ts_event=ts,
                      ts_init=ts)


def state(oid: str, state: ArbState, *, reason: str = "", ts: int = 40) -> ArbStateChanged:
    return ArbStateChanged(opportunity_id=oid, state=state, reason=reason, ts_init=ts)
