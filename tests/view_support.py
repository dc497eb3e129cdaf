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
