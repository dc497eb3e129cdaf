"""Where frames come from: the collection loop on a fixed-rate schedule, or a recording."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from smicast.api.state import ApiState
from smicast.pacing import sleep_until
from smicast.schema import Snapshot

log = logging.getLogger("smicast.api")
T = TypeVar("T")


async def collection_loop(
    state: ApiState,
    *,
    stop: asyncio.Event,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Collect and publish every `interval_s`, keeping the cadence through slow readers.

    Tick k is due at start + k * interval. A cycle that overruns starts the next one
    at once but never bursts to catch up: missed ticks are skipped.
    """
    collector = state.collector
    assert collector is not None
    interval = state.interval_s
    next_tick = now()
    while not stop.is_set():
        try:  # joins a collection a /snapshot request started, never runs one after it
            await asyncio.shield(state.collect_frame())
        except Exception:  # a bug, not a reader failure: keep serving, say it loudly
            log.exception("collection cycle failed")
        next_tick += interval
        current = now()
        if next_tick < current - interval:
            next_tick = current
        await _wait(stop, sleep_until(next_tick, now, sleep))


async def replay_loop(
    state: ApiState, frames: AsyncIterator[Snapshot], *, stop: asyncio.Event
) -> None:
    """Serve a recording: each frame is published when the recording's pace says."""
    from smicast.record.reader import TraceError

    try:
        async for snapshot in frames:
            if stop.is_set():
                break
            state.publish(snapshot)
    except TraceError as exc:  # damaged later in the file: keep serving what we have
        log.error("recording stopped: %s", exc)
        return
    log.info("recording finished; serving the last frame")


async def _wait(stop: asyncio.Event, pause: Awaitable[None]) -> None:
    """Wait for `pause` unless `stop` is set first."""
    pause_task = asyncio.ensure_future(pause)
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({pause_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pause_task.cancel()
        stop_task.cancel()
