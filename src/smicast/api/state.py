"""What the server's handlers share: settings, the bus, the collector, self-metrics."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from smicast.api.bus import FrameBus
from smicast.api.connections import ConnectionGuard
from smicast.api.frame import Frame
from smicast.collect import Collector
from smicast.encode import with_process_limits
from smicast.energy.account import EnergyAccount
from smicast.envconfig import lookup
from smicast.include import Section
from smicast.readers import default_hostname
from smicast.schema import Snapshot

log = logging.getLogger("smicast.api")

DEFAULT_MAX_SUBSCRIBERS: Final = 10_000
FRESH_COLLECT_TIMEOUT_S: Final = 5.0


def max_subscribers_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    env = lookup("API_MAX_SSE_SUBSCRIBERS", environ)  # all-smi's name is the fallback
    if env is None:
        return DEFAULT_MAX_SUBSCRIBERS
    raw = env.value
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        log.warning(
            "%s=%r is not a whole number >= 0; using %d",
            env.name,
            raw[:64],
            DEFAULT_MAX_SUBSCRIBERS,
        )
        return DEFAULT_MAX_SUBSCRIBERS
    return value


@dataclass
class ApiState:
    interval_s: float
    sections: frozenset[Section]  # what each cycle collects
    collector: Collector | None  # None when serving a recording
    max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS
    hostname: str = field(default_factory=default_hostname)
    dashboard: bool = True
    monotonic: Callable[[], float] = time.monotonic
    bus: FrameBus = field(init=False)
    ready: bool = False  # a collection cycle has completed
    frames_published: int = 0
    on_first_frame: Callable[[Snapshot], None] | None = None  # the startup "found" line
    energy: EnergyAccount | None = None  # None when serving a recording
    connections: ConnectionGuard | None = None  # set by the server once it listens
    _fresh: asyncio.Future[Frame] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.bus = FrameBus(self.interval_s, self.render_frame_metrics, monotonic=self.monotonic)

    def publish(self, snapshot: Snapshot) -> Frame:
        """Every frame goes out through here, so every surface gets the process string caps."""
        self.ready = True
        self.frames_published += 1
        if self.frames_published == 1 and self.on_first_frame is not None:
            self.on_first_frame(snapshot)
        if self.energy is not None:
            self.energy.observe(snapshot, self.monotonic())
        return self.bus.publish(with_process_limits(snapshot))

    def collect_frame(self) -> asyncio.Future[Frame]:
        """The collection in flight, else a new one: the loop's ticks and /snapshot share it.

        (Two collections back to back would publish a frame whose CPU figures cover only
        the moments between them.)
        """
        if self._fresh is None or self._fresh.done():
            self._fresh = asyncio.ensure_future(self._collect_and_publish())
        return self._fresh

    async def _collect_and_publish(self) -> Frame:
        from smicast.pacing import in_daemon_thread

        collector = self.collector
        if collector is None:
            raise LookupError("no frame has been replayed yet")
        snapshot = await in_daemon_thread(collector.collect, self.sections)
        return self.publish(snapshot)

    # -- /metrics ---------------------------------------------------------------
    def render_frame_metrics(self, snapshot: Snapshot) -> bytes:
        from smicast.prometheus import render_metrics

        text = render_metrics(snapshot, ready=True, extra=self.energy_metrics())
        return text.encode("utf-8") + self.self_metrics().encode("utf-8")

    def energy_metrics(self) -> str:
        """`all_smi_energy_consumed_joules_total`, the last all_smi_* family, as all-smi orders it."""
        if self.energy is None:
            return ""
        from smicast.prometheus.energy import render_energy

        return render_energy(self.energy.rows())

    def baseline_metrics(self) -> bytes:
        """Before the first frame: never empty, `all_smi_up 0` first."""
        from smicast.prometheus import render_baseline

        return (render_baseline(ready=False, hostname=self.hostname) + self.self_metrics()).encode(
            "utf-8"
        )

    def self_metrics(self) -> str:
        """Data freshness: how long collection takes, when each reader last succeeded."""
        out = [
            "# HELP smicast_sse_subscribers Open /events streams.",
            "# TYPE smicast_sse_subscribers gauge",
            f"smicast_sse_subscribers {self.bus.subscriber_count}",
            "# HELP smicast_frames_published_total Frames published since start.",
            "# TYPE smicast_frames_published_total counter",
            f"smicast_frames_published_total {self.frames_published}",
        ]
        if self.bus.last_publish_s is not None:
            out += [
                "# HELP smicast_sse_fanout_seconds Time the last frame took to reach every subscriber's socket.",
                "# TYPE smicast_sse_fanout_seconds gauge",
                f"smicast_sse_fanout_seconds {self.bus.last_publish_s:.6f}",
            ]
        if self.connections is not None:
            out.append(self.connections.metrics_text().rstrip("\n"))
        collector = self.collector
        if collector is None:
            return "\n".join(out) + "\n"
        if collector.last_duration_s is not None:
            out += [
                "# HELP smicast_collection_duration_seconds Wall time of the last collection cycle.",
                "# TYPE smicast_collection_duration_seconds gauge",
                f"smicast_collection_duration_seconds {collector.last_duration_s:.6f}",
            ]
        stats = collector.reader_stats()
        out += [
            "# HELP smicast_reader_last_success_timestamp_seconds Unix time of each reader's last good read.",
            "# TYPE smicast_reader_last_success_timestamp_seconds gauge",
        ]
        out += [
            f'smicast_reader_last_success_timestamp_seconds{{reader="{s.name}",section="{s.section.value}"}} '
            f"{s.last_success_s:.3f}"
            for s in stats
            if s.last_success_s is not None
        ]
        out += [
            "# HELP smicast_reader_errors_total Reader failures by kind (timeout, error, panic: a bug).",
            "# TYPE smicast_reader_errors_total counter",
        ]
        out += [
            f'smicast_reader_errors_total{{reader="{s.name}",section="{s.section.value}",kind="{kind}"}} {n}'
            for s in stats
            for kind, n in sorted(s.errors.items())
        ]
        return "\n".join(out) + "\n"
