"""The recorder plugin writes what a run published, markets first, in publish order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arbitrage.backtest.recorder import Recorder
from arbitrage.engine import Engine
from arbitrage.errors import PluginError
from arbitrage.events import BookUpdate, MarketsLoaded
from arbitrage.plugin import Context, Plugin
from arbitrage.readers.formats import open_reader
from arbitrage.sources.sim import SimSource
from tests.backtest._data import settings


class Collect(Plugin):
    name = "collect"
    kind = "monitor"

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        self.seen: list[object] = []
        ctx.bus.subscribe(MarketsLoaded, self.seen.append)
        ctx.bus.subscribe(BookUpdate, self.seen.append)


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.zst"])
def test_recorder_writes_every_published_book_after_its_markets(tmp_path: Path, name: str) -> None:
    collect = Collect()
    engine = Engine(settings(tmp_path), plugins=[SimSource(realtime=False, max_events=3000),
                                                 Recorder(tmp_path / name), collect])
    asyncio.run(engine.run(duration=30))
    reader = open_reader(tmp_path / name)
    recorded = [e for batch in reader.batches() for e in batch]
    assert recorded == collect.seen
    assert sum(isinstance(e, BookUpdate) for e in recorded) == 3000
    first_book = next(i for i, e in enumerate(recorded) if isinstance(e, BookUpdate))
    assert all(isinstance(e, MarketsLoaded) for e in recorded[:first_book])
    assert engine.plugin("recorder").summary()["books"] == 3000


def test_recorder_without_a_file_refuses_to_set_up(tmp_path: Path) -> None:
    engine = Engine(settings(tmp_path), plugins=[SimSource(realtime=False, max_events=1), Recorder()])
    with pytest.raises(PluginError, match="needs a file"):
        asyncio.run(engine.run(duration=5))
