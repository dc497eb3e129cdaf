"""One watched agent's connection state, as a fleet view shows it. Plain Python.

States: `connecting` until the first frame; `live` while frames come; `stale`
when a connected host sent no frame for two of its intervals (a host that
answers but never sends a valid frame turns stale the same way); `reconnecting`
right after a stream ended; `offline` when the agent cannot be reached. The
state a view shows is computed from the time passed in, so no timer is needed
to turn a silent host stale.

The interval of an agent that pushes is learnt from the gaps between its frames
(the smallest recent gap, so one late frame does not stretch it); a polled
agent's interval is the poll interval.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from smicast.fleet.hosts import HostSpec, redact

STALE_AFTER_INTERVALS: Final = 2
DEFAULT_INTERVAL_S: Final = 3.0
MAX_ERROR_CHARS: Final = 200
_GAPS_KEPT: Final = 8


class HostState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


class Transport(StrEnum):
    SSE = "sse"  # GET /events, pushed
    SNAPSHOT = "snapshot"  # GET /snapshot, polled
    METRICS = "metrics"  # GET /metrics, polled and parsed (all-smi's method)


@dataclass
class HostLink:
    spec: HostSpec
    state: HostState = HostState.CONNECTING
    transport: Transport | None = None
    error: str | None = None  # the last problem; cleared by the next good frame
    last_frame_s: float | None = None  # monotonic time of the last good frame
    opened_s: float | None = None  # when the current connection was answered
    interval_s: float = DEFAULT_INTERVAL_S
    frames: int = 0  # good frames received
    invalid: int = 0  # frames dropped: not JSON, another schema, over the size bound
    lost: int = 0  # frames the agent said it skipped for us (`lag`), or a seq gap
    restarts: int = 0  # the agent's sequence went back: it was restarted
    connects: int = 0
    last_event_id: str | None = None
    _gaps: deque[float] = field(default_factory=lambda: deque(maxlen=_GAPS_KEPT))

    @property
    def label(self) -> str:
        return self.spec.label

    def state_at(self, now_s: float) -> HostState:
        """The state to show at monotonic time `now_s`."""
        if self.state is HostState.LIVE or self.state is HostState.CONNECTING:
            mark, opened = self.last_frame_s, self.opened_s
            if opened is not None and (mark is None or opened > mark):
                mark = opened
            if mark is not None and now_s - mark > STALE_AFTER_INTERVALS * self.interval_s:
                return HostState.STALE  # connected, but no frame comes
        return self.state

    def opened(self, now_s: float) -> None:
        """The agent answered; frames should follow."""
        self.opened_s = now_s

    def frame(self, now_s: float, *, polled_every_s: float | None = None) -> None:
        """A good frame arrived."""
        if polled_every_s is not None:
            self.interval_s = polled_every_s
        elif self.last_frame_s is not None:
            gap = now_s - self.last_frame_s
            if gap > 0.01:  # frames replayed back to back after a resume say nothing
                self._gaps.append(gap)
                self.interval_s = max(min(self._gaps), 0.05)
        self.last_frame_s = now_s
        self.frames += 1
        self.state = HostState.LIVE
        self.error = None

    def fail(self, message: str, state: HostState) -> None:
        self.error = redact(message)[:MAX_ERROR_CHARS]
        self.state = state

    def problem(self, message: str) -> None:
        """Something wrong that does not end the connection (a bad frame)."""
        self.error = redact(message)[:MAX_ERROR_CHARS]
