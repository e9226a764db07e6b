"""Bad input never crashes a replay, never trades, and every record skipped is counted by reason.

The property: a recording with malformed records mixed in (broken levels, records out of their
place, truncated JSON, wrong types) backtests exactly as the same recording without them (same
opportunities, same arbitrages, same fingerprint), and ``malformed.reasons`` counts each one under
its reason. The known gaps of issue 14 have a test each.
"""

from __future__ import annotations

import collections
import json
import typing as t
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbitrage.backtest.runner import run_backtest
from arbitrage.readers import parallel as decoding
from tests.backtest._data import T, backtest, line, write
from tests.backtest._data import settings as backtest_settings

DAY_NS = 86_400 * 1_000_000_000
MS = 1_000_000


def exact(ms: int, venue: str, bids: t.Any, asks: t.Any, symbol: str = "BTC/USDT", **extra: t.Any) -> str:
    """A line in the recorder's own layout (what ``arb record`` writes)."""
    ns = ms * MS
    fields = {"ts": ms, "type": "BookUpdate", "venue": venue, "symbol": symbol, "bids": bids, "asks": asks,
              "ts_event": ns, "ts_init": ns, **extra}
    return json.dumps(fields, separators=(",", ":"))


@st.composite
def clean_recording(draw: st.DrawFn) -> list[tuple[int, str]]:
    """(ms, line) of books of venues A and B on BTC/USDT, in time order; some dislocated (A's asks
    below B's bids by 1 %, which pays both fees), in either line form."""
    out = []
    ms = T
    for _ in range(draw(st.integers(12, 40))):
        ms += draw(st.integers(1, 400))
        venue = draw(st.sampled_from("AB"))
        mid = 100.0 + draw(st.sampled_from([0.0, 0.0, 0.0, -1.0, 1.0]))
        amounts = draw(st.lists(st.sampled_from([0.5, 1.0, 2.5]), min_size=6, max_size=6))
        bids = [[round(mid - 0.1 * (i + 1), 2), amounts[i]] for i in range(3)]
        asks = [[round(mid + 0.1 * (i + 1), 2), amounts[3 + i]] for i in range(3)]
        form = exact if draw(st.booleans()) else line
        out.append((ms, form(ms, venue, bids, asks)))
    return out


