"""Replay for the viewer: a trace held as an index of frames, played with pause, speed and seeks.

Opening reads the files once: each frame line is checked (schema 1, timestamp,
host name) without building the typed Snapshot, and kept as bytes with its
timestamp, so a one-hour trace at 1 s opens in a fraction of a second and any
seek is a list lookup. The typed frame is built only for the frame shown. The
bytes held are bounded (`MAX_REPLAY_BYTES`); a larger trace is refused with a
message that names the bound.

Playback follows all-smi's replay keys: pause, step one frame, a speed ladder
0.25x..8x, seek by 10 s, jump to a time, loop. Frame k+1 is shown
`(ts[k+1] - ts[k]) / speed` after frame k was; the wait is cut short by any
control, so keys act at once. Time and waiting are passed in.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from smicast.record.reader import TraceError, TraceStats, iter_trace_frames
from smicast.record.replay import timestamp_epoch
from smicast.schema import Snapshot
from smicast.view.model import SourceEvent

MAX_REPLAY_BYTES: Final = 1 << 30
SPEEDS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SEEK_STEP_S: Final = 10.0

_DECODE: Final = msgspec.json.Decoder(Snapshot).decode

Waiter = Callable[[asyncio.Event, float], Awaitable[bool]]


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """True when `event` was set within `timeout_s`, False when the time ran out."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


class Trace:
    """Every frame line of a trace with its time, in file order."""

    def __init__(self, paths: Sequence[Path], max_bytes: int = MAX_REPLAY_BYTES) -> None:
        self.paths = list(paths)
        self.stats = TraceStats()
        self.lines: list[bytes] = []
        self.hostnames: list[str] = []
        epochs: list[float] = []
        held = 0
        last = 0.0
        for frame in iter_trace_frames(self.paths, self.stats):
            line = bytes(frame.line)
            held += len(line)
            if held > max_bytes:
                raise TraceError(
                    f"the trace holds more than {max_bytes >> 20} MiB of frames; "
                    "view fewer segments at a time"
                )
            epoch = timestamp_epoch(frame.timestamp)
            last = last if epoch is None else max(last, epoch) if epochs else epoch
            epochs.append(last)  # never backwards: seeks bisect on this
            self.lines.append(line)
            self.hostnames.append(frame.hostname)
        self.epochs = epochs

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def duration_s(self) -> float:
        return self.epochs[-1] - self.epochs[0] if self.epochs else 0.0

    def offset_s(self, position: int) -> float:
        return self.epochs[position] - self.epochs[0] if self.epochs else 0.0

    def position_at(self, offset_s: float) -> int:
        """The first frame at or after `offset_s` into the trace (the last frame past the end)."""
        if not self.epochs:
            return 0
        pos = bisect.bisect_left(self.epochs, self.epochs[0] + max(0.0, offset_s))
        return min(pos, len(self.epochs) - 1)

    def gap_s(self, position: int) -> float:
        """Recorded seconds between frame `position` and the next."""
        if position + 1 >= len(self.epochs):
            return 0.0
        return self.epochs[position + 1] - self.epochs[position]

    def loop_gap_s(self) -> float:
        header = self.stats.header
        if header and header.interval_ms:
            return header.interval_ms / 1000
        return self.gap_s(len(self) - 2) if len(self) > 1 else 1.0


@dataclass(frozen=True)
class ReplayStatus:
    position: int
    frames: int
    offset_s: float
    duration_s: float
    speed: float
    playing: bool
    loop: bool


class ReplaySource:
    """A `FrameSource` over a trace, with the controls the viewer's keys call."""

    kind = "replay"
    signals_processes = False

    def __init__(
        self,
        trace: Trace,
        *,
        speed: float = 1.0,
        loop: bool = False,
        start_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Waiter = wait_event,
    ) -> None:
        self.trace = trace
        self.label = "replay " + ", ".join(p.name for p in trace.paths)
        self.speed = min(max(speed, SPEEDS[0]), SPEEDS[-1])
        self.loop = loop
        self.playing = True
        self.position = trace.position_at(start_s)
        self._monotonic = monotonic
        self._wait = wait
        self._wake = asyncio.Event()
        self._show = True  # the frame at `position` is due at once (start, seek, step)
        self._rewound = False

    # ---- controls (called from the UI; each wakes the player) ----

    def _changed(self) -> None:
        self._wake.set()

    def toggle_pause(self) -> None:
        if not self.playing and self.position >= len(self.trace) - 1 and self.loop:
            self._seek(0)  # un-pausing at the end with loop on starts over, as all-smi does
        self.playing = not self.playing
        self._changed()

    def step(self, frames: int) -> None:
        self.playing = False
        self._seek(self.position + frames)

    def faster(self) -> None:
        self.speed = next((s for s in SPEEDS if s > self.speed), SPEEDS[-1])
        self._changed()

    def slower(self) -> None:
        self.speed = next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0])
        self._changed()

    def seek_by(self, seconds: float) -> None:
        self._seek(self.trace.position_at(self.trace.offset_s(self.position) + seconds))

    def jump_to(self, offset_s: float) -> None:
        self._seek(self.trace.position_at(offset_s))

    def toggle_loop(self) -> None:
        self.loop = not self.loop
        self._changed()

    def _seek(self, position: int) -> None:
        if not len(self.trace):
            return
        self.position = min(max(position, 0), len(self.trace) - 1)
        self._show = self._rewound = True
        self._changed()

    def status(self) -> ReplayStatus:
        return ReplayStatus(
            self.position,
            len(self.trace),
            self.trace.offset_s(self.position),
            self.trace.duration_s,
            self.speed,
            self.playing,
            self.loop,
        )

    # ---- the frames ----

    def _event(self) -> SourceEvent:
        trace, pos = self.trace, self.position
        rewound, self._rewound = self._rewound, False
        host = trace.hostnames[pos]
        try:
            snap = _DECODE(trace.lines[pos])
        except msgspec.DecodeError as exc:
            return SourceEvent(host, error=f"frame {pos + 1} is malformed: {exc}")
        return SourceEvent(host, snap, rewound=rewound)

    async def events(self) -> AsyncIterator[SourceEvent]:
        trace = self.trace
        shown_at = self._monotonic()
        while True:
            self._wake.clear()
            if self._show and len(trace):
                self._show = False
                shown_at = self._monotonic()
                yield self._event()
                continue
            nxt = self.position + 1
            gap = trace.gap_s(self.position)
            if nxt >= len(trace):
                if not self.loop:
                    self.playing = False
                nxt, gap = 0, trace.loop_gap_s()
            if not self.playing or not len(trace):
                await self._wake.wait()
                continue
            remaining = shown_at + gap / self.speed - self._monotonic()
            if remaining > 0 and await self._wait(self._wake, remaining):
                continue  # a control changed something: start over with the new state
            shown_at = max(shown_at + gap / self.speed, self._monotonic() - 1.0)
            self._rewound = nxt == 0
            self.position = nxt
            yield self._event()
