"""Readers: the one family of interchangeable parts.

A reader has a `name` (what it is, e.g. `nvidia`), a `section` (which part of the
Snapshot it fills) and a synchronous `read()`. It inherits from nothing; its
outside world (`/proc`, `/sys`, the NVML module, a clock) comes in through the
constructor with a real default, so tests hand it a captured tree or a fake.

Low-level failures leave a reader as `ReadError` (kind `error` in the Snapshot's
`errors`); any other exception is a bug and becomes kind `panic`. Set-up that
touches hardware is deferred to the first read (`readers.setup`), so the
collector's timeout bounds it. GPU readers also report the
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


class PartialReadError(ReadError):
    """Some devices answered and some did not (a GPU fell off the bus): `items` answered.

    The collector reports `items` and adds an `errors` entry with the message.
    """

    def __init__(self, message: str, items: Sequence[Item]) -> None:
        super().__init__(message)
        self.items = list(items)


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
    gpu_utilization: float = 0.0
    info: ProcessInfo | None = None


@runtime_checkable
class GpuReader(Reader, Protocol):
    def read_processes(self) -> Sequence[GpuProcess]: ...


@functools.cache
def default_hostname() -> str:
    """The host name every item carries; read once per process."""
    return socket.gethostname() or "unknown"
