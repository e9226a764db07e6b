"""Readers of recorded market data: one family for the replay (``arb backtest``) and for snapshots
(``arb scan``).

=================  ==============================================================================
module             what it holds
=================  ==============================================================================
``contract``       the reader contract: ``Reader`` (batches of events, a market pre-scan),
                   ``FileStats`` (lines, events, malformed lines), symbol helpers
``formats``        which reader reads a file: ``FORMATS`` and ``open_reader``
``jsonl``          arb recordings (JSON lines, plain or ``.zst``)
``csv``            top-of-book CSV tables (MO-book snapshots) and Tardis ``book_snapshot_N`` CSV
``sqlite``         the ``books`` table of an arb database
``levels``         ``RawLevels``, a recorded book side parsed past the best level on demand, and the
                   book records the decoding process sends (compiled, see ``arbitrage.compiled``)
``parallel``       the decoding process: a large recording decoded on a second core
                   (``ParallelJsonLinesReader``, what ``open_reader`` gives for JSON lines)
``snapshot``       the latest book per market of one file, for ``arb scan``
=================  ==============================================================================

The package sits apart from ``backtest`` (which replays what it reads) and from ``sources``
(which publish on the bus): the scanner reads snapshots without the replay machinery, and
``arbitrage.events`` stays the only thing the readers share with the engine. This ``__init__``
imports nothing, so that importing one reader does not load them all.
"""

__all__ = ["contract", "csv", "formats", "jsonl", "levels", "parallel", "snapshot", "sqlite"]
