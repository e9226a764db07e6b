"""``run_backtest``: recorded data through the same engine, strategy, paper venues and storage as a run.

The engine runs on a ``SimClock`` with the ``replay`` source, the chosen strategy, the trader
(paper venues) and, unless turned off, storage. Monitor, notifier and dashboard plugins are not
loaded: they watch wall-clock health and talk to people, which a backtest must not.

Determinism: the run id is ``bt-`` + a hash of the settings that shape trading and of the data
(size, first and last MiB of each file; run and row count for a database), so the same inputs
give the same run id, the same opportunity ids and the same results. Re-running the same
backtest into the same database replaces its rows. The ``fingerprint`` is the sha256 of every
``ArbResult`` as JSON, in the order they finished, with the run id cut out of the ids; the
result dict holds no wall-clock value, so two runs encode to identical JSON.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import hashlib
import typing as t
from pathlib import Path

import msgspec

from arbitrage.backtest.analysis import analyse, arb_entry
from arbitrage.clock import SimClock
from arbitrage.errors import DataError, NoSuchPlugin, SettingsError, StorageError
from arbitrage.events import ArbResult, BookUpdate, encode_json
from arbitrage.plugin import Context, Plugin, load_plugin
from arbitrage.readers.contract import Reader
from arbitrage.readers.formats import open_reader
from arbitrage.readers.sqlite import SqliteBooksReader
from arbitrage.settings import Settings
from arbitrage.sources.replay import Progress, ReplaySource

__all__ = ["Collector", "backtest_run_id", "fingerprint", "run_backtest"]

SAMPLE_BYTES = 1 << 20
SPREAD_SAMPLE_NS = 100_000_000
"""One spread sample per symbol per 100 ms of event time, for ``--plot`` (short dislocations show;
an hour of data is 36,000 points a symbol)."""
_IGNORED_SECTIONS = ("storage", "log", "monitor", "notify", "redis")
_FILE_KEYS = ("path", "format", "lines", "malformed", "reasons", "examples")
"""What the result says about each data file."""


class Collector(Plugin):
    """Keeps every ``ArbResult`` (and, for plots, a spread sample per symbol per second)."""

    name = "backtest"
    kind = "storage"
    description = "Collects arbitrage results of a backtest."

    def __init__(self, spreads: bool = False) -> None:
        self.results: list[ArbResult] = []
        self.spreads: list[tuple[int, str, float]] = []
        """(ts_init, symbol, best cross-venue spread in bps: bid on one venue over ask on another)."""
        self._want_spreads = spreads
        self._tops: dict[str, dict[str, tuple[float, float]]] = {}
        self._next_sample: dict[str, int] = {}

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        ctx.bus.subscribe(ArbResult, self.results.append, name="backtest")
        if self._want_spreads:
            ctx.bus.subscribe(BookUpdate, self._on_book, name="backtest")

    def _on_book(self, book: BookUpdate) -> None:
        if not book.bids or not book.asks:
            return
        tops = self._tops.setdefault(book.symbol, {})
        tops[book.venue] = (book.bids[0][0], book.asks[0][0])
        if book.ts_init < self._next_sample.get(book.symbol, 0) or len(tops) < 2:
            return
        self._next_sample[book.symbol] = book.ts_init + SPREAD_SAMPLE_NS
        best = max((bid - ask) / ((bid + ask) / 2) * 1e4 for v1, (bid, _) in tops.items()
                   for v2, (_, ask) in tops.items() if v1 != v2)
        self.spreads.append((book.ts_init, book.symbol, best))


def _data_digest(readers: c.Sequence[Reader]) -> bytes:
    h = hashlib.sha256()
    for reader in readers:
        if isinstance(reader, SqliteBooksReader):
            h.update(f"sqlite:{reader.run_id}:{reader.stats.size}".encode())
            continue
        size = reader.path.stat().st_size
        h.update(f"{reader.format}:{size}:".encode())
        with open(reader.path, "rb") as handle:
            h.update(handle.read(SAMPLE_BYTES))
            if size > 2 * SAMPLE_BYTES:
                handle.seek(-SAMPLE_BYTES, 2)
                h.update(handle.read())
    return h.digest()


def backtest_run_id(settings: Settings, readers: c.Sequence[Reader]) -> str:
    """``bt-`` + 12 hex digits from the trading settings and the data (see the module doc)."""
    shaping = {k: v for k, v in settings.to_dict().items() if k not in _IGNORED_SECTIONS}
    backtest = shaping.get("backtest", {})
    shaping["backtest"] = {k: v for k, v in backtest.items() if k not in ("data", "record")}
    h = hashlib.sha256(msgspec.json.encode(shaping, order="sorted"))
    h.update(_data_digest(readers))
    return "bt-" + h.hexdigest()[:12]


def fingerprint(results: c.Iterable[ArbResult], run_id: str) -> str:
    """sha256 over every result as JSON, in order, with ``{run_id}-`` removed from ids and labels
    and the legs' client order ids left out (hashes of their labels, run id included: the labels
    say the same without it)."""
    prefix = f"{run_id}-".encode()
    h = hashlib.sha256()
    for result in results:
        legs = tuple(msgspec.structs.replace(leg, client_order_id="") for leg in result.legs)
        h.update(encode_json(msgspec.structs.replace(result, legs=legs)).replace(prefix, b""))
        h.update(b"\n")
    return h.hexdigest()


def _forget_run(path: Path, run_id: str) -> None:
    """Delete an earlier copy of this backtest from the database, so a re-run replaces it."""
    if not path.exists():
        return
    from arbitrage.storage.schema import TABLES, open_database

    db = open_database(path)
    try:
        with db.conn:
            for table in TABLES:
                db.conn.execute(f"DELETE FROM [{table}] WHERE run_id = ?", (run_id,))
    finally:
        db.close()


def _skipped(reader: Reader) -> str:
    """``3 lines, 3 skipped: level 2, json 1`` for an error message."""
    stats = reader.stats
    text = f"{stats.lines} lines"
    if stats.malformed:
        text += f", {stats.malformed} skipped: " + ", ".join(
            f"{reason} {count}" for reason, count in sorted(stats.reasons.items()))
    return text


def _params(settings: Settings) -> dict[str, t.Any]:
    return {"strategy": settings.run.strategy, "fee": settings.backtest.fee,
            "min_profit_bps": settings.strategy.min_profit_bps,
            "max_notional": settings.strategy.max_notional,
            "cooldown_ms": settings.strategy.cooldown_ms, "latency_ms": settings.trading.latency_ms}


def run_backtest(settings: Settings, data: c.Sequence[str | Path] | None = None, *,
                 progress: Progress | None = None, storage: bool = True,
                 plot: str | Path | None = None) -> dict[str, t.Any]:
    """Replay ``data`` (default ``settings.backtest.data``) and return the result dict.

    Keys: ``run_id``, ``strategy``, ``data``, ``params``, ``events``, ``opportunities``,
    ``rejected``, ``orders``, the figures of ``analysis.analyse``, ``realized_pnl``,
    ``unrealized_pnl`` and ``net_pnl`` per quote currency (the engine summary's: net = realized +
    unrealized, open positions at their last marks), ``arbs`` (every arbitrage),
    ``malformed`` (total and per file), ``out_of_order``, ``first_ts``/``last_ts`` (ms),
    ``handler_errors``, ``fingerprint``. Blocking: runs its own event loop.

    :param storage: write the run to ``storage.backtest_path`` when ``storage`` is in ``run.plugins``.
    :param plot: also write a PNG of cumulative PnL and cross-venue spreads there.
    :raises DataError: if a file is missing or unreadable, gave no book at all (empty, or every
        record skipped), or the replay failed part way (a corrupt compressed stream); malformed
        records are only counted (``malformed``: total, per reason, per file).
    :raises PluginError: if a plugin fails to start.
    :raises SettingsError: for a strategy that is not installed or an unusable database path.
    :raises StorageError: if the database could not be written part way.
    """
    files = [str(f) for f in (data if data is not None else settings.backtest.data)]
    if not files:
        raise DataError("no data to replay (--data FILE)")
    readers = [open_reader(f) for f in files]
    settings = msgspec.structs.replace(
        settings, run=msgspec.structs.replace(settings.run, source="replay"),
        backtest=msgspec.structs.replace(settings.backtest, data=files),
        # a backtest keeps its own database: `arb report` still shows the last paper or live run
        storage=msgspec.structs.replace(settings.storage, path=settings.storage.backtest_path))
    run_id = backtest_run_id(settings, readers)
    source = ReplaySource(readers, progress=progress)
    collector = Collector(spreads=plot is not None)
    try:
        strategy = load_plugin(settings.run.strategy, "strategy")()
    except NoSuchPlugin as exc:
        raise SettingsError("run.strategy", str(exc)) from None
    plugins: list[Plugin] = [source, strategy, load_plugin("trader")(), collector]
    store: t.Any = None  # the storage plugin: its ``failure`` says whether a write failed
    if storage and "storage" in settings.run.plugins:
        _forget_run(Path(settings.storage.path), run_id)
        store = load_plugin("storage")()
        plugins.append(store)

    from arbitrage.engine import Engine

    engine = Engine(settings, clock=SimClock(0), run_id=run_id, plugins=plugins)
    try:
        summary = asyncio.run(engine.run(duration=0))
    except SettingsError as exc:
        if exc.key != "storage.path":
            raise
        raise SettingsError("storage.backtest_path", exc.problem) from None  # what storage.path is here
    if store is not None and store.failure:
        raise StorageError(f"the backtest stopped: storage {store.failure}")
    if source.error is not None:
        if isinstance(source.error, DataError):
            raise source.error
        raise DataError(f"replay failed: {source.error!r}") from source.error
    replay = source.summary()
    for reader in readers:
        if str(reader.path) not in source.gave_books:
            raise DataError(f"{reader.path}: no book to replay ({_skipped(reader)})")
    arbs = [arb_entry(r, f"{run_id}-") for r in collector.results]
    result: dict[str, t.Any] = {
        "run_id": run_id,
        "strategy": settings.run.strategy,
        "data": files,
        "params": _params(settings),
        "events": summary["events_processed"],
        "opportunities": summary["opportunities"],
        "rejected": summary["rejected"],
        "orders": summary["orders"],
        **analyse(arbs, summary["opportunities"]),
        # the engine's PnL: results plus the positions ledger (what stayed open, at its last marks)
        "realized_pnl": summary["realized_pnl"],
        "unrealized_pnl": summary["unrealized_pnl"],
        "net_pnl": summary["net_pnl"],
        "arbs": arbs,
        "malformed": {"total": replay["malformed"], "reasons": replay["reasons"],
                      "files": [{k: f[k] for k in _FILE_KEYS} for f in replay["files"]]},
        "out_of_order": replay["out_of_order"],
        "first_ts": replay["first_ts"] // 1_000_000,
        "last_ts": replay["last_ts"] // 1_000_000,
        "handler_errors": summary["handler_errors"],
        "stop_reason": summary["stop_reason"],
        "fingerprint": fingerprint(collector.results, run_id),
    }
    if plot is not None:
        from arbitrage.backtest.report import plot_result

        plot_result(result, collector.spreads, Path(plot))
    return result
