"""The recording loops: this machine on a fixed-rate schedule, or another agent's stream.

Local: frame k is due at `start + k * interval`. A collection that overruns is
followed at once by the next one, but slots missed by more than one interval
are skipped rather than bunched (a burst of identical-second frames after a
stall tells nobody anything). The duration is checked before each collection, and
a wait for the next slot ends early at the duration's end.

Stream: frames are written as they arrive; a flush timer makes sure a frame never
waits more than `flush_every_s` for its flush when the source goes quiet.

Stopping: SIGINT and SIGTERM set a flag; the frame in hand is written whole and
the file closed cleanly. A second signal while closing gives up (exit 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import FrameType

from smicast.record.progress import Progress
from smicast.record.writer import TraceWriter
from smicast.schema import Snapshot

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_MIN_FLUSH_TIMER_S = 0.05  # with --flush-every 0 every write flushes; the timer idles


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None], stopped: Callable[[], bool]) -> Iterator[None]:
    """SIGINT/SIGTERM call `stop`; a second one interrupts (KeyboardInterrupt)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stopped():
            raise KeyboardInterrupt
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def record_local(
    collect: Callable[[], Snapshot],
    writer: TraceWriter,
    *,
    interval_s: float,
    duration_s: float = 0.0,
    stop: threading.Event,
    progress: Progress | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    wait: Callable[[float], bool] | None = None,
) -> None:
    """Collect and write until `stop` is set or `duration_s` (0: no limit) has passed.

    `wait(seconds)` returns True when it was cut short by a stop; by default it is
    `stop.wait`, which a signal handler setting `stop` wakes at once.
    """
    wait = wait or stop.wait
    start = monotonic()
    end = start + duration_s if duration_s else float("inf")
    slot = 0
    while not stop.is_set():
        now = monotonic()
        if now >= end:
            break
        due = start + slot * interval_s
        if now < due:
            if wait(min(due, end) - now):
                break
            continue
        writer.write(collect())
        if progress is not None:
            progress.update(writer.stats)
        slot = max(slot + 1, int((monotonic() - start) / interval_s))


async def record_stream(
    frames: AsyncIterator[Snapshot],
    writer: TraceWriter,
    *,
    duration_s: float = 0.0,
    stop: asyncio.Event,
    progress: Progress | None = None,
) -> None:
    """Write each frame of `frames` until it ends, `stop` is set or `duration_s` passes.

    Frames are written between awaits, so cancelling the reader never tears one.
    """

    async def consume() -> None:
        async for snap in frames:
            writer.write(snap)
            if progress is not None:
                progress.update(writer.stats)

    async def flush_timer() -> None:
        # Runs on the loop like consume(), so it never interleaves with a write.
        while True:
            due = writer.flush_due_at()
            delay = writer.flush_every_s if due is None else due - writer.monotonic()
            await asyncio.sleep(max(delay, _MIN_FLUSH_TIMER_S))
            writer.flush_if_due()

    reader = asyncio.create_task(consume())
    stopper = asyncio.create_task(stop.wait())
    flusher = asyncio.create_task(flush_timer())
    try:
        await asyncio.wait(
            {reader, stopper, flusher},
            timeout=duration_s or None,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for task in (flusher, stopper, reader):  # the reader last: its failure is raised
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()
