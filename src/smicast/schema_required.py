"""The Snapshot fields all-smi declares non-optional, and a walk that finds null in them.

all-smi's serde types (`src/device/types.rs`, `src/storage/info.rs`,
`src/snapshot/options.rs`) give most fields a plain type (`f64`, `u32`, `String`,
`Vec<…>`) and only some `Option<…>`. A `null` in a plain field makes its parser
reject the whole frame: `view --replay` drops it, a Rust client of `/snapshot` or
`/events` fails. smicast's encoder writes NaN and infinities as `null`, so a
non-finite float counts as null too. `Option<…>` fields may be null (all-smi
writes them so); fields smicast adds may be null as well, all-smi ignores them.

`REQUIRED` is that list, transcribed once from all-smi's types; `required_nulls()`
is the guard the tests run over every reader and code path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import msgspec
from msgspec import UNSET

from smicast.schema import (
    AppleSiliconCpuInfo,
    ChassisInfo,
    CoreUtilization,
    CpuInfo,
    CpuSocketInfo,
    FanInfo,
    GpmMetrics,
    GpuInfo,
    MemoryInfo,
    NvLinkRemoteDevice,
    ProcessInfo,
    PsuInfo,
    ReaderError,
    Snapshot,
    StorageInfo,
)

__all__ = ["EXTENSIONS", "REQUIRED", "required_nulls"]

_IDENTITY: Final = ("host_id", "hostname", "instance")

REQUIRED: Final[Mapping[type[msgspec.Struct], frozenset[str]]] = {
    # The sections are `Option<Vec<…>>` (absent when not asked for); `errors` a `Vec`.
    Snapshot: frozenset({"schema", "timestamp", "hostname", "errors"}),
    GpuInfo: frozenset(
        {
            "uuid",
            "time",
            "name",
            "device_type",
            *_IDENTITY,
            "utilization",
            "ane_utilization",
            "temperature",
            "used_memory",
            "total_memory",
            "frequency",
            "power_consumption",
            "nvlink_remote_devices",
            "detail",
        }
    ),
    NvLinkRemoteDevice: frozenset({"link_index", "remote_type"}),
    GpmMetrics: frozenset(),
    CpuInfo: frozenset(
        {
            "index",
            *_IDENTITY,
            "cpu_model",
            "architecture",
            "platform_type",
            "socket_count",
            "total_cores",
            "total_threads",
            "base_frequency_mhz",
            "max_frequency_mhz",
            "cache_size_mb",
            "utilization",
            "per_socket_info",
            "per_core_utilization",
            "time",
        }
    ),
    CpuSocketInfo: frozenset({"socket_id", "utilization", "cores", "threads", "frequency_mhz"}),
    AppleSiliconCpuInfo: frozenset(
        {
            "s_core_count",
            "p_core_count",
            "e_core_count",
            "gpu_core_count",
            "s_core_utilization",
            "p_core_utilization",
            "e_core_utilization",
        }
    ),
    CoreUtilization: frozenset({"core_id", "core_type", "utilization"}),
    MemoryInfo: frozenset(
        {
            "index",
            *_IDENTITY,
            "total_bytes",
            "used_bytes",
            "available_bytes",
            "free_bytes",
            "buffers_bytes",
            "cached_bytes",
            "swap_total_bytes",
            "swap_used_bytes",
            "swap_free_bytes",
            "utilization",
            "time",
        }
    ),
    ChassisInfo: frozenset({*_IDENTITY, "fan_speeds", "psu_status", "detail", "time"}),
    FanInfo: frozenset({"id", "name", "speed_rpm", "max_rpm"}),
    PsuInfo: frozenset({"id", "name", "status"}),
    # No serde defaults at all: every field required, three of them f64.
    ProcessInfo: frozenset(ProcessInfo.__struct_fields__),
    StorageInfo: frozenset(StorageInfo.__struct_fields__),
    ReaderError: frozenset({"section", "kind", "message"}),
}


# Fields smicast adds to all-smi's types; written only when known (all-smi ignores them).
EXTENSIONS: Final[Mapping[type[msgspec.Struct], frozenset[str]]] = {
    GpuInfo: frozenset({"pcie_link_generation", "pcie_link_width"}),
}


def _is_null(value: object) -> bool:
    return value is None or (type(value) is float and not math.isfinite(value))


def required_nulls(value: object, path: str = "") -> list[str]:
    """Dot paths (`gpus.0.utilization`) where a required field would be written as null."""
    found: list[str] = []
    if isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(required_nulls(item, f"{path}.{index}" if path else str(index)))
        return found
    if not isinstance(value, msgspec.Struct):
        return found
    required = REQUIRED[type(value)]
    for name in value.__struct_fields__:
        field = getattr(value, name)
        where = f"{path}.{name}" if path else name
        if field is UNSET:
            continue
        if name in required and _is_null(field):
            found.append(where)
        elif isinstance(field, (list, msgspec.Struct)):
            found.extend(required_nulls(field, where))
    return found
