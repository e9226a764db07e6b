"""Storage: every event worth keeping, in SQLite (WAL), written in batches off the event loop."""

from arbitrage.storage.database import Writer, open_database
from arbitrage.storage.plugin import Storage

__all__ = ["Storage", "Writer", "open_database"]
