"""Rate limits: a 429 storm during an arbitrage, a 418 ban, Kraken's ``EAPI:Rate limit exceeded``
(HTTP 200) on both venues at once. The run backs off for what the venue asked (``Retry-After``:
no request reaches the venue inside it), looks the order up instead of resending it, and hedges
what the other leg filled."""

from __future__ import annotations

from pathlib import Path

from tests.emulator.core import Fault
from tests.faults.harness import ORDER_ENDPOINT, B, Desk, K, Outcome, assert_end_state, trade

SLACK_S = 0.02
"""Clock slack between the run's hold (monotonic) and the emulator's request times (wall clock)."""


def rest(outcome: Outcome, venue: str) -> list[tuple[float, int, str]]:
    """(time, status, endpoint) of every REST request the venue saw from the first order on."""
    records = [r for r in outcome.exchange(venue).requests if r.method in ("GET", "POST", "DELETE")]
    first = next(i for i, r in enumerate(records) if r.endpoint == ORDER_ENDPOINT[venue])
    return [(r.ts, r.status, r.endpoint) for r in records[first:]]


def assert_backed_off(outcome: Outcome, venue: str, status: int, wait_s: float) -> int:
    """After every answer ``status`` the venue's next request came at least ``wait_s`` later;
    returns how many such answers there were."""
    requests = rest(outcome, venue)
    limited = [i for i, (_, s, _) in enumerate(requests) if s == status]
    for i in limited:
        if i + 1 < len(requests):
            gap = requests[i + 1][0] - requests[i][0]
            assert gap >= wait_s - SLACK_S, f"{venue}: asked again {gap:.3f} s after a {status}: {requests}"
    return len(limited)


def test_a_429_storm_during_an_arbitrage_is_waited_out_not_hammered(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        # every Binance request answers 429 "wait 0.3 s", six times over
        desk.binance.exchange.inject(Fault("status", endpoint="*", status=429, retry_after=0.3, times=6))
        desk.dislocate()
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    assert assert_backed_off(outcome, B, 429, 0.3) == 6
    [result] = outcome.results()
    leg = result.legs[0].client_order_id
    assert outcome.sent(B).count(leg) == 1  # looked up through the storm, never resent
    assert [(r.venue, r.status) for r in result.legs[:2]] == [(B, "rejected"), (K, "filled")]
    assert result.legs[2:] and all(r.purpose == "hedge" and r.venue == B for r in result.legs[2:])


def test_a_418_ban_is_honoured_no_request_inside_it(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        desk.binance.exchange.inject(Fault("status", endpoint=ORDER_ENDPOINT[B], status=418, retry_after=1.0))
        desk.dislocate()
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    assert assert_backed_off(outcome, B, 418, 1.0) == 1
    [result] = outcome.results()
    assert [(r.venue, r.status) for r in result.legs[:2]] == [(B, "rejected"), (K, "filled")]
    assert outcome.sent(B).count(result.legs[0].client_order_id) == 1
    assert result.legs[2:] and all(r.purpose == "hedge" for r in result.legs[2:])


def test_both_venues_rate_limit_the_submit_nothing_is_placed_or_left_open(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        desk.binance.exchange.inject(Fault("status", endpoint=ORDER_ENDPOINT[B], status=429, retry_after=0.5))
        # Kraken's way: HTTP 200 with {"error": ["EAPI:Rate limit exceeded"]}, no Retry-After
        desk.kraken.exchange.inject(Fault("status", endpoint=ORDER_ENDPOINT[K], status=429))
        desk.dislocate()
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    assert assert_backed_off(outcome, B, 429, 0.5) == 1
    kraken = rest(outcome, K)
    assert kraken[0][1:] == (200, ORDER_ENDPOINT[K]) and kraken[1][0] - kraken[0][0] >= 0.5
    [result] = outcome.results()
    assert result.status == "failed" and [(r.venue, r.status) for r in result.legs] == [
        (B, "rejected"), (K, "rejected")]
    assert outcome.orders(B) == [] and outcome.orders(K) == []
    assert [outcome.sent(v) for v in (B, K)] == [[leg.client_order_id] for leg in result.legs]
