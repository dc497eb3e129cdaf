"""The frame bus: one publisher, many SSE subscribers, a ring of recent frames.

Publishing never waits on a subscriber. Each subscriber is a transport plus a
little state; the publisher writes the frame's shared, pre-framed bytes straight
to it (one write per subscriber, no queue object, no task wake-up). A subscriber
whose transport still holds more than `MAX_PENDING_BYTES` unsent is skipped and
counted; when it drains it gets `event: lag {"dropped": N}` and the newest frame.
So a slow client costs at most one frame of buffered memory, and everyone else
is unaffected.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Final, Protocol

from smicast.api.frame import Frame, Sections, http_chunk, sse_event
from smicast.schema import Snapshot

RING_SIZE: Final = 64
MAX_PENDING_BYTES: Final = 64 * 1024
KEEPALIVE_CHUNK: Final = http_chunk(b": keep-alive\n\n")


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...
    def abort(self) -> None: ...


def lag_chunk(dropped: int) -> bytes:
    return http_chunk(sse_event("lag", b'{"dropped":%d}' % dropped))


class Subscriber:
    """One `/events` stream. Touched only on the event loop thread."""

    __slots__ = ("done", "dropped", "last_sent", "last_write", "min_gap_s", "sections", "transport")

    def __init__(
        self,
        transport: Transport,
        sections: Sections,
        min_gap_s: float,
        done: asyncio.Future[None],
        now: float,
    ) -> None:
        self.transport = transport
        self.sections = sections
        self.min_gap_s = min_gap_s  # throttle: frames closer than this to the last one are skipped
        self.done = done
        self.dropped = 0
        self.last_sent = float("-inf")
        self.last_write = now

    def write(self, data: bytes, now: float) -> bool:
        if self.transport.is_closing():
            self.close()
            return False
        self.transport.write(data)
        self.last_write = now
        return True

    def offer(self, frame: Frame, now: float) -> None:
        """Called by the publisher for every frame."""
        if now - self.last_sent < self.min_gap_s:
            return
        transport = self.transport
        if transport.is_closing():
            self.close()
            return
        if transport.get_write_buffer_size() > MAX_PENDING_BYTES:
            self.dropped += 1
            return
        if self.dropped:
            transport.write(lag_chunk(self.dropped))
            self.dropped = 0
        transport.write(frame.sse_chunk(self.sections))
        self.last_sent = self.last_write = now

    def catch_up(self, held: list[Frame], gone: int, now: float) -> None:
        """After `Last-Event-ID`: the missed frames still held, under the live rules.

        The throttle spaces them as it would have live, and they take at most the
        per-subscriber bound (at least one frame): newest first, so what no longer fits
        is the oldest, counted in the `lag` event with the frames no longer held.
        """
        chunks: list[bytes] = []
        size = skipped = 0
        last_at = float("inf")
        for frame in reversed(held):
            if last_at - frame.published_at < self.min_gap_s:
                continue  # throttled, as it would have been live (not a loss)
            last_at = frame.published_at
            chunk = frame.sse_chunk(self.sections)
            if chunks and (skipped or size + len(chunk) > MAX_PENDING_BYTES):
                skipped += 1
                continue
            if not chunks:
                self.last_sent = frame.published_at
            chunks.append(chunk)
            size += len(chunk)
        if gone + skipped:
            chunks.append(lag_chunk(gone + skipped))
        if chunks:
            self.write(b"".join(reversed(chunks)), now)

    def close(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class FrameBus:
    def __init__(
        self,
        interval_s: float,
        render_metrics: Callable[[Snapshot], bytes],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self._render_metrics = render_metrics
        self._monotonic = monotonic
        self._ring: collections.deque[Frame] = collections.deque(maxlen=RING_SIZE)
        self._subscribers: set[Subscriber] = set()
        self._closed = False
        self._slots = 0  # reserved synchronously at admission, so the cap is exact
        self._seq = 0
        self._waiters: list[asyncio.Future[Frame]] = []
        self.last_publish_s: float | None = None  # how long the last fan-out took

    # -- frames ---------------------------------------------------------------
    @property
    def latest(self) -> Frame | None:
        return self._ring[-1] if self._ring else None

    def publish(self, snapshot: Snapshot) -> Frame:
        started = self._monotonic()
        self._seq += 1
        frame = Frame(self._seq, snapshot, started, self._render_metrics)
        self._ring.append(frame)
        for sub in list(self._subscribers):
            sub.offer(frame, started)
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(frame)
        self.last_publish_s = self._monotonic() - started
        return frame

    def frames_after(self, seq: int) -> tuple[int, list[Frame]]:
        """Frames newer than `seq` still held, and how many newer ones are gone already."""
        held = [f for f in self._ring if f.seq > seq]
        oldest_wanted = seq + 1
        first_held = held[0].seq if held else self._seq + 1
        return max(0, first_held - oldest_wanted), held

    def now(self) -> float:
        return self._monotonic()

    def age_s(self, frame: Frame) -> float:
        return self._monotonic() - frame.published_at

    @property
    def seq(self) -> int:
        return self._seq

    def next_frame(self) -> asyncio.Future[Frame]:
        """A future resolved by the next publish."""
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return fut

    # -- subscribers ----------------------------------------------------------
    def try_reserve(self, cap: int) -> bool:
        """Take a subscriber slot unless `cap` (> 0) are taken; no await between check and take."""
        if cap > 0 and self._slots >= cap:
            return False
        self._slots += 1
        return True

    def release(self) -> None:
        self._slots -= 1

    @property
    def subscriber_count(self) -> int:
        return self._slots

    def add(self, sub: Subscriber) -> None:
        if self._closed:
            sub.close()
            return
        self._subscribers.add(sub)

    def remove(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def close_all(self) -> None:
        """Shutdown: end every stream, and any that is admitted from now on."""
        self._closed = True
        for sub in list(self._subscribers):
            if sub.transport.get_write_buffer_size():
                # A client that does not read cannot be sent the stream's end in time:
                # a polite close would wait for it until the grace period runs out.
                sub.transport.abort()
            sub.close()
