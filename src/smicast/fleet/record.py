"""`record --hosts`: every host's frames into one trace, one fleet frame per interval.

Frame k is due at `start + k * interval`. It holds the newest frame of every
host that is live at that moment (a stale or offline host is left out, as a
failed scrape is in all-smi's remote recording); nothing is written while no
host is live. The duration is checked before each frame. Time is passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from smicast.fleet.link import HostState
from smicast.fleet.source import FleetSource
from smicast.fleet.trace import fleet_frame
from smicast.include import Section
from smicast.pacing import sleep_until
from smicast.readings import LazyFrame
from smicast.record.progress import Progress
from smicast.record.writer import TraceWriter
from smicast.schema import Snapshot


async def record_fleet(
    source: FleetSource,
    writer: TraceWriter,
    *,
    sections: frozenset[Section],
    interval_s: float,
    duration_s: float = 0.0,
    stop: asyncio.Event,
    progress: Progress | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    latest: dict[str, Snapshot | LazyFrame] = {}  # a lazy frame is built only if written

    async def consume() -> None:
        async for event in source.events():
            frame = event.snapshot or event.frame
            if frame is not None:
                latest[event.host] = frame

    reader = asyncio.create_task(consume())
    stopper = asyncio.create_task(stop.wait())
    start = monotonic()
    slot = 0
    try:
        while not stop.is_set():
            slot += 1
            due = start + slot * interval_s
            if duration_s and due - start > duration_s + 1e-9:
                break
            ticker = asyncio.create_task(sleep_until(due, monotonic, sleep))
            await asyncio.wait({ticker, stopper, reader}, return_when=asyncio.FIRST_COMPLETED)
            ticker.cancel()
            if reader.done():
                reader.result()  # a bug: raise it
                break
            if stop.is_set():
                break
            now = monotonic()
            live = {
                label: snap
                for label, frame in latest.items()
                if source.links[label].state_at(now) is HostState.LIVE
                and (snap := frame if isinstance(frame, Snapshot) else frame.snapshot()) is not None
            }
            if live:
                writer.write(fleet_frame(live, sections, wall()))
                if progress is not None:
                    progress.update(writer.stats)
            behind = int((monotonic() - start) / interval_s)
            slot = max(slot, behind)  # missed slots are skipped, never bunched
    finally:
        for task in (stopper, reader):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
