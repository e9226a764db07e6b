"""Bad data files through the `arb` command: one line and exit 2 when nothing can be read, the
skipped records' counts by reason when something can (`arb backtest` and `arb scan`, in their
tables and in `--json`); and no command creates a folder outside the paths it was given."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

import pytest

ARB = [sys.executable, "-m", "arbitrage"]
REPO = Path(__file__).resolve().parents[1]
T = 1_700_000_000_000
GOOD = ('{"ts":%d,"venue":"%s","symbol":"BTC/USDT","bids":[[99.9,1.0],[99.8,1.0]],'
        '"asks":[[100.1,1.0],[100.2,1.0]]}')
MOBOOK_HEADER = ",symbol,timestamp,base,quote,bid_price,bid_volume,ask_price,ask_volume\n"
SNAP_ROW = "0,ETH/BTC,2023-03-02 15:36:06,ETH,BTC,0.06,1,0.07,1\n"


def arb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_") or k == "ARB_INTERPRETED"}
    return subprocess.run([*ARB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def one_line(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["backtest", "scan"])
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_data_file_is_one_line_and_exit_2(tmp_path: Path, command: str, content: str) -> None:
    (tmp_path / "empty.jsonl").write_text(content)
    line = one_line(arb(command, "--data", "empty.jsonl", cwd=tmp_path))
    assert line in ("error: empty.jsonl: empty data file",
                    "error: empty.jsonl: no book in the snapshot (0 rows)")


def test_a_recording_without_one_good_book_is_one_line_with_the_reasons(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text("not json\n" + (GOOD % (T, "A")).replace("99.9", "-99.9") + "\n")
    line = one_line(arb("backtest", "--data", "bad.jsonl", "--json", cwd=tmp_path))
    assert line == "error: bad.jsonl: no book to replay (2 lines, 2 skipped: json 1, level 1)"


@pytest.mark.parametrize("header", ["foo,bar\n", "symbol,volume\n"])
def test_a_bad_csv_header_is_one_line_without_a_traceback(tmp_path: Path, header: str) -> None:
    (tmp_path / "bad.csv").write_text(header + "1,2\n")
    assert one_line(arb("backtest", "--data", "bad.csv", cwd=tmp_path)).startswith(
        "error: bad.csv: not a top-of-book CSV (columns: ")


def test_backtest_shows_the_skipped_records_by_reason_in_json_and_in_its_table(tmp_path: Path) -> None:
    lines = [GOOD % (T + 10 * i, "AB"[i % 2]) for i in range(20)]
    lines[5:5] = ["{truncated", (GOOD % (T + 50, "A")).replace("[99.8,1.0]", "[99.95,1.0]"),
                  (GOOD % (T + 51, "B")).replace("100.1", "inf")]
    (tmp_path / "rec.jsonl").write_text("\n".join(lines) + "\n")
    done = arb("backtest", "--data", "rec.jsonl", "--json", "--db", "bt.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    malformed = json.loads(done.stdout)["malformed"]
    assert malformed["total"] == 3 and malformed["reasons"] == {"json": 2, "unsorted": 1}
    assert malformed["files"][0]["reasons"] == malformed["reasons"]
    table = arb("backtest", "--data", "rec.jsonl", "--db", "bt.db", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "3 (json 2, unsorted 1)" in table.stdout and "rec.jsonl:6: json: " in table.stdout


def test_scan_shows_the_rows_it_skipped_by_reason_in_json_and_under_its_table(tmp_path: Path) -> None:
    rows = ["0,ETH/BTC,2023-03-02 15:36:06.529,ETH,BTC,0.069735,0.012,0.069759,0.05",
            "1,BNB/BTC,2023-03-02 15:36:06.583,BNB,BTC,abc,0.05,0.0127545,3.0",
            "2,BTC/USDT,2023-03-02 15:36:06.583,BTC,USDT,nan,0.05,23000.0,3.0",
            "3,ETH/USDT,2023-03-02 15:36:06.583,ETH,USDT,1600.0,-1,1601.0,3.0"]
    (tmp_path / "snap.csv").write_text(MOBOOK_HEADER + "\n".join(rows) + "\n")
    done = arb("scan", "--data", "snap.csv", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["books"], out["rows"], out["rejected"], out["opportunities"]) == (1, 4, {"level": 3}, [])
    table = arb("scan", "--data", "snap.csv", cwd=tmp_path)
    assert "3 of 4 rows skipped as malformed: level 3" in table.stdout


# -- folders -----------------------------------------------------------------------------------------


def test_no_command_creates_a_folder_outside_the_paths_it_was_given(tmp_path: Path) -> None:
    """Every path a command may write is pointed into ``given/``; afterwards the working folder
    holds ``given/`` and the inputs, nothing else (read-only commands create nothing at all)."""
    work = tmp_path / "work"
    work.mkdir()
    given = work / "given"
    (work / "settings.toml").write_text(
        f'[storage]\npath = "{given}/run/arb.db"\nbacktest_path = "{given}/bt/backtest.db"\n'
        f'[log]\nfile = "{given}/logs/arb.log"\n[monitor]\nhalt_file = "{given}/halt/HALT"\n')
    (work / "rec.jsonl").write_text("\n".join(GOOD % (T + 10 * i, "AB"[i % 2]) for i in range(10)) + "\n")
    (work / "snap.csv").write_text(MOBOOK_HEADER + "0,ETH/BTC,2023-03-02 15:36:06,ETH,BTC,0.06,1,0.07,1\n")
    inputs = {"settings.toml", "rec.jsonl", "snap.csv"}
    read_only = [["scan", "--data", "snap.csv"], ["strategies"], ["report"],
                 ["report", "--db", "nowhere/x.db"], ["logs"], ["logs", "--file", "nowhere/arb.log"],
                 ["resume"]]
    for args in read_only:
        arb(*args, cwd=work)
        assert {p.name for p in work.iterdir()} == inputs, args
    writing = [["backtest", "--data", "rec.jsonl"],
               ["backtest", "--data", "rec.jsonl", "--db", "given/b/x.db"],
               ["record", "--out", "given/rec/r.jsonl", "--duration", "0.5"],
               ["run", "--duration", "0.5", "--no-ui"], ["halt"], ["resume"]]
    for args in writing:
        done = arb(*args, cwd=work)
        assert done.returncode == 0, (args, done.stderr)
        assert {p.name for p in work.iterdir()} == inputs | {"given"}, args
    assert {p.name for p in given.iterdir()} <= {"run", "bt", "logs", "halt", "b", "rec"}


@contextlib.contextmanager
def binance_emulator() -> t.Iterator[str]:
    """A quiet Binance emulator in its own process; yields its base URL."""
    with subprocess.Popen([sys.executable, "-m", "tests.emulator", "binance", "--port", "0", "--scenario",
                           "quiet"], stdout=subprocess.PIPE, text=True, cwd=REPO) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.kill()
            proc.communicate()


def created(args: list[str], code: int | None = None) -> set[str]:
    """What ``arb ARGS`` leaves in an empty working folder (no settings file: every default)
    besides its inputs, as top-level names."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "rec.jsonl").write_text("\n".join(GOOD % (T + 10 * i, "AB"[i % 2]) for i in range(10)) + "\n")
        (work / "snap.csv").write_text(MOBOOK_HEADER + SNAP_ROW)
        done = arb(*args, cwd=work)
        if code is not None:
            assert done.returncode == code, (args, done.stderr)
        return {p.name for p in work.iterdir()} - {"rec.jsonl", "snap.csv"}