GOOD_BIDS, GOOD_ASKS = [[99.9, 1.0], [99.8, 1.0]], [[100.1, 1.0], [100.2, 1.0]]
BAD: dict[str, list[t.Callable[[int], str]]] = {
    "level": [
        lambda ms: exact(ms, "A", [[0, 1.0]], GOOD_ASKS),
        lambda ms: exact(ms, "A", GOOD_BIDS, [[100.1, -1.0]]),
        lambda ms: exact(ms, "B", [[123.25, 1.0]], GOOD_ASKS).replace("123.25", "1e999"),  # inf as a float
        lambda ms: line(ms, "B", [[99.9, 0.0]], GOOD_ASKS),
        lambda ms: line(ms, "A", GOOD_BIDS, [[-100.1, 1.0]]),
        lambda ms: line(ms, "A", GOOD_BIDS, [[123.25, 1.0]]).replace("123.25", "1e999"),
        lambda ms: line(ms, "B", [[99.9, "1"]], GOOD_ASKS),
        lambda ms: line(ms, "B", [[99.9]], GOOD_ASKS),
    ],
    "unsorted": [
        lambda ms: exact(ms, "A", [[99.8, 1.0], [99.9, 1.0]], GOOD_ASKS),
        lambda ms: exact(ms, "B", GOOD_BIDS, [[100.1, 1.0], [100.1, 2.0]]),  # a price twice
        lambda ms: line(ms, "A", GOOD_BIDS, [[100.2, 1.0], [100.1, 1.0]]),
    ],
    "empty": [lambda ms: exact(ms, "A", [], []), lambda ms: line(ms, "B", [], [])],
    "json": [
        lambda ms: exact(ms, "A", GOOD_BIDS, GOOD_ASKS)[:40],  # truncated
        lambda ms: exact(ms, "A", GOOD_BIDS, GOOD_ASKS).replace("99.9", "NaN"),
        lambda ms: "\x00\xff garbage",
    ],
    "schema": [
        lambda ms: exact(ms, "A", GOOD_BIDS, GOOD_ASKS).replace('"venue":"A"', '"venue":5'),
        lambda ms: line(ms, "A", GOOD_BIDS, GOOD_ASKS, ts_init="soon"),
        lambda ms: json.dumps({"ts": ms, "symbol": "BTC/USDT", "bids": GOOD_BIDS, "asks": GOOD_ASKS}),
        lambda ms: line(ms, "A", GOOD_BIDS, GOOD_ASKS, ts_event=-1),
    ],
    "symbol": [lambda ms: exact(ms, "A", GOOD_BIDS, GOOD_ASKS, symbol="BTCUSDT")],
    "type": [lambda ms: line(ms, "A", GOOD_BIDS, GOOD_ASKS, type="Trade")],
    "timestamp": [lambda ms: json.dumps({"venue": "A", "symbol": "BTC/USDT", "bids": GOOD_BIDS,
                                         "asks": GOOD_ASKS})],
    "future": [lambda ms: exact(ms + DAY_NS // MS, "A", [[150.0, 9.0]], [[150.1, 9.0]]),
               lambda ms: line(ms + 7 * DAY_NS // MS, "B", [[50.0, 9.0]], [[50.1, 9.0]])],
}
"""Malformed records by the reason they are counted under; each a function of a time (ms)."""


@st.composite
def dirty_recording(draw: st.DrawFn) -> tuple[list[str], list[str], collections.Counter[str]]:
    """A clean recording, the same with bad records mixed in, and the reasons they count under. A
    far-future record has at least five books after it (a book far ahead at the very end of a file
    cannot be told from data that resumed after a gap)."""
    clean = draw(clean_recording())
    dirty = [text for _, text in clean]
    expected: collections.Counter[str] = collections.Counter()
    futures = 0
    for _ in range(draw(st.integers(1, 12))):
        reason = draw(st.sampled_from(sorted(BAD)))
        if reason == "future" and futures == 2:
            continue
        make = draw(st.sampled_from(BAD[reason]))
        limit = len(clean) - 5 if reason == "future" else len(clean)
        at = draw(st.integers(1, limit))
        # the time of the book before it: a record out of place is as late as its neighbours
        dirty.insert(dirty.index(clean[at - 1][1]) + 1, make(clean[at - 1][0]))
        expected[reason] += 1
        futures += reason == "future"
    return [text for _, text in clean], dirty, expected


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dirty_recording())
def test_bad_records_are_skipped_counted_by_reason_and_change_no_trade(
        tmp_path: Path, case: tuple[list[str], list[str], collections.Counter[str]]) -> None:
    clean, dirty, expected = case
    want = run_backtest(backtest_settings(tmp_path), [write(tmp_path / "clean.jsonl", clean)], storage=False)
    got = run_backtest(backtest_settings(tmp_path), [write(tmp_path / "dirty.jsonl", dirty)], storage=False)
    assert got["malformed"]["reasons"] == dict(expected)
    assert got["malformed"]["total"] == sum(expected.values())
    assert (got["events"], got["opportunities"], got["rejected"]) == (
        want["events"], want["opportunities"], want["rejected"])
    assert got["arbs"] == want["arbs"] and got["fingerprint"] == want["fingerprint"]
    assert got["handler_errors"] == 0 and got["out_of_order"] == 0


def test_the_decoding_process_counts_the_same_reasons(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [exact(T + i, "AB"[i % 2], GOOD_BIDS, GOOD_ASKS) for i in range(200)]
    expected: collections.Counter[str] = collections.Counter()
    for i, (reason, makers) in enumerate(sorted(BAD.items())):
        for j, make in enumerate(makers):
            lines.insert(10 + 15 * i + j, make(T + 10 + 15 * i + j))
            expected[reason] += 1
    path = write(tmp_path / "dirty.jsonl", lines)
    results = []
    for threshold in (1 << 62, 0):  # in process, then in the decoding process
        monkeypatch.setattr(decoding, "MIN_BYTES", threshold)
        results.append(run_backtest(backtest_settings(tmp_path), [path], storage=False))
    assert results[0]["malformed"]["reasons"] == dict(expected)
    assert results[1]["malformed"] == results[0]["malformed"]
    assert results[0]["events"] == 200


# -- the known gaps, one test each ----------------------------------------------------------------


def test_one_book_a_day_ahead_is_skipped_and_counted_not_taken_as_the_clock(
        tmp_path: Path, sim_recording: Path) -> None:
    lines = sim_recording.read_text().splitlines()
    middle = len(lines) // 3
    book = json.loads(lines[middle])
    assert book["type"] == "BookUpdate"
    for key, shift in (("ts", DAY_NS // MS), ("ts_event", DAY_NS), ("ts_init", DAY_NS)):
        book[key] += shift
    dirty = [*lines[:middle], json.dumps(book, separators=(",", ":")), *lines[middle + 1:]]
    clean = lines[:middle] + lines[middle + 1:]
    want = run_backtest(backtest_settings(tmp_path), [write(tmp_path / "clean.jsonl", clean)], storage=False)
    got = run_backtest(backtest_settings(tmp_path), [write(tmp_path / "dirty.jsonl", dirty)], storage=False)
    assert want["arbs_executed"] > 10
    assert got["malformed"]["reasons"] == {"future": 1} and got["out_of_order"] == 0
    assert got["fingerprint"] == want["fingerprint"] and got["events"] == want["events"]
    assert got["malformed"]["files"][0]["examples"][0]["reason"].startswith("future: ")


def test_data_that_resumes_after_a_gap_moves_the_clock_on(tmp_path: Path) -> None:
    hour = 3_600_000
    lines = [line(T + 10 * i, "AB"[i % 2], GOOD_BIDS, GOOD_ASKS) for i in range(10)]
    lines += [line(T + 2 * hour + 10 * i, "AB"[i % 2], GOOD_BIDS, GOOD_ASKS) for i in range(3)]
    result = backtest(tmp_path, lines)
    assert result["events"] == 13 and result["malformed"]["total"] == 0
    assert result["last_ts"] == T + 2 * hour + 20


def test_a_first_book_far_ahead_of_the_rest_is_skipped(tmp_path: Path) -> None:
    lines = [line(T + DAY_NS // MS, "A", GOOD_BIDS, GOOD_ASKS)]
    lines += [line(T + 10 * i, "AB"[i % 2], GOOD_BIDS, GOOD_ASKS) for i in range(10)]
    result = backtest(tmp_path, lines)
    assert result["malformed"]["reasons"] == {"future": 1}
    assert (result["events"], result["first_ts"], result["out_of_order"]) == (10, T, 0)


def test_a_book_far_behind_the_clock_is_replayed_late_and_counted(tmp_path: Path) -> None:
    lines = [line(T + 10 * i, "AB"[i % 2], GOOD_BIDS, GOOD_ASKS) for i in range(10)]
    lines.insert(5, line(T - DAY_NS // MS, "A", GOOD_BIDS, GOOD_ASKS))
    result = backtest(tmp_path, lines)
    assert (result["events"], result["out_of_order"], result["malformed"]["total"]) == (11, 1, 0)


@pytest.mark.parametrize("form", [exact, line])
def test_levels_out_of_order_in_a_recording_reject_the_line(tmp_path: Path,
                                                            form: t.Callable[..., str]) -> None:
    lines = [form(T, "A", GOOD_BIDS, GOOD_ASKS), form(T + 1, "B", [[99.8, 1.0], [99.9, 1.0]], GOOD_ASKS),
             form(T + 2, "B", GOOD_BIDS, [[100.2, 1.0], [100.1, 1.0]])]
    result = backtest(tmp_path, lines)
    assert result["events"] == 1 and result["malformed"]["reasons"] == {"unsorted": 2}
