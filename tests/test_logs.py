from __future__ import annotations

import json
import sys
import threading
import typing as t
from pathlib import Path

import pytest
from loguru import logger

from arbitrage.errors import DataError, SettingsError
from arbitrage.logs import follow_log, format_record, level_number, read_log, setup_logging
from arbitrage.settings import LogSettings


@pytest.fixture(autouse=True)
def restore_loguru() -> t.Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.__stderr__)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "arb.log"


def lines(path: Path) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def sample(path: Path) -> None:
    """Six records over two runs, two venues, every level from DEBUG up."""
    setup_logging(LogSettings(file=str(path), level="DEBUG"), console=False)
    r1 = logger.bind(run_id="20240101-aaa")
    r1.debug("debug line")
    r1.bind(venue="alpha", symbol="BTC/USDT").info("book ready")
    r1.bind(venue="beta", symbol="ETH/USDT", opportunity_id="opp-17").warning("leg rejected: min notional")
    r2 = logger.bind(run_id="20240102-bbb")
    r2.bind(venue="alpha", symbol="BTC/USDT").error("order failed")
    r2.critical("halting")
    r2.success("recovered")


def test_setup_logging_writes_json_lines_with_extras(log_path: Path) -> None:
    setup_logging(LogSettings(file=str(log_path)), console=False)
    logger.bind(run_id="r1", venue="alpha").info("hello {}", "world")
    logger.bind(level="clash").warning("second")
    [first, second] = lines(log_path)
    assert first["message"] == "hello world"
    assert first["level"] == "INFO"
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert (first["run_id"], first["venue"]) == ("r1", "alpha")
    assert first["where"].startswith("tests.test_logs:")
    assert second["level"] == "WARNING" and second["extra_level"] == "clash"


def test_setup_logging_twice_replaces_the_handlers(log_path: Path) -> None:
    first = setup_logging(LogSettings(file=str(log_path)), console=False)
    second = setup_logging(LogSettings(file=str(log_path)), console=False)
    logger.info("once")
    assert [r["message"] for r in lines(log_path)] == ["once"]
    with pytest.raises(ValueError):
        logger.remove(first[0])
    assert len(second) == 1


def test_setup_logging_level_and_override(log_path: Path) -> None:
    setup_logging(LogSettings(file=str(log_path), level="DEBUG"), console=False, level_override="warning")
    logger.info("hidden")
    logger.warning("shown")
    assert [r["message"] for r in lines(log_path)] == ["shown"]
    with pytest.raises(SettingsError):
        setup_logging(LogSettings(file=str(log_path)), level_override="LOUD")


def test_setup_logging_without_file_writes_no_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(file=""), console=True)
    logger.info("to console only")
    assert "to console only" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_console_sink_is_short_and_shows_context(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(file=str(log_path)), console=True)
    logger.bind(run_id="r1", venue="alpha", symbol="BTC/USDT", opportunity_id="o9").warning("stale {x}", x=3)
    logger.info("plain")
    err = capsys.readouterr().err.splitlines()
    assert err[0].split()[1:4] == ["WARNING", "stale", "3"]
    assert err[0].endswith("run=r1 opp=o9 venue=alpha symbol=BTC/USDT")
    assert err[1].split(maxsplit=1)[1] == "INFO     plain"


def test_json_console_writes_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(file=""), console=True, json_console=True)
    logger.bind(venue="alpha").info("machine")
    record = json.loads(capsys.readouterr().err)
    assert (record["message"], record["venue"]) == ("machine", "alpha")


def test_secrets_are_redacted_in_file_and_console(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(file=str(log_path)), console=True)
    logger.info("connecting with apiKey=KEY-111 to https://bob:PASS-222@exchange.example/ws")
    logger.bind(api_secret="SECRET-333", url="tgram://TOKEN-444/chat").info("bound")
    try:
        raise ConnectionError("auth failed for redis://:PASS-555@localhost:6379")
    except ConnectionError:
        logger.exception("lost connection")
    text = log_path.read_text() + capsys.readouterr().err
    for secret in ("KEY-111", "PASS-222", "SECRET-333", "TOKEN-444", "PASS-555"):
        assert secret not in text
    records = lines(log_path)
    assert "exchange.example/ws" in records[0]["message"]
    assert records[2]["exception"].startswith("Traceback") and "ConnectionError" in records[2]["exception"]


def test_read_log_level_is_at_or_above(log_path: Path) -> None:
    sample(log_path)
    assert len(list(read_log(log_path))) == 6
    assert [r["level"] for r in read_log(log_path, level="warning")] == ["WARNING", "ERROR", "CRITICAL"]
    assert [r["level"] for r in read_log(log_path, level="SUCCESS")] == ["WARNING", "ERROR", "CRITICAL",
                                                                          "SUCCESS"]


def test_read_log_filters_by_grep_run_venue_symbol_opportunity(log_path: Path) -> None:
    sample(log_path)

    def messages(**filters: t.Any) -> list[str]:
        return [r["message"] for r in read_log(log_path, **filters)]

    assert messages(grep="REJECTED") == ["leg rejected: min notional"]
    assert messages(grep="order|book") == ["book ready", "order failed"]
    assert messages(grep="[unclosed") == []  # not a valid regex: searched literally
    assert messages(grep="eth/usdt") == ["leg rejected: min notional"]  # extras are searched too
    assert messages(run="20240102") == ["order failed", "halting", "recovered"]
    assert messages(venue="ALPHA") == ["book ready", "order failed"]
    assert messages(venue="alpha", run="20240101-aaa") == ["book ready"]
    assert messages(symbol="eth/usdt") == ["leg rejected: min notional"]
    assert messages(opportunity="opp-1") == ["leg rejected: min notional"]
    assert messages(level="ERROR", venue="alpha") == ["order failed"]


