"""Where the viewer's frames come from: one protocol, three sources.

A `FrameSource` yields `SourceEvent`s (a frame for a host, or a problem reaching
it) until it is cancelled. `LocalSource` runs the same collector as the other
commands on a fixed-rate schedule; `RemoteSource` follows one agent's `/events`
stream (smicast or all-smi), reconnecting as `record --from` does; the replay
source lives in `smicast.view.replay`. Other views (fleet) add sources of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol, runtime_checkable

from smicast.collect import Collector
from smicast.include import Section
from smicast.pacing import daemon_future, in_daemon_thread, sleep_until
from smicast.record.source_sse import SourceError, SourceUrl, sse_frames
from smicast.schema import Snapshot
from smicast.view.model import SourceEvent

MIN_INTERVAL_S = 0.5
MAX_PENDING_EVENTS = 64


@runtime_checkable
class FrameSource(Protocol):
    kind: str  # "local" | "replay" | "remote" | ...
    label: str  # what the host bar shows as the source
    signals_processes: bool  # its pids are this machine's real processes

    def events(self) -> AsyncIterator[SourceEvent]: ...


class LocalSource:
    """This machine (or simulated GPUs on it) through the collector, every `interval_s`."""

    kind = "local"

    def __init__(
        self,
        collector: Collector,
        sections: Iterable[Section],
        *,
        interval_s: float = 1.0,
        label: str = "local",
        simulated: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.collector = collector
        self.sections = frozenset(sections)
        self.interval_s = max(interval_s, MIN_INTERVAL_S)
        self.label = label
        self.signals_processes = not simulated  # simulated pids are not real processes
        self.host = collector.hostname
        self._monotonic = monotonic
        self._sleep = sleep
        self._first: concurrent.futures.Future[Snapshot] | None = None

    def prefetch(self) -> None:
        """Start the first collection now, while the UI is still starting: the CPU
        reader's first read waits out a short window, and readers set up on first use."""
        if self._first is None:
            self._first = daemon_future(self.collector.collect, self.sections)

    async def events(self) -> AsyncIterator[SourceEvent]:
        due = self._monotonic()
        first, self._first = self._first, None
        while True:
            try:
                if first is not None:
                    collecting, first = asyncio.wrap_future(first), None
                else:
                    collecting = in_daemon_thread(self.collector.collect, self.sections)
                snap = await collecting
            except Exception as exc:  # a bug in a reader must not end the viewer
                yield SourceEvent(self.host, error=f"collection failed: {exc}")
            else:
                yield SourceEvent(self.host, snap)
            due += self.interval_s
            now = self._monotonic()
            if due < now:  # a slow collection: skip the missed slots, never burst
                due = now
            await sleep_until(due, self._monotonic, self._sleep)


class RemoteSource:
    """One agent's `/events` stream; connection problems arrive as error events."""

    kind = "remote"
    signals_processes = False

    def __init__(
        self,
        source: SourceUrl,
        sections: Iterable[Section],
        *,
        frames: Callable[..., AsyncIterator[object]] = sse_frames,
    ) -> None:
        self.source = source
        self.sections = frozenset(sections)
        self.label = source.label
        self.host = source.label
        self._frames = frames

    async def events(self) -> AsyncIterator[SourceEvent]:
        queue: asyncio.Queue[SourceEvent | None] = asyncio.Queue(MAX_PENDING_EVENTS)

        def offer(event: SourceEvent) -> None:
            if queue.full():  # the view is behind: the newest news matters, drop the oldest
                queue.get_nowait()
            queue.put_nowait(event)

        async def pump() -> None:
            try:
                async for snap in self._frames(
                    self.source,
                    self.sections,
                    warn=lambda m: offer(SourceEvent(self.host, error=m)),
                ):
                    offer(SourceEvent(self.host, snap))  # type: ignore[arg-type]
            except SourceError as exc:
                offer(SourceEvent(self.host, error=f"{exc} (stopped)"))
            finally:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)

        task = asyncio.create_task(pump())
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
