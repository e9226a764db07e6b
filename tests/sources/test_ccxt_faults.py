"""The ccxt source under the Binance emulator's injected faults, with the unmodified ccxt.pro.

Waits are asserted on the emulator's request log (when each request arrived) against what the
exchange asked, never on how fast our code ran.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from arbitrage.events import FeedStatus
from tests.emulator.binance import BinanceEmulator
from tests.emulator.binance_replay import BinanceReplay
from tests.emulator.core import Fault
from tests.emulator.reference import reference_books
from tests.sources.ccxt_support import Watcher, run, run_engine_on

pytest.importorskip("ccxt.pro")

NKN = "NKN/USDT"
DEPTH = "GET /api/v3/depth"


def _depth_requests(em: BinanceEmulator) -> list[tuple[float, int]]:
    return [(r.ts, r.status) for r in em.exchange.requests if r.endpoint == DEPTH]


@pytest.mark.parametrize("status", [429, 418])
def test_a_rate_limit_answer_is_waited_out_before_the_next_request(tmp_path: Path, status: int) -> None:
    em = BinanceEmulator(replay=BinanceReplay())
    if status == 429:  # Retry-After: 1 (seconds)
        em.exchange.inject(Fault("status", endpoint=DEPTH, status=429, retry_after=1))
        until = None
    else:  # an IP ban: Binance's 418 says until when, in epoch ms
        until = time.time() + 1.2
        message = f"Way too much request weight used; IP banned until {int(until * 1000)}."
        em.exchange.inject(Fault("status", endpoint=DEPTH, status=418, message=message))
    watcher = Watcher(lambda w: len(w.books()) >= 2)
    run(run_engine_on({"binance": em}, tmp_path, watcher, symbols=[NKN], rest=True, rest_interval_s=0.05))
    (refused, code), (next_request, _) = _depth_requests(em)[:2]
    assert code == status
    assert next_request - refused >= (1.0 if until is None else until - refused)
    statuses = watcher.statuses("binance")
    assert statuses[:2] == [("reconnecting", ""), ("connected", "")]
    details = [e.detail for e in watcher.events if isinstance(e, FeedStatus) and e.status == "reconnecting"]
    assert details[0].startswith("rate limit: ")


def test_a_server_error_is_retried_after_a_backoff_not_at_once(tmp_path: Path) -> None:
    em = BinanceEmulator(replay=BinanceReplay())
    em.exchange.inject(Fault("status", endpoint=DEPTH, status=503, times=3))
    watcher = Watcher(lambda w: bool(w.books()))
    run(run_engine_on({"binance": em}, tmp_path, watcher, symbols=[NKN], rest=True,
                      backoff_initial_s=0.1, backoff_max_s=1.0))
    stamps = [ts for ts, _ in _depth_requests(em)]
    assert [code for _, code in _depth_requests(em)][:4] == [503, 503, 503, 200]
    gaps = [b - a for a, b in itertools.pairwise(stamps[:4])]
    # equal jitter: at least half of 0.1, 0.2, 0.4 s
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2
    assert watcher.statuses("binance")[:4] == [("reconnecting", "")] * 3 + [("connected", "")]


def test_a_dropped_websocket_is_announced_reconnected_and_the_books_resume(tmp_path: Path) -> None:
    reference = reference_books("NKNUSDT")
    em = BinanceEmulator(replay=BinanceReplay(pace=0.004))

    def on_event(w: Watcher, event: object) -> None:
        if len(w.books()) == 3 and not em.exchange.faults and len(w.statuses()) == 1:
            em.exchange.inject(Fault("drop_ws"))

    watcher = Watcher(lambda w: any(b.seq == max(reference) for b in w.books()))
    watcher.on_event = on_event
    run(run_engine_on({"binance": em}, tmp_path, watcher, symbols=[NKN]))
    statuses = watcher.statuses("binance")
    assert statuses[:3] == [("connected", ""), ("reconnecting", ""), ("connected", "")]
    assert [r.method for r in em.exchange.requests].count("WS") == 2
    after = [b for b in watcher.books()][3:]
    assert after and all((b.bids[0][0], b.asks[0][0]) == (float(reference[b.seq].bids[0][0]),
                                                         float(reference[b.seq].asks[0][0])) for b in after)


def test_a_sequence_gap_drops_the_book_from_the_store_until_the_resync_brings_it(tmp_path: Path) -> None:
    reference = reference_books("NKNUSDT")
    em = BinanceEmulator(replay=BinanceReplay(pace=0.004))
    seen: dict[str, object] = {}

    def on_event(w: Watcher, event: object) -> None:
        if len(w.books()) == 3 and "gap" not in seen:
            seen["gap"] = True
            em.exchange.inject(Fault("gap", symbol=NKN))
        if isinstance(event, FeedStatus) and event.status == "reconnecting":
            seen["book during resync"] = w.ctx.books.get("binance", NKN)

    watcher = Watcher(lambda w: any(b.seq == max(reference) for b in w.books()))
    watcher.on_event = on_event
    run(run_engine_on({"binance": em}, tmp_path, watcher, symbols=[NKN]))
    reconnecting = next(e for e in watcher.events if isinstance(e, FeedStatus) and e.status == "reconnecting")
    assert reconnecting.detail.startswith("resync: ") and seen["book during resync"] is None
    assert [DEPTH in r.endpoint for r in em.exchange.requests].count(True) == 2  # a new snapshot
    for book in watcher.books():
        state = reference[book.seq]
        assert book.bids == tuple((float(p), float(q)) for p, q in state.bids[:10])


def test_rest_polls_fetch_order_book_and_stamps_books_with_the_receive_time(tmp_path: Path) -> None:
    em = BinanceEmulator(replay=BinanceReplay(start="listen", pace=0.004))
    watcher = Watcher(lambda w: len(w.books()) >= 4)
    run(run_engine_on({"binance": em}, tmp_path, watcher, symbols=[NKN], rest=True, rest_interval_s=0.02))
    assert "WS" not in {r.method for r in em.exchange.requests}
    polls = [r for r in em.exchange.requests if r.endpoint == DEPTH]
    assert len(polls) >= 4 and all(r.params["limit"] == "10" for r in polls)
    for book in watcher.books():
        assert book.ts_event == book.ts_init  # Binance's REST depth carries no time
        assert book.seq in reference_books("NKNUSDT") or book.seq > 0  # lastUpdateId
