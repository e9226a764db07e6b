"""Logging: loguru sinks for a run, and reading the JSON-lines log file back for ``arb logs``.

``setup_logging`` installs (replacing any previous handlers) a short human console sink on stderr
and a rotating JSON-lines file sink. One record per line::

    {"ts": "2024-05-01T12:00:00.123Z", "level": "INFO", "message": "...", "where": "module:function:line",
     "run_id": "...", "venue": "...", "exception": "Traceback ..."}

``ts`` is UTC; every ``logger.bind(...)`` extra is a top-level key (one that would clash with the
fixed keys is stored as ``extra_<key>``). Secrets never reach a sink: a patcher passes the
message, the extras and the formatted traceback through ``arbitrage.redact`` (tracebacks are
formatted without local variables). Writes happen in the logging thread: the file is line
buffered, so keep logs off the per-book hot path.

``read_log`` and ``follow_log`` yield parsed records filtered by level (at or above), a pattern,
run, venue, symbol or opportunity; ``format_record`` renders one as a rich-markup line.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import os
import re
import sys
import threading
import time
import traceback
import typing as t
from collections import deque
from pathlib import Path

import msgspec
from loguru import logger
from rich.markup import escape

from arbitrage.errors import DataError, SettingsError
from arbitrage.redact import MASK, is_secret_key, redact, redact_text
from arbitrage.settings import LogSettings

__all__ = [
    "CONTEXT_KEYS",
    "LEVELS",
    "follow_log",
    "format_record",
    "level_number",
    "read_log",
    "setup_logging",
]

LEVELS: dict[str, int] = {
    "TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50,
}
CONTEXT_KEYS: dict[str, str] = {
    "run_id": "run", "plugin": "plugin", "opportunity_id": "opp", "venue": "venue", "symbol": "symbol",
}
"""Extras shown on the console (key -> short label), in this order."""

_FIXED = frozenset({"ts", "level", "message", "where", "exception"})
_encode = msgspec.json.Encoder(enc_hook=repr).encode
_decode = msgspec.json.Decoder(dict[str, t.Any]).decode
_CONSOLE = ("<green>{time:HH:mm:ss.SSS}</green> <level>{level: <8}</level> {message}"
            "<dim>{extra[_context]}</dim>\n")
_CONSOLE_EXC = _CONSOLE + "{extra[_exception]}"


def level_number(name: str) -> int:
    """Severity of a level name (case-insensitive), including custom loguru levels.

    :raises SettingsError: if no such level exists.
    """
    upper = name.upper()
    if upper in LEVELS:
        return LEVELS[upper]
    try:
        return int(logger.level(upper).no)
    except ValueError:
        raise SettingsError("level", f"unknown log level {name!r} (one of {', '.join(LEVELS)})") from None


# -- writing -----------------------------------------------------------------------------------------


def _patch(record: t.Any) -> None:
    record["message"] = redact_text(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        if is_secret_key(key):
            extra[key] = MASK
        elif isinstance(value, str | dict | list | tuple):
            extra[key] = redact(value)
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
        extra["_exception"] = redact_text(text)


def _json_line(record: t.Any) -> str:
    extra = record["extra"]
    ts = record["time"].astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out: dict[str, t.Any] = {
        "ts": ts, "level": record["level"].name, "message": record["message"],
        "where": f"{record['name']}:{record['function']}:{record['line']}",
    }
    for key, value in extra.items():
        if not key.startswith("_"):
            out[f"extra_{key}" if key in _FIXED else key] = value
    if "_exception" in extra:
        out["exception"] = extra["_exception"]
    return _encode(out).decode()


def _json_format(record: t.Any) -> str:
    record["extra"]["_json"] = _json_line(record)
    return "{extra[_json]}\n"


def _console_format(record: t.Any) -> str:
    extra = record["extra"]
    parts = [f"{label}={extra[key]}" for key, label in CONTEXT_KEYS.items()
             if extra.get(key) not in (None, "")]
    extra["_context"] = "  " + " ".join(parts) if parts else ""
    return _CONSOLE_EXC if "_exception" in extra else _CONSOLE


def setup_logging(settings: LogSettings, console: bool = True, json_console: bool = False,
                  level_override: str | None = None, console_level: str | None = None) -> list[int]:
    """Replace every loguru handler with this run's sinks; safe to call again (e.g. per command).

    :param console: log to stderr at all.
    :param json_console: write JSON lines to stderr instead of the short human format.
    :param level_override: level for every sink instead of ``settings.level`` (e.g. ``--log-level``).
    :param console_level: a different level for stderr only (``arb run --json`` keeps it quiet).
    :returns: the handler ids added.
    :raises SettingsError: if the level is unknown, ``log.rotation`` is not one loguru reads, or
        ``log.file`` cannot be written.
    """
    level = (level_override or settings.level).upper()
    level_number(level)
    shown = (console_level or level).upper()
    level_number(shown)
    logger.remove()
    logger.configure(patcher=_patch)
    ids: list[int] = []
    if console:
        if json_console:
            ids.append(logger.add(sys.stderr, level=shown, format=_json_format, colorize=False,
                                  backtrace=False, diagnose=False))
        else:
            ids.append(logger.add(sys.stderr, level=shown, format=_console_format, backtrace=False,
                                  diagnose=False))
    if settings.file:
        ids.append(_add_file(settings, level))
    return ids


def _writable(path: Path) -> str:
    """Why a file cannot be written at ``path`` ('' if it can), creating nothing: the nearest
    existing folder above it must be a folder we may write into, and the file, if there, a file."""
    if path.is_dir():
        return "a folder is there"
    if path.exists():
        return "" if os.access(path, os.W_OK) else "permission denied"
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    return "" if os.access(folder, os.W_OK | os.X_OK) else f"permission denied in {folder}"


def _add_file(settings: LogSettings, level: str) -> int:
    """The JSON-lines file sink, opened (its folder created) with the first record: a command that
    fails before it logs anything leaves no folder behind.

    :raises SettingsError: naming ``log.rotation`` or ``log.file``.
    """
    path = Path(settings.file)
    try:
        if why := _writable(path):
            raise OSError(why)
        return logger.add(str(path), level=level, format=_json_format, colorize=False, backtrace=False,
                          diagnose=False, rotation=settings.rotation, retention=settings.retention,
                          encoding="utf-8", delay=True)
    except OSError as exc:
        raise SettingsError("log.file", f"cannot write the log file {path} ({exc})") from None
    except (ValueError, TypeError):  # loguru cannot read the rotation (the other values are typed)
        raise SettingsError("log.rotation", f"expected a size (\"20 MB\"), an interval (\"1 day\") or a "
                                            f"time of day (\"00:00\"), got {settings.rotation!r}") from None


# -- reading -----------------------------------------------------------------------------------------


class _Filter:
    def __init__(self, level: str | None, grep: str | None, run: str | None, venue: str | None,
                 symbol: str | None, opportunity: str | None) -> None:
        self.level = level_number(level) if level else None
        self.grep: re.Pattern[str] | None = None
        if grep:
            try:
                self.grep = re.compile(grep, re.I)
            except re.error:
                self.grep = re.compile(re.escape(grep), re.I)
        self.run = run
        self.venue = venue.lower() if venue else None
        self.symbol = symbol.upper() if symbol else None
        self.opportunity = opportunity

    def __call__(self, rec: dict[str, t.Any]) -> bool:
        if self.level is not None and _level_of(rec) < self.level:
            return False
        if self.run and not str(rec.get("run_id", "")).startswith(self.run):
            return False
        # a line about an arbitrage names several venues (and symbols) joined by commas
        if self.venue and self.venue not in str(rec.get("venue", "")).lower().split(","):
            return False
        if self.symbol and self.symbol not in str(rec.get("symbol", "")).upper().split(","):
            return False
        if self.opportunity and not str(rec.get("opportunity_id", "")).startswith(self.opportunity):
            return False
        if self.grep is not None:
            text = " ".join(str(v) for k, v in rec.items() if k not in ("ts", "where"))
            return self.grep.search(text) is not None
        return True


def _level_of(rec: dict[str, t.Any]) -> int:
    name = str(rec.get("level", "INFO")).upper()
    if name in LEVELS:
        return LEVELS[name]
    try:
        return level_number(name)
    except SettingsError:
        return LEVELS["INFO"]


def _parse(line: bytes | str) -> dict[str, t.Any] | None:
    line = line.strip()
    if not line:
        return None
    try:
        rec = _decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return rec if "message" in rec else None


def _rotated(path: Path) -> list[Path]:
    siblings = [p for p in path.parent.glob(f"{path.stem}.*{path.suffix}") if p != path and p.is_file()]
    return sorted(siblings, key=lambda p: p.stat().st_mtime)


def read_log(path: str | Path, level: str | None = None, grep: str | None = None, run: str | None = None,
             venue: str | None = None, symbol: str | None = None, opportunity: str | None = None, *,
             rotated: bool = False) -> c.Iterator[dict[str, t.Any]]:
    """Yield the records of a JSON-lines log file, oldest first, that pass every filter given.

    :param level: at or above this level.
    :param grep: regular expression (case-insensitive; a literal if it does not compile) searched in
        the message, extras and traceback.
    :param run: run id or a prefix of it. :param opportunity: opportunity id or a prefix of it.
    :param venue: exact venue (case-insensitive). :param symbol: exact symbol (case-insensitive).
    :param rotated: read the rotated files (``arb.<date>.log``) first, oldest first.
    Lines that are not log records (a partial last line, other output) are skipped.

    :raises DataError: if the file does not exist. :raises SettingsError: for an unknown level.
    """
    path = Path(path)
    match = _Filter(level, grep, run, venue, symbol, opportunity)
    if not path.is_file():
        raise DataError(f"{path}: no log file (logging goes to log.file, see settings)")
    for file in [*(_rotated(path) if rotated else []), path]:
        with open(file, "rb") as handle:
            for line in handle:
                rec = _parse(line)
                if rec is not None and match(rec):
                    yield rec


def follow_log(path: str | Path, level: str | None = None, grep: str | None = None, run: str | None = None,
               venue: str | None = None, symbol: str | None = None, opportunity: str | None = None, *,
               last: int = 0, from_start: bool = False, poll_interval: float = 0.25,
               stop: threading.Event | None = None) -> c.Iterator[dict[str, t.Any]]:
    """Yield matching records as they are appended to ``path`` (``tail -F``), until ``stop`` is set.

    Filters are those of ``read_log``. Waits for the file if it does not exist yet. When the file
    is rotated (renamed away and replaced, as loguru does) the rest of the old file is read, then
    the new one from its start; a file truncated in place is noticed once it is shorter than what
    was already read (like ``tail -F``).

    :param last: first yield up to this many matching records already in the file.
    :param from_start: yield everything already in the file first.
    :param stop: set it (from another thread) to end the generator within ``poll_interval``;
        without it the generator runs until closed.
    """
    path = Path(path)
    match = _Filter(level, grep, run, venue, symbol, opportunity)
    handle: t.BinaryIO | None = None
    identity: tuple[int, int] | None = None
    pending = b""
    first = True
    try:
        while stop is None or not stop.is_set():
            if handle is None:
                try:
                    handle = open(path, "rb")  # noqa: SIM115 - kept open across yields, closed in finally
                except FileNotFoundError:
                    _wait(stop, poll_interval)
                    first = False  # a file that appears later is new: read it all
                    continue
                info = os.fstat(handle.fileno())
                identity = (info.st_dev, info.st_ino)
                if first and not from_start:
                    complete, _, pending = handle.read().rpartition(b"\n")
                    if last > 0:
                        tail: deque[dict[str, t.Any]] = deque(maxlen=last)
                        for line in complete.split(b"\n"):
                            rec = _parse(line)
                            if rec is not None and match(rec):
                                tail.append(rec)
                        yield from tail
                first = False
            chunk = handle.read()
            if chunk:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    rec = _parse(line)
                    if rec is not None and match(rec):
                        yield rec
                continue
            try:
                info = os.stat(path)
                replaced = (info.st_dev, info.st_ino) != identity or info.st_size < handle.tell()
            except FileNotFoundError:
                replaced = True
            if replaced:
                handle.close()
                handle, pending = None, b""
                continue
            _wait(stop, poll_interval)
    finally:
        if handle is not None:
            handle.close()


def _wait(stop: threading.Event | None, seconds: float) -> None:
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


# -- rendering ---------------------------------------------------------------------------------------

_LEVEL_STYLE = {
    "TRACE": "dim", "DEBUG": "blue", "INFO": "bold", "SUCCESS": "bold green", "WARNING": "bold yellow",
    "ERROR": "bold red", "CRITICAL": "bold white on red",
}


def _local_time(ts: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(ts)
    except ValueError:
        return ts
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_record(rec: dict[str, t.Any], markup: bool = True) -> str:
    """One record as a line: local time, level, message, context extras (and its traceback).

    :param markup: rich markup (escape-safe) for ``console.print``; ``False`` gives plain text.
    """
    level = str(rec.get("level", ""))
    when = _local_time(str(rec.get("ts", "")))
    context = [f"{label}={rec[key]}" for key, label in CONTEXT_KEYS.items() if rec.get(key) not in (None, "")]
    others = [f"{key}={value}" for key, value in rec.items()
              if key not in _FIXED and key not in CONTEXT_KEYS]
    tail = " ".join(context + others)
    exception = str(rec.get("exception", "")).rstrip()
    message = str(rec.get("message", ""))
    if not markup:
        line = f"{when} {level:<8} {message}" + (f"  {tail}" if tail else "")
        return line + (f"\n{exception}" if exception else "")
    style = _LEVEL_STYLE.get(level, "")
    level_text = f"[{style}]{escape(level):<8}[/]" if style else f"{escape(level):<8}"
    line = f"[green]{escape(when)}[/] {level_text} {escape(message)}"
    if tail:
        line += f"  [dim]{escape(tail)}[/]"
    return line + (f"\n[red]{escape(exception)}[/]" if exception else "")
