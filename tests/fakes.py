"""Small real objects for tests: snapshots with sensible defaults, readers that misbehave."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from smicast.include import Section
from smicast.readers import Item, ReadError
from smicast.schema import CpuInfo, GpuInfo, MemoryInfo, ProcessInfo, Snapshot


def make_gpu(name: str = "A100", **overrides: Any) -> GpuInfo:
    fields: dict[str, Any] = dict(
        uuid=f"GPU-{name}-UUID",
        time="2026-04-20 12:00:00",
        name=name,
        device_type="GPU",
        host_id="mockhost:9090",
        hostname="mockhost",
        instance="mockhost:9090",
        utilization=80.0,
        temperature=65,
        used_memory=1 << 30,
        total_memory=8 << 30,
        frequency=1500,
        power_consumption=250.0,
    )
    fields.update(overrides)
    return GpuInfo(**fields)


def make_cpu(**overrides: Any) -> CpuInfo:
    fields: dict[str, Any] = dict(
        host_id="mockhost:9090",
        hostname="mockhost",
        instance="mockhost:9090",
        cpu_model="Mock CPU",
        architecture="x86_64",
        platform_type="Intel",
        socket_count=1,
        total_cores=8,
        total_threads=16,
        utilization=25.0,
        temperature=55,
        power_consumption=65.0,
        time="2026-04-20 12:00:00",
    )
    fields.update(overrides)
    return CpuInfo(**fields)


def make_memory(**overrides: Any) -> MemoryInfo:
    gib = 1 << 30
    fields: dict[str, Any] = dict(
        host_id="mockhost:9090",
        hostname="mockhost",
        instance="mockhost:9090",
        total_bytes=32 * gib,
        used_bytes=8 * gib,
        available_bytes=24 * gib,
        free_bytes=24 * gib,
        utilization=25.0,
        time="2026-04-20 12:00:00",
    )
    fields.update(overrides)
    return MemoryInfo(**fields)


def make_process(**overrides: Any) -> ProcessInfo:
    fields: dict[str, Any] = dict(
        device_id=0,
        device_uuid="GPU-A100-UUID",
        pid=4242,
        process_name="python",
        used_memory=512 << 20,
        cpu_percent=12.5,
        memory_percent=1.5,
        memory_rss=1 << 30,
        memory_vms=4 << 30,
        user="alice",
        state="R",
        start_time="1776686400",
        cpu_time=3600,
        command="python train.py --epochs 10",
        ppid=1,
        threads=12,
        uses_gpu=True,
        priority=20,
        nice_value=0,
        gpu_utilization=75.0,
    )
    fields.update(overrides)
    return ProcessInfo(**fields)


def make_snapshot(**overrides: Any) -> Snapshot:
    fields: dict[str, Any] = dict(
        timestamp="2026-04-20T12:00:00Z",
        hostname="mockhost",
        gpus=[make_gpu("A100"), make_gpu("H100", utilization=92.0, temperature=70)],
        cpus=[make_cpu()],
        memory=[make_memory()],
        chassis=[],
    )
    fields.update(overrides)
    return Snapshot(**fields)


class StaticReader:
    """Returns the same items every time."""

    def __init__(self, section: Section, items: Sequence[Item], name: str | None = None) -> None:
        self.section = section
        self.name = name or f"static-{section.value}"
        self._items = list(items)
        self.calls = 0

    def read(self) -> Sequence[Item]:
        self.calls += 1
        return list(self._items)


class HangingReader:
    """Blocks until released: a wedged driver. Counts how often it was entered."""

    def __init__(self, section: Section, name: str = "hanging") -> None:
        self.section = section
        self.name = name
        self.release = threading.Event()
        self.calls = 0

    def read(self) -> Sequence[Item]:
        self.calls += 1
        self.release.wait()
        return []


class FailingReader:
    """A driver error: the reader's edge raises `ReadError` (kind `error`)."""

    def __init__(
        self, section: Section, message: str = "driver said no", name: str = "failing"
    ) -> None:
        self.section = section
        self.name = name
        self.message = message

    def read(self) -> Sequence[Item]:
        raise ReadError(self.message)


class BuggyReader(FailingReader):
    """A bug: an exception no reader expects (kind `panic`)."""

    def read(self) -> Sequence[Item]:
        raise KeyError(self.message)