def test_read_log_skips_lines_that_are_not_records(log_path: Path) -> None:
    sample(log_path)
    with open(log_path, "a") as handle:
        handle.write("Traceback from something else\n{\"half\": \n[1, 2]\n")
    assert len(list(read_log(log_path))) == 6


def test_read_log_when_file_missing_or_level_unknown_raises(tmp_path: Path, log_path: Path) -> None:
    with pytest.raises(DataError, match="no log file"):
        list(read_log(tmp_path / "nope.log"))
    sample(log_path)
    with pytest.raises(SettingsError, match="unknown log level"):
        list(read_log(log_path, level="LOUD"))


def test_read_log_rotated_reads_every_file_in_order(log_path: Path) -> None:
    setup_logging(LogSettings(file=str(log_path), rotation="1 KB", retention=100), console=False)
    for i in range(40):
        logger.info("line {:03d} with some padding to fill the file faster", i)
    logger.remove()
    assert len(list(log_path.parent.iterdir())) > 2
    everything = [r["message"][5:8] for r in read_log(log_path, rotated=True)]
    assert everything == [f"{i:03d}" for i in range(40)]
    assert len(list(read_log(log_path))) < 40


def test_level_number_knows_loguru_levels() -> None:
    assert level_number("info") == 20
    assert level_number("SUCCESS") == 25
    with pytest.raises(SettingsError):
        level_number("nope")


def collect(records: t.Iterator[dict[str, t.Any]], n: int, on_first: t.Callable[[], None] | None = None,
            ) -> list[dict[str, t.Any]]:
    got: list[dict[str, t.Any]] = []
    for rec in records:
        got.append(rec)
        if len(got) == 1 and on_first is not None:
            on_first()
        if len(got) >= n:
            break
    return got


def append(path: Path, *messages: str, level: str = "INFO") -> None:
    with open(path, "a") as handle:
        for message in messages:
            record = {"ts": "2024-01-01T00:00:00.000Z", "level": level, "message": message}
            handle.write(json.dumps(record) + "\n")


def test_follow_log_yields_appended_lines(log_path: Path) -> None:
    log_path.parent.mkdir()
    append(log_path, "old 1", "old 2")
    stop = threading.Event()
    guard = threading.Timer(5.0, stop.set)
    guard.start()
    writer = threading.Thread(target=lambda: (append(log_path, "new 1"),
                                              append(log_path, "noise", level="DEBUG"),
                                              append(log_path, "new 2")))
    records = follow_log(log_path, level="INFO", last=1, poll_interval=0.01, stop=stop)
    try:
        got = collect(records, 3, on_first=writer.start)
    finally:
        records.close()  # type: ignore[attr-defined]
        guard.cancel()
        writer.join()
    assert [r["message"] for r in got] == ["old 2", "new 1", "new 2"]


def test_follow_log_reopens_after_rotation_and_truncation(log_path: Path) -> None:
    log_path.parent.mkdir()
    append(log_path, "before")
    stop = threading.Event()
    guard = threading.Timer(5.0, stop.set)
    guard.start()

    def rotate_then_truncate() -> None:
        append(log_path, "a")
        log_path.rename(log_path.with_name("arb.2024-01-01_00-00-00_000000.log"))
        append(log_path, "b", "b2")  # a new file at the same path
        while not seen_b.is_set() and not stop.is_set():
            stop.wait(0.01)
        log_path.write_text("")  # truncated in place (noticed: shorter than what was read)
        append(log_path, "c")

    seen_b = threading.Event()
    writer = threading.Thread(target=rotate_then_truncate)
    records = follow_log(log_path, last=1, poll_interval=0.01, stop=stop)
    got: list[str] = []
    try:
        for rec in records:
            got.append(rec["message"])
            if got == ["before"]:
                writer.start()
            if rec["message"] == "b2":
                seen_b.set()
            if len(got) == 5:
                break
    finally:
        records.close()  # type: ignore[attr-defined]
        guard.cancel()
        writer.join()
    assert got == ["before", "a", "b", "b2", "c"]


def test_follow_log_waits_for_the_file_and_stops_on_request(log_path: Path) -> None:
    stop = threading.Event()
    guard = threading.Timer(5.0, stop.set)
    guard.start()
    threading.Timer(0.05, lambda: (log_path.parent.mkdir(), append(log_path, "first"))).start()
    try:
        got = collect(follow_log(log_path, poll_interval=0.01, stop=stop), 1)
    finally:
        guard.cancel()
    assert [r["message"] for r in got] == ["first"]
    stop.set()
    assert list(follow_log(log_path, stop=stop)) == []


def test_format_record_escapes_markup_and_shows_context() -> None:
    rec = {"ts": "2024-01-01T12:00:00.123Z", "level": "ERROR", "message": "bad [bold]input[/bold]",
           "where": "m:f:1", "run_id": "r1", "venue": "alpha", "attempt": 2, "exception": "Traceback: x"}
    rich_line = format_record(rec)
    assert "\\[bold]input" in rich_line and "[bold red]ERROR" in rich_line
    plain = format_record(rec, markup=False)
    assert "ERROR    bad [bold]input[/bold]  run=r1 venue=alpha attempt=2" in plain
    assert plain.endswith("\nTraceback: x") and "m:f:1" not in plain
    assert format_record({"message": "bare"}, markup=False).strip().endswith("bare")
