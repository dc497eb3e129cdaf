"""A frame's readings now, its typed Snapshot when something asks: what a fleet decodes.

A fleet viewer takes hundreds of frames a second but shows one host's full layout
at a time. Every frame still feeds every host's history, alerts, energy and tile,
and those read a few fields per device: `Readings` decodes only those (about a
third of the cost of a full 8-GPU frame, which spends most of its time on the
GPUs' `detail` maps and the process list). `LazyFrame` keeps the bytes and builds
the `Snapshot` once, when a view needs the rest (the selected host's tab, the
users tab, a recording).

The reading types use the schema's field names, types and defaults, so code that
reads those fields takes a `Snapshot` section or a `Readings` section alike. A
frame whose readings decode but whose full Snapshot does not is malformed outside
the fields read every frame: `snapshot()` then returns None and `error` says why.
"""

from __future__ import annotations

from typing import Final

import msgspec
from msgspec import UNSET, UnsetType

from smicast.encode import decode_snapshot
from smicast.schema import GPU_METRIC_UNAVAILABLE, SCHEMA_VERSION, Snapshot

_ERROR_CHARS: Final = 120


class _Reading(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """Base of the reading types: unknown fields are skipped, not built."""


class GpuReading(_Reading, kw_only=True, frozen=True, gc=False):
    hostname: str
    name: str
    power_consumption: float | None = GPU_METRIC_UNAVAILABLE
    temperature: int = 0
    total_memory: int = 0
    used_memory: int = 0
    utilization: float | None = GPU_METRIC_UNAVAILABLE
    uuid: str


class CpuReading(_Reading, kw_only=True, frozen=True, gc=False):
    hostname: str
    power_consumption: float | None = None
    utilization: float | None = 0.0


class MemoryReading(_Reading, kw_only=True, frozen=True, gc=False):
    total_bytes: int
    used_bytes: int


class ChassisReading(_Reading, kw_only=True, frozen=True, gc=False):
    hostname: str
    total_power_watts: float | None = None


class Readings(_Reading, kw_only=True, frozen=True, gc=False):
    chassis: list[ChassisReading] | UnsetType = UNSET
    cpus: list[CpuReading] | UnsetType = UNSET
    gpus: list[GpuReading] | UnsetType = UNSET
    hostname: str
    memory: list[MemoryReading] | UnsetType = UNSET
    schema: int = SCHEMA_VERSION
    timestamp: str


_READINGS = msgspec.json.Decoder(Readings)


class LazyFrame:
    """One frame's bytes and readings; its Snapshot is built on the first `snapshot()`."""

    __slots__ = ("_data", "_snapshot", "error", "readings")

    def __init__(self, data: bytes, readings: Readings) -> None:
        self._data: bytes | None = data
        self.readings = readings
        self._snapshot: Snapshot | None = None
        self.error: str | None = None

    @classmethod
    def decode(cls, data: bytes) -> LazyFrame:
        """Raises msgspec.DecodeError / ValidationError as a full decode would for JSON that
        is broken or readings of the wrong type."""
        return cls(data, _READINGS.decode(data))

    def snapshot(self) -> Snapshot | None:
        """The typed frame (built once; the bytes are dropped then), or None if malformed."""
        data = self._data
        if data is not None:
            self._data = None
            try:
                self._snapshot = decode_snapshot(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.error = f"invalid frame: {str(exc)[:_ERROR_CHARS]}"
        return self._snapshot
