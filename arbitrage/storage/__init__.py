"""Storage: every event worth keeping, in SQLite (WAL), written in batches off the event loop."""

from arbitrage.storage.plugin import Storage
from arbitrage.storage.schema import open_database
from arbitrage.storage.writer import Writer

__all__ = ["Storage", "Writer", "open_database"]
