"""Readers: the one family of interchangeable parts.

A reader has a `name` (what it is, e.g. `nvidia`), a `section` (which part of the
Snapshot it fills) and a synchronous `read()`. It inherits from nothing; its
outside world (`/proc`, `/sys`, the NVML module, a clock) comes in through the
constructor with a real default, so tests hand it a captured tree or a fake.

Low-level failures leave a reader as `ReadError`; the collector turns any
exception into an `errors` entry of the Snapshot. GPU readers also report the
processes using each device (`read_processes`), which the process reader enriches.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from smicast.include import Section
from smicast.schema import (
    ChassisInfo,
    CpuInfo,
    GpuInfo,
    MemoryInfo,
    ProcessInfo,
    StorageInfo,
)

Item = GpuInfo | CpuInfo | MemoryInfo | ChassisInfo | ProcessInfo | StorageInfo
Clock = Callable[[], float]
WALL_CLOCK: Clock = time.time


class ReadError(Exception):
    """A reader could not read its source (file vanished, driver call failed...)."""


@runtime_checkable
class Reader(Protocol):
    name: str
    section: Section

    def read(self) -> Sequence[Item]: ...


class GpuProcess(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A process a GPU reader saw on one of its devices.

    Real readers leave `info` unset and the process reader fills the rest from
    `/proc`; the simulated reader supplies a complete `info` (its pids are not real).
    """

    device_id: int
    device_uuid: str
    pid: int
    used_memory: int
    gpu_utilization: float | None = 0.0
    info: ProcessInfo | None = None


@runtime_checkable
class GpuReader(Reader, Protocol):
    def read_processes(self) -> Sequence[GpuProcess]: ...


@functools.cache
def default_hostname() -> str:
    """The host name every item carries; read once per process."""
    return socket.gethostname() or "unknown"
