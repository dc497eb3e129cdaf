"""Shared pieces of the viewer tests: traces of known frames, a fake clock for replay."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from smicast.encode import snapshot_json
from smicast.record.format import header_line
from smicast.schema import Snapshot, utc_timestamp

T0 = 1_776_686_400  # 2026-04-20T12:00:00Z


def write_trace(path: Path, frames: Sequence[Snapshot], interval_ms: int = 1000) -> Path:
    lines = [header_line([frames[0].hostname] if frames else [], interval_ms)]
    lines += [snapshot_json(f) + b"\n" for f in frames]
    path.write_bytes(b"".join(lines))
    return path


def stamp(offset_s: float) -> str:
    return utc_timestamp(T0 + offset_s)


class FakeTime:
    """A monotonic clock that moves only when the replay waits out a timeout."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        await asyncio.sleep(0)
        if event.is_set():
            return True
        self.waits.append(timeout_s)
        self.now += timeout_s
        return False


def simulated_frames(count: int, n_frames: int, *, hostname: str = "gpu-node-01") -> list[Snapshot]:
    """`n_frames` one second apart from `count` simulated NVIDIA GPUs, with cores and processes."""
    from smicast.readers.simulated import SimulatedReader
    from smicast.schema import CoreUtilization
    from tests.fakes import make_cpu, make_memory

    now = [float(T0)]
    reader = SimulatedReader("nvidia", count, seed=7, hostname=hostname, clock=lambda: now[0])
    frames = []
    for i in range(n_frames):
        now[0] = T0 + i
        gpus = reader.read()
        procs = [p.info for p in reader.read_processes() if p.info is not None]
        cores = [
            CoreUtilization(core_id=c, utilization=float((c * 7 + i * 3) % 100)) for c in range(32)
        ]
        frames.append(
            Snapshot(
                timestamp=stamp(i),
                hostname=hostname,
                gpus=gpus,
                cpus=[make_cpu(hostname=hostname, per_core_utilization=cores)],
                memory=[make_memory(hostname=hostname)],
                chassis=[],
                processes=procs,
            )
        )
    return frames


class ListSource:
    """A source that yields the given events, then whatever `push()` adds."""

    kind = "local"
    label = "test source"

    def __init__(self, events: Sequence[object] = (), *, signals_processes: bool = False) -> None:
        self.signals_processes = signals_processes
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        for e in events:
            self._queue.put_nowait(e)

    def push(self, event: object) -> None:
        self._queue.put_nowait(event)

    async def events(self):  # type: ignore[no-untyped-def]
        while True:
            yield await self._queue.get()
