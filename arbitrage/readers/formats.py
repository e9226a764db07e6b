"""Which reader reads a data file: one class per format, all yielding batches of events.

===============  ==========================================================================
format           what is read
===============  ==========================================================================
``jsonl``        arb recordings (``.jsonl``, ``.ndjson``, ``.json``; ``.zst`` compressed): one
                 book per line, at least ``{"ts", "venue", "symbol", "bids", "asks"}``;
                 ``MarketsLoaded`` lines are passed on (see ``docs/formats.md``)
``csv``          top-of-book CSV tables (the MO-book Binance.US snapshots, both layouts), parsed
                 row by row with the helpers ``arb scan``'s snapshots use too; venue
                 ``binanceus`` unless the file has a ``venue`` column
``tardis``       Tardis ``book_snapshot_N`` CSV (``.csv`` or ``.csv.gz``): ``exchange, symbol,
                 timestamp, local_timestamp, asks[0].price, asks[0].amount, bids[0].price, ...``
                 in microseconds; ``BTCUSDT``/``BTC-USD`` symbols become ``BTC/USDT``
``sqlite``       the ``books`` table of an arb database (``storage.store_books``): the latest run
                 that stored books, or ``FILE.db#RUN_ID``
===============  ==========================================================================

Every reader streams (memory stays flat whatever the file size) and never stops on a bad line:
it is skipped and counted in ``stats.malformed``, with the first few line numbers and reasons in
``stats.examples``. A book whose levels are not positive numbers, whose symbol is not
``BASE/QUOTE`` or that has no timestamp is malformed. Books are ``BookUpdate`` events whose
``ts_init`` (when the book was received) drives the replay clock.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from arbitrage.errors import DataError
from arbitrage.readers.contract import Reader
from arbitrage.readers.csv import TardisCsvReader, TopOfBookCsvReader
from arbitrage.readers.parallel import ParallelJsonLinesReader
from arbitrage.readers.sqlite import SqliteBooksReader

__all__ = ["FORMATS", "open_reader"]

FORMATS: dict[str, type[Reader]] = {
    r.format: r for r in (ParallelJsonLinesReader, TopOfBookCsvReader, TardisCsvReader, SqliteBooksReader)}
_JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def open_reader(spec: str | Path) -> Reader:
    """A reader for one data file, its format told by name and first bytes.

    ``FILE.db#RUN_ID`` picks one run of an arb database.

    :raises DataError: if the file is missing, empty (or blank), without books (SQLite), of an
        unknown format, or a CSV whose header is not of its format.
    """
    text = str(spec)
    path, run_id = Path(text), None
    if not path.exists() and "#" in text:
        base, _, run_id = text.rpartition("#")
        path = Path(base)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    size = path.stat().st_size
    name = path.name.lower()
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head.strip():
        raise DataError(f"{path}: empty data file")
    plain = name[:-4] if name.endswith(".zst") else name[:-3] if name.endswith(".gz") else name
    if plain.endswith(_SQLITE_SUFFIXES) or head.startswith(b"SQLite format 3\x00"):
        reader = SqliteBooksReader(path, size, run_id)
        reader.select_run()
        return reader
    if plain.endswith(_JSON_SUFFIXES) or name.endswith(".zst") or head.lstrip()[:1] == b"{":
        return ParallelJsonLinesReader(path, size)
    if plain.endswith(".csv"):
        first = _first_line(path, head)
        tardis = "local_timestamp" in first and ("asks[0].price" in first or "bids[0].price" in first)
        reader: Reader = TardisCsvReader(path, size) if tardis else TopOfBookCsvReader(path, size)
        reader.check()
        return reader
    raise DataError(f"{path}: unknown data format (expected .jsonl[.zst], .csv[.gz] or an arb .db)")


def _first_line(path: Path, head: bytes) -> str:
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(4096)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a gzip file ({exc})") from exc
    return head.split(b"\n", 1)[0].decode("utf-8", "replace")
