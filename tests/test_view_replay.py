"""The viewer's replay source: opening by index, pacing with a fake clock, every control."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smicast.record.reader import TraceError
from smicast.schema import Snapshot
from smicast.view.model import SourceEvent
from smicast.view.replay import ReplaySource, Trace
from tests.fakes import make_snapshot
from tests.view_support import FakeTime, stamp, write_trace


def frames(n: int, step_s: float = 1.0) -> list[Snapshot]:
    return [make_snapshot(timestamp=stamp(i * step_s), hostname="h") for i in range(n)]


TRACE_PATHS: list[Path] = []


@pytest.fixture(autouse=True)
def _paths(tmp_path: Path) -> None:
    TRACE_PATHS[:] = [write_trace(tmp_path / "p.ndjson", frames(30))]


@pytest.fixture
def trace(tmp_path: Path) -> Trace:
    return Trace([write_trace(tmp_path / "t.ndjson", frames(30))])


async def take(it: AsyncIterator[SourceEvent], n: int) -> list[SourceEvent]:
    return [await anext(it) for _ in range(n)]


def test_trace_index_and_bounds(tmp_path: Path, trace: Trace) -> None:
    assert len(trace) == 30 and trace.duration_s == 29
    assert trace.position_at(10) == 10 and trace.position_at(10.5) == 11
    assert trace.position_at(999) == 29 and trace.position_at(-5) == 0
    assert trace.loop_gap_s() == 1.0
    with pytest.raises(TraceError, match="MiB"):
        Trace(trace.paths, max_bytes=1000)


def test_pacing_speed_and_pause() -> None:
    async def main(trace: Trace) -> None:
        clock = FakeTime()
        source = ReplaySource(trace, speed=2.0, monotonic=clock.monotonic, wait=clock.wait)
        it = source.events()
        got = await take(it, 3)
        assert [e.snapshot.timestamp for e in got if e.snapshot] == [stamp(0), stamp(1), stamp(2)]
        assert clock.waits == [0.5, 0.5]  # 1 s gaps at 2x
        source.faster()
        source.slower()
        source.slower()
        assert source.speed == 1.0
        source.toggle_pause()
        assert source.status().playing is False
        pending = asyncio.ensure_future(anext(it))
        await asyncio.sleep(0.01)
        assert not pending.done()  # paused: nothing comes
        source.toggle_pause()
        event = await pending
        assert event.snapshot is not None and event.snapshot.timestamp == stamp(3)

    asyncio.run(main(Trace(TRACE_PATHS)))


def test_seek_step_jump_and_speed_ladder() -> None:
    async def main() -> None:
        clock = FakeTime()
        source = ReplaySource(
            Trace(TRACE_PATHS), start_s=5, monotonic=clock.monotonic, wait=clock.wait
        )
        it = source.events()
        first = await anext(it)
        assert first.snapshot is not None and first.snapshot.timestamp == stamp(5)
        source.seek_by(10)
        event = await anext(it)
        assert event.rewound and event.snapshot and event.snapshot.timestamp == stamp(15)
        source.seek_by(-100)
        assert (await anext(it)).snapshot.timestamp == stamp(0)  # type: ignore[union-attr]
        source.jump_to(20)
        assert (await anext(it)).snapshot.timestamp == stamp(20)  # type: ignore[union-attr]
        source.step(1)
        assert source.playing is False
        assert (await anext(it)).snapshot.timestamp == stamp(21)  # type: ignore[union-attr]
        source.step(-2)
        assert (await anext(it)).snapshot.timestamp == stamp(19)  # type: ignore[union-attr]
        for _ in range(10):
            source.faster()
        assert source.speed == 8.0
        for _ in range(10):
            source.slower()
        assert source.speed == 0.25
        status = source.status()
        assert (status.position, status.frames, status.offset_s) == (19, 30, 19.0)

    asyncio.run(main())


def test_end_stops_without_loop_and_starts_over_with_loop() -> None:
    async def main() -> None:
        clock = FakeTime()
        source = ReplaySource(
            Trace(TRACE_PATHS), start_s=28, monotonic=clock.monotonic, wait=clock.wait
        )
        it = source.events()
        await take(it, 2)  # frames 28 and 29, the last
        pending = asyncio.ensure_future(anext(it))
        await asyncio.sleep(0.01)
        assert not pending.done() and source.playing is False
        source.toggle_loop()
        source.toggle_pause()  # un-pausing at the end with loop on starts over
        event = await pending
        assert event.rewound and event.snapshot and event.snapshot.timestamp == stamp(0)
        await anext(it)
        source.jump_to(29)
        await anext(it)
        looped = await anext(it)  # after the last frame, one recorded interval later: the first
        assert looped.rewound and looped.snapshot and looped.snapshot.timestamp == stamp(0)
        assert clock.waits[-1] == 1.0

    asyncio.run(main())


def test_a_one_hour_trace_opens_and_seeks(tmp_path: Path) -> None:
    path = write_trace(tmp_path / "hour.ndjson", frames(3600))
    trace = Trace([path])
    assert len(trace) == 3600 and trace.duration_s == 3599
    assert trace.position_at(30 * 60) == 1800
