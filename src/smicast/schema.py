"""The schema-1 Snapshot: one data shape for `snapshot`, `record`, `/snapshot` and `/events`.

The types mirror all-smi's Snapshot field for field (see the project docs). Keys are
written sorted by the encoder, so field order here follows the reference for reading.
Every float is `float | None`: NaN and infinities are written as null, and a frame
with null where a number was must still decode (all-smi cannot read those back).

Sentinels follow all-smi: GPU `utilization`/`power_consumption` -1.0 means unavailable,
`temperature`/`frequency` 0 means unavailable.
"""

from __future__ import annotations

import time
from typing import Final, Literal

import msgspec
from msgspec import UNSET, UnsetType

SCHEMA_VERSION: Final = 1

GPU_METRIC_UNAVAILABLE: Final = -1.0
MAX_GPU_FAN_RPM: Final = 100_000

ErrorKind = Literal["timeout", "error", "panic"]


class _Record(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """Base of every wire type: immutable, keyword-only, untracked by the cyclic GC."""


class NvLinkRemoteDevice(_Record, kw_only=True, frozen=True, gc=False):
    link_index: int
    remote_type: str  # "gpu" | "ibmnpu" | "switch" | "unknown"
    bandwidth_mb_s: int | None = None


class GpmMetrics(_Record, kw_only=True, frozen=True, gc=False):
    sm_occupancy: float | None = None
    memory_bandwidth_utilization: float | None = None


class GpuInfo(_Record, kw_only=True, frozen=True, gc=False):
    uuid: str
    time: str
    name: str
    device_type: str  # "GPU" | "NPU" | "TPU"
    host_id: str
    hostname: str
    instance: str
    utilization: float | None = GPU_METRIC_UNAVAILABLE
    ane_utilization: float | None = 0.0
    dla_utilization: float | None = None
    tensorcore_utilization: float | None = None
    temperature: int = 0
    used_memory: int = 0
    total_memory: int = 0
    frequency: int = 0
    power_consumption: float | None = GPU_METRIC_UNAVAILABLE
    gpu_core_count: int | None = None
    temperature_threshold_slowdown: int | None = None
    temperature_threshold_shutdown: int | None = None
    temperature_threshold_max_operating: int | None = None
    temperature_threshold_acoustic: int | None = None
    performance_state: int | None = None
    fan_speed_rpm: int | None = None
    numa_node_id: int | None = None
    gsp_firmware_mode: int | None = None
    gsp_firmware_version: str | None = None
    nvlink_remote_devices: list[NvLinkRemoteDevice] = msgspec.field(default_factory=list)
    gpm_metrics: GpmMetrics | None = None
    detail: dict[str, str] = msgspec.field(default_factory=dict)


class CpuSocketInfo(_Record, kw_only=True, frozen=True, gc=False):
    socket_id: int
    utilization: float | None
    cores: int
    threads: int
    temperature: int | None = None
    frequency_mhz: int = 0


class AppleSiliconCpuInfo(_Record, kw_only=True, frozen=True, gc=False):
    s_core_count: int = 0
    p_core_count: int = 0
    e_core_count: int = 0
    gpu_core_count: int = 0
    s_core_utilization: float | None = 0.0
    p_core_utilization: float | None = 0.0
    e_core_utilization: float | None = 0.0
    ane_ops_per_second: float | None = None
    s_cluster_frequency_mhz: int | None = None
    p_cluster_frequency_mhz: int | None = None
    e_cluster_frequency_mhz: int | None = None
    s_core_l2_cache_mb: int | None = None
    p_core_l2_cache_mb: int | None = None
    e_core_l2_cache_mb: int | None = None


CoreType = Literal["Super", "Performance", "Efficiency", "Standard"]


class CoreUtilization(_Record, kw_only=True, frozen=True, gc=False):
    core_id: int
    core_type: CoreType = "Standard"
    utilization: float | None = 0.0


# "Intel" | "Amd" | "AppleSilicon" | "Arm" | {"Other": "<name>"}
PlatformType = str | dict[str, str]


class CpuInfo(_Record, kw_only=True, frozen=True, gc=False):
    index: int = 0
    host_id: str
    hostname: str
    instance: str
    cpu_model: str
    architecture: str
    platform_type: PlatformType
    socket_count: int
    total_cores: int
    total_threads: int
    base_frequency_mhz: int = 0
    max_frequency_mhz: int = 0
    cache_size_mb: int = 0
    utilization: float | None = 0.0
    temperature: int | None = None
    power_consumption: float | None = None
    per_socket_info: list[CpuSocketInfo] = msgspec.field(default_factory=list)
    apple_silicon_info: AppleSiliconCpuInfo | None = None
    per_core_utilization: list[CoreUtilization] = msgspec.field(default_factory=list)
    time: str


class MemoryInfo(_Record, kw_only=True, frozen=True, gc=False):
    index: int = 0
    host_id: str
    hostname: str
    instance: str
    total_bytes: int
    used_bytes: int
    available_bytes: int
    free_bytes: int
    buffers_bytes: int = 0
    cached_bytes: int = 0
    swap_total_bytes: int = 0
    swap_used_bytes: int = 0
    swap_free_bytes: int = 0
    utilization: float | None = 0.0
    time: str


class FanInfo(_Record, kw_only=True, frozen=True, gc=False):
    id: int
    name: str
    speed_rpm: int
    max_rpm: int = 0


PsuStatus = Literal["Unknown", "Ok", "Degraded", "Failed", "NotPresent"]


class PsuInfo(_Record, kw_only=True, frozen=True, gc=False):
    id: int
    name: str
    status: PsuStatus = "Unknown"
    power_watts: float | None = None


class ChassisInfo(_Record, kw_only=True, frozen=True, gc=False):
    host_id: str
    hostname: str
    instance: str
    total_power_watts: float | None = None
    inlet_temperature: float | None = None
    outlet_temperature: float | None = None
    thermal_pressure: str | None = None
    fan_speeds: list[FanInfo] = msgspec.field(default_factory=list)
    psu_status: list[PsuInfo] = msgspec.field(default_factory=list)
    detail: dict[str, str] = msgspec.field(default_factory=dict)
    time: str


class ProcessInfo(_Record, kw_only=True, frozen=True, gc=False):
    device_id: int
    device_uuid: str
    pid: int
    process_name: str
    used_memory: int
    cpu_percent: float | None
    memory_percent: float | None
    memory_rss: int
    memory_vms: int
    user: str
    state: str
    start_time: str
    cpu_time: int
    command: str
    ppid: int
    threads: int
    uses_gpu: bool
    priority: int
    nice_value: int
    gpu_utilization: float | None


class StorageInfo(_Record, kw_only=True, frozen=True, gc=False):
    mount_point: str
    total_bytes: int
    available_bytes: int
    host_id: str
    hostname: str
    index: int


class ReaderError(_Record, kw_only=True, frozen=True, gc=False):
    kind: ErrorKind
    message: str
    section: str


class Snapshot(_Record, kw_only=True, frozen=True, gc=False):
    schema: int = SCHEMA_VERSION
    timestamp: str
    hostname: str
    gpus: list[GpuInfo] | UnsetType = UNSET
    cpus: list[CpuInfo] | UnsetType = UNSET
    memory: list[MemoryInfo] | UnsetType = UNSET
    chassis: list[ChassisInfo] | UnsetType = UNSET
    processes: list[ProcessInfo] | UnsetType = UNSET
    storage: list[StorageInfo] | UnsetType = UNSET
    errors: list[ReaderError] | UnsetType = UNSET  # omitted when empty, as all-smi does

    def device_count(self) -> int:
        """Items across every present section; zero means the snapshot is empty."""
        sections = (self.gpus, self.cpus, self.memory, self.chassis, self.processes, self.storage)
        return sum(len(s) for s in sections if s is not UNSET)


def utc_timestamp(epoch_s: float) -> str:
    """RFC 3339, seconds precision, `Z` suffix: the Snapshot `timestamp`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def local_time_text(epoch_s: float) -> str:
    """Per-device `time` field: local time without a zone, as all-smi writes it."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s))
