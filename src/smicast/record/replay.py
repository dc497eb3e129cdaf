"""Playing a trace back at the pace it was recorded, or `speed` times faster.

Frame k is due at `anchor + (ts_k - ts_anchor) / speed` on the monotonic clock,
so time spent by the consumer does not add up into drift. Timestamps have
one-second resolution (the wire format's), so pacing does too. A timestamp that
cannot be parsed counts as no gap; one that goes backwards (segments out of
order) re-anchors without waiting. A gap longer than `max_gap_s(header)` (a clock
that jumped, a far-future timestamp) is cut to that length, with a warning, so one
bad timestamp never stalls playback for days. With `loop`, playback restarts from the
beginning of the trace (not from `start_s`, as all-smi does) one recorded
interval after the last frame.

`play()` is what `smicast api --replay` serves from; it reads the files in the
event loop's thread, one bounded chunk at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from smicast.record.reader import TraceFrame, TraceHeaderInfo, TraceStats, iter_trace_frames
from smicast.schema import Snapshot

MIN_SPEED: Final = 0.01
MAX_SPEED: Final = 10_000.0
_DEFAULT_LOOP_GAP_S: Final = 1.0
MIN_MAX_GAP_S: Final = 60.0  # the longest gap honoured is this or 10 intervals, if longer
_MAX_GAP_INTERVALS: Final = 10


def timestamp_epoch(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 `timestamp`, or None when unparseable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # the wire format is UTC; read a zone-less value as UTC too
        return moment.replace(tzinfo=UTC).timestamp()
    return moment.timestamp()


def check_speed(speed: float) -> float:
    """The speed if it is usable; raises ValueError (with the bounds) otherwise."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}, got {speed:g}")
    return speed


def max_gap_s(header: TraceHeaderInfo | None) -> float:
    """The longest recorded gap replayed as it is: 60 s, or 10 recorded intervals."""
    interval_s = header.interval_ms / 1000 if header and header.interval_ms else 0.0
    return max(MIN_MAX_GAP_S, _MAX_GAP_INTERVALS * interval_s)


class Pacer:
    """How long to wait before each frame; pure, so tests drive it with any clock."""

    def __init__(
        self,
        speed: float,
        *,
        max_gap_s: float = MIN_MAX_GAP_S,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.speed = check_speed(speed)
        self.max_gap_s = max_gap_s
        self._warn = warn
        self._anchor: tuple[float, float] | None = None  # (monotonic, epoch)
        self._last_epoch: float | None = None
        self._resume_at: float | None = None

    def wait_s(self, epoch: float | None, now: float) -> float:
        if epoch is None:
            epoch = self._last_epoch
            if epoch is None:
                return 0.0
        last = self._last_epoch
        if self._anchor is None or (last is not None and epoch < last):
            self._anchor = (now if self._resume_at is None else self._resume_at, epoch)
            self._resume_at = None
        elif last is not None and epoch - last > self.max_gap_s:
            anchor_now, anchor_epoch = self._anchor
            last_due = anchor_now + (last - anchor_epoch) / self.speed
            self._anchor = (last_due + self.max_gap_s / self.speed, epoch)
            if self._warn is not None:
                self._warn(
                    f"a gap of {epoch - last:.0f} s between frames was cut to "
                    f"{self.max_gap_s:g} s (the clock jumped, or a timestamp is wrong)"
                )
        self._last_epoch = epoch
        anchor_now, anchor_epoch = self._anchor
        return max(0.0, anchor_now + (epoch - anchor_epoch) / self.speed - now)

    def rewind(self, gap_s: float) -> None:
        """Start over: the next frame is due `gap_s` recorded seconds after the last one."""
        if self._anchor is not None and self._last_epoch is not None:
            anchor_now, anchor_epoch = self._anchor
            self._resume_at = anchor_now + (self._last_epoch - anchor_epoch + gap_s) / self.speed
        self._anchor = None
        self._last_epoch = None


def timeline(
    paths: Sequence[Path], *, loop: bool, start_s: float = 0.0, stats: TraceStats | None = None
) -> Iterator[tuple[TraceFrame, float | None, float | None]]:
    """(frame, epoch, loop gap): the gap is set on the first frame of every pass after the first."""
    first_pass = stats if stats is not None else TraceStats()
    pass_stats, skip_s, gap = first_pass, start_s, None
    while True:
        first: float | None = None
        last: float | None = None
        step = 0.0  # the last positive gap seen: the loop gap when the header has none
        emitted = False
        for snap in iter_trace_frames(paths, pass_stats):
            epoch = timestamp_epoch(snap.timestamp)
            if epoch is not None:
                if first is None:
                    first = epoch
                if last is not None and epoch > last:
                    step = epoch - last
                last = epoch
            if skip_s and (first is None or epoch is None or epoch - first < skip_s):
                continue
            yield snap, epoch, gap
            emitted, gap = True, None
        if not loop or not emitted:
            return
        header = first_pass.header
        gap = header.interval_ms / 1000 if header and header.interval_ms else step
        gap = gap or _DEFAULT_LOOP_GAP_S
        pass_stats, skip_s = TraceStats(), 0.0  # count skipped lines once, not once per pass


def paced(
    paths: Sequence[Path],
    *,
    speed: float,
    loop: bool = False,
    start_s: float = 0.0,
    stats: TraceStats | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    warn: Callable[[str], None] | None = None,
) -> Iterator[TraceFrame]:
    """The frames, each returned when it is due."""
    pacer = Pacer(speed, warn=warn)
    counts = stats if stats is not None else TraceStats()
    for snap, epoch, gap in timeline(paths, loop=loop, start_s=start_s, stats=counts):
        pacer.max_gap_s = max_gap_s(counts.header)
        if gap is not None:
            pacer.rewind(gap)
        wait = pacer.wait_s(epoch, monotonic())
        if wait > 0:
            sleep(wait)
        yield snap


async def play(
    paths: Sequence[Path],
    *,
    speed: float = 1.0,
    loop: bool = False,
    start_s: float = 0.0,
    stats: TraceStats | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    warn: Callable[[str], None] | None = None,
) -> AsyncIterator[Snapshot]:
    """Async `paced()`: typed frames at the recorded pace, as recorded (nothing is re-stamped)."""
    pacer = Pacer(speed, warn=warn or _log_warning)
    counts = stats if stats is not None else TraceStats()
    for frame, epoch, gap in timeline(paths, loop=loop, start_s=start_s, stats=counts):
        pacer.max_gap_s = max_gap_s(counts.header)
        try:
            snap = frame.snapshot()
        except msgspec.ValidationError:
            counts.frames -= 1
            counts.corrupt += 1
            continue
        if gap is not None:
            pacer.rewind(gap)
        wait = pacer.wait_s(epoch, monotonic())
        if wait > 0:
            await sleep(wait)
        else:
            await asyncio.sleep(0)  # a fast trace must not starve the server's other tasks
        yield snap


def _log_warning(text: str) -> None:
    logging.getLogger("smicast.replay").warning("%s", text)
