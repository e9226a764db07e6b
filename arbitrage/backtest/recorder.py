"""The ``recorder`` plugin: every ``MarketsLoaded`` and ``BookUpdate`` of a run, written to a recording.

Used by ``arb record`` (a source and the recorder, nothing else) and ``arb run --record FILE``.
On the hot path it only appends the event to a list (inline subscriber, so the file keeps the
exact publish order, markets before books); a task hands the list to a worker thread that
encodes and writes it every ``FLUSH_S`` seconds or ``FLUSH_EVENTS`` events. ``stop`` writes what
is left and closes the file (finishing the zstd frame of a ``.zst`` file).
"""

from __future__ import annotations

import asyncio
import contextlib
import typing as t
from pathlib import Path

from arbitrage.backtest.recording import RecordingWriter
from arbitrage.errors import PluginError
from arbitrage.events import BookUpdate, Event, MarketsLoaded
from arbitrage.plugin import Context, Plugin

__all__ = ["Recorder"]

FLUSH_S = 0.25
FLUSH_EVENTS = 5_000


class Recorder(Plugin):
    """Writes every book (and market list) to ``backtest.record`` or the path given."""

    name = "recorder"
    kind = "storage"
    description = "Records every book (and market list) to JSON lines, zstd-compressed when .zst."

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.writer: RecordingWriter | None = None
        self._buffer: list[Event] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self._stopping = False

    def setup(self, ctx: Context) -> None:
        """Subscribe inline to ``MarketsLoaded`` and ``BookUpdate``.

        :raises PluginError: if no file is given (``--record FILE`` / ``backtest.record``).
        """
        super().setup(ctx)
        if self.path is None:
            if not ctx.settings.backtest.record:
                raise PluginError("the recorder needs a file: --record FILE or backtest.record")
            self.path = Path(ctx.settings.backtest.record)
        ctx.bus.subscribe(MarketsLoaded, self._on_event, name="recorder")
        ctx.bus.subscribe(BookUpdate, self._on_event, name="recorder")

    def _on_event(self, event: Event) -> None:
        buffer = self._buffer
        buffer.append(event)
        if len(buffer) >= FLUSH_EVENTS and self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        """Create the file and start the writing task.

        :raises DataError: if the file cannot be created.
        """
        assert self.path is not None
        self.writer = await asyncio.to_thread(RecordingWriter, self.path)
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder")
        self.ctx.log.info("recording books to {}", self.path)

    async def _run(self) -> None:
        assert self._wake is not None
        try:
            while not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), FLUSH_S)
                self._wake.clear()
                await self._flush()
            await self._flush()
        except Exception:
            self.ctx.log.opt(exception=True).error("recorder could not write {}", self.path)
            self.ctx.request_stop(f"recorder could not write {self.path}")

    async def _flush(self) -> None:
        if not self._buffer or self.writer is None:
            return
        batch, self._buffer = self._buffer, []
        await asyncio.to_thread(self.writer.write_many, batch)
        self.written += len(batch)

    async def stop(self) -> None:
        """Write what is left and close the file."""
        if self._task is not None and self._wake is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)

    def summary(self) -> dict[str, t.Any]:
        """The file and what went into it."""
        writer = self.writer
        return {"path": str(self.path), "lines": writer.lines if writer else 0,
                "books": writer.books if writer else 0}