def test_with_the_default_paths_a_command_creates_only_the_folders_it_writes_into() -> None:
    """The documented defaults (``logs/arb.log``, ``data/backtest.db``, ``data/HALT``,
    ``data/markets``, ``profiles/``) are paths the user was given; but a command creates a folder
    only for a file it writes: none for one that fails before doing anything, reads, or only talks
    to a server (``notify test``, ``redis tail``)."""
    nothing = [
        (["scan", "--data", "snap.csv"], 0), (["strategies"], 0), (["report"], 2), (["logs"], 2),
        (["resume"], 0),
        (["notify", "test"], 2), (["notify", "test", "--notify", "json://127.0.0.1:1/"], 1),
        (["redis", "tail", "--redis", "redis://127.0.0.1:1"], 1),
        (["run", "--strategy", "nope", "--db", "x.db", "--no-ui"], 2),  # the log file opened, unused
        (["backtest", "--data", "missing.jsonl"], 2),
        (["optimize", "--data", "missing.jsonl", "--grid", "min_profit_bps=1,2", "--save", "p1"], 2),
        (["check", "--exchanges", "binance", "--exchange-url", "binance=http://127.0.0.1:1"], 1),
    ]
    for args, code in nothing:
        assert created(args, code) == set(), args
    assert created(["run", "--db", "x.db", "--duration", "0.5", "--no-ui"], 0) == {"x.db", "logs"}
    assert created(["backtest", "--data", "rec.jsonl"], 0) == {"data", "logs"}
    assert created(["optimize", "--data", "rec.jsonl", "--grid", "min_profit_bps=1,2", "--save", "p1"],
                   0) == {"profiles"}
    assert created(["halt"], 0) == {"data"}


def test_the_ccxt_commands_create_the_markets_cache_only_when_they_load_markets() -> None:
    """Against a loopback emulator: ``check`` loads no cached markets and creates nothing; a live
    ``scan`` and a ccxt ``run`` write ``data/markets`` (the ``ccxt.markets_cache`` default)."""
    with binance_emulator() as url:
        venue = ["--exchange-url", f"binance={url}"]
        assert created(["check", "--exchanges", "binance", *venue], 0) == set()
        assert created(["scan", "--exchange", "binance", "--symbols", "BTC/USDT", *venue], 0) == {"data"}
        assert created(["run", "--source", "ccxt", "--exchanges", "binance", "--symbols", "BTC/USDT", *venue,
                        "--duration", "1", "--no-ui", "--db", "x.db"], 0) == {"x.db", "logs", "data"}
