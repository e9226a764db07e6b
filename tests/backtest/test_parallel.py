"""Decoding a recording in a second process gives exactly what decoding it in process gives: the
same events in the same order, the same statistics and malformed-line reports, the same backtest.
The size threshold is lowered so these small files take the parallel path."""

from __future__ import annotations

import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from arbitrage.backtest.runner import run_backtest
from arbitrage.errors import DataError
from arbitrage.readers import parallel as decoding
from arbitrage.readers.formats import open_reader
from arbitrage.readers.levels import RawLevels
from tests.backtest._data import settings as backtest_settings

BOOK = (b'{"type":"BookUpdate","venue":"%s","symbol":"%s","bids":[[1.0,1.0],[0.9,2.0]],'
        b'"asks":[[1.1,1.0],[1.2,3.0]],"ts_event":%d,"ts_init":%d}')
MARKETS = (b'{"type":"MarketsLoaded","venue":"v","markets":[{"symbol":"A/B","base":"A","quote":"B",'
           b'"taker_fee":0.001}],"staleness_ms":1000.0,"ts_init":1}')


def read(path: Path, parallel: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[t.Any], dict[str, t.Any]]:
    monkeypatch.setattr(decoding, "MIN_BYTES", 0 if parallel else 1 << 62)
    reader = open_reader(path)
    events = [e for batch in reader.batches() for e in batch]
    return events, reader.stats.to_dict()


def test_every_kind_of_line_comes_out_the_same_as_in_process(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [MARKETS]
    for i in range(3000):  # enough for several messages of several chunks
        line = BOOK % (b"v" if i % 3 else b"w", b"A/B" if i % 5 else b"C/D", i, 1_700_000_000_000_000_000 + i)
        if i % 2:  # the recorder's layout: "ts" (ms) first
            line = b'{"ts":%d,' % (1_700_000_000_000 + i) + line[1:]
        lines.append(line)
        if i == 100:
            lines += [b"", b"not json", BOOK.replace(b"[0.9,2.0]", b"[0.9,-2.0]") % (b"v", b"A/B", i, i),
                      BOOK.replace(b'"A/B"', b'"AB"') % (b"v", b"A/B", i, i),  # not BASE/QUOTE
                      b'{"ts":5,"venue":"v","symbol":"A/B","bids":[[1,2]]}',  # minimal form, one-sided
                      b'{"type":"BookUpdate","venue":"v","symbol":"A/B","bids":[],"asks":[],'
                      b'"ts_event":1,"ts_init":1}', MARKETS]
        if i == 2000:
            lines += [BOOK % (b"x\\u00e9", b"E/F", i, i),  # a new venue name with an escape
                      BOOK.replace(b"[[1.0,1.0],", b"[ [1.0, 1.0] ,") % (b"v", b"A/B", i, i),  # spaces
                      b'{"ts":1.5,' + (BOOK % (b"v", b"A/B", i, i))[1:],  # ts not an integer
                      BOOK.replace(b'"ts_event":%d', b'"ts_event":99999999999999999999') % (b"v", b"A/B", i),
                      BOOK.replace(b'"ts_event":%d', b'"ts_event":-5') % (b"v", b"A/B", i),  # negative
                      BOOK % (b"v", b"v", i, i),  # a symbol named like a known venue: not BASE/QUOTE
                      b'{"venue":"v","symbol":"A/B","bids":[[1,2]],"asks":[[3,4]],"ts":1e20}']  # ns > int64
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    inproc, stats = read(path, False, monkeypatch)
    parallel, parallel_stats = read(path, True, monkeypatch)
    assert parallel == inproc
    assert [type(e).__name__ for e in parallel] == [type(e).__name__ for e in inproc]
    assert parallel_stats == stats
    assert stats["malformed"] == 7 and stats["events"] == len(inproc)
    assert type(parallel[-1].bids) is RawLevels and parallel[-1].bids[1] == (0.9, 2.0)


def test_a_backtest_gives_the_same_result_whichever_process_decodes(
        tmp_path: Path, sim_recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "MIN_BYTES", 1 << 62)
    inproc = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    monkeypatch.setattr(decoding, "MIN_BYTES", 0)
    parallel = run_backtest(backtest_settings(tmp_path), [sim_recording], storage=False)
    assert inproc["arbs_executed"] > 10
    assert parallel == inproc


def test_a_corrupt_compressed_file_fails_with_the_workers_reason(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "broken.jsonl.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\xff" * 5000)  # a zstd magic number, then garbage
    for parallel in (False, True):
        with pytest.raises(DataError, match="corrupt zstd stream"):
            read(path, parallel, monkeypatch)


def test_stopping_early_ends_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\n".join(BOOK % (b"v", b"A/B", i, i) for i in range(200_000)) + b"\n")
    monkeypatch.setattr(decoding, "MIN_BYTES", 0)
    batches = open_reader(path).batches()
    assert next(batches)
    batches.close()  # the worker is terminated and joined: nothing is left running
    import multiprocessing

    assert not multiprocessing.active_children()


SCRIPT = """
from pathlib import Path
import sys
from arbitrage.readers import parallel
from arbitrage.readers.formats import open_reader
parallel.MIN_BYTES = 0
reader = open_reader(Path(sys.argv[1]))
print(sum(len(batch) for batch in reader.batches()), reader.stats.malformed)
"""


def test_a_script_without_a_main_guard_can_replay_a_large_file(tmp_path: Path) -> None:
    """The decoding process is a fresh interpreter: it never runs the caller's script again."""
    path = tmp_path / "books.jsonl"
    path.write_bytes(b"\n".join(BOOK % (b"v", b"A/B", i, i) for i in range(1000)) + b"\n")
    script = tmp_path / "replay_it.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1000", "0"]
