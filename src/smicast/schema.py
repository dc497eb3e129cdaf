"""The schema-1 Snapshot: one data shape for `snapshot`, `record`, `/snapshot` and `/events`.

The types mirror all-smi's Snapshot field for field (see the project docs). Fields are
declared in sorted order, the order the encoder writes and every frame is read back in:
msgspec decodes keys that arrive in declaration order measurably faster.
Every float is `float | None`: NaN and infinities are written as null, and a frame
with null where a number was must still decode (all-smi cannot read those back).

`GpuInfo.pcie_link_generation` and `pcie_link_width` are smicast's only additions to
the wire (live values all-smi keeps nowhere but a `detail` map frozen at start).

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
    bandwidth_mb_s: int | None = None
    link_index: int
    remote_type: str  # "gpu" | "ibmnpu" | "switch" | "unknown"


class GpmMetrics(_Record, kw_only=True, frozen=True, gc=False):
    memory_bandwidth_utilization: float | None = None
    sm_occupancy: float | None = None


class GpuInfo(_Record, kw_only=True, frozen=True, gc=False):
    ane_utilization: float | None = 0.0
    detail: dict[str, str] = msgspec.field(default_factory=dict)
    device_type: str  # "GPU" | "NPU" | "TPU"
    dla_utilization: float | None = None
    fan_speed_rpm: int | None = None
    frequency: int = 0
    gpm_metrics: GpmMetrics | None = None
    gpu_core_count: int | None = None
    gsp_firmware_mode: int | None = None
    gsp_firmware_version: str | None = None
    host_id: str
    hostname: str
    instance: str
    name: str
    numa_node_id: int | None = None
    nvlink_remote_devices: list[NvLinkRemoteDevice] = msgspec.field(default_factory=list)
    # smicast's own: the PCIe link as of this read (it trains down at idle). all-smi
    # has only `detail`, read once at start; its parsers ignore unknown keys. Left out
    # of the JSON when unknown, so a frame all-smi wrote re-encodes to the same bytes.
    pcie_link_generation: int | UnsetType = UNSET
    pcie_link_width: int | UnsetType = UNSET
    performance_state: int | None = None
    power_consumption: float | None = GPU_METRIC_UNAVAILABLE
    temperature: int = 0
    temperature_threshold_acoustic: int | None = None
    temperature_threshold_max_operating: int | None = None
    temperature_threshold_shutdown: int | None = None
    temperature_threshold_slowdown: int | None = None
    tensorcore_utilization: float | None = None
    time: str
    total_memory: int = 0
    used_memory: int = 0
    utilization: float | None = GPU_METRIC_UNAVAILABLE
    uuid: str


class CpuSocketInfo(_Record, kw_only=True, frozen=True, gc=False):
    cores: int
    frequency_mhz: int = 0
    socket_id: int
    temperature: int | None = None
    threads: int
    utilization: float | None


class AppleSiliconCpuInfo(_Record, kw_only=True, frozen=True, gc=False):
    ane_ops_per_second: float | None = None
    e_cluster_frequency_mhz: int | None = None
    e_core_count: int = 0
    e_core_utilization: float | None = 0.0
    gpu_core_count: int = 0
    p_cluster_frequency_mhz: int | None = None
    p_core_count: int = 0
    p_core_utilization: float | None = 0.0
    s_cluster_frequency_mhz: int | None = None
    s_core_count: int = 0
    s_core_utilization: float | None = 0.0
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
    apple_silicon_info: AppleSiliconCpuInfo | None = None
    architecture: str
    base_frequency_mhz: int = 0
    cache_size_mb: int = 0
    cpu_model: str
    host_id: str
    hostname: str
    index: int = 0
    instance: str
    max_frequency_mhz: int = 0
    per_core_utilization: list[CoreUtilization] = msgspec.field(default_factory=list)
    per_socket_info: list[CpuSocketInfo] = msgspec.field(default_factory=list)
    platform_type: PlatformType
    power_consumption: float | None = None
    socket_count: int
    temperature: int | None = None
    time: str
    total_cores: int
    total_threads: int
    utilization: float | None = 0.0


class MemoryInfo(_Record, kw_only=True, frozen=True, gc=False):
    available_bytes: int
    buffers_bytes: int = 0
    cached_bytes: int = 0
    free_bytes: int
    host_id: str
    hostname: str
    index: int = 0
    instance: str
    swap_free_bytes: int = 0
    swap_total_bytes: int = 0
    swap_used_bytes: int = 0
    time: str
    total_bytes: int
    used_bytes: int
    utilization: float | None = 0.0


class FanInfo(_Record, kw_only=True, frozen=True, gc=False):
    id: int
    max_rpm: int = 0
    name: str
    speed_rpm: int


PsuStatus = Literal["Unknown", "Ok", "Degraded", "Failed", "NotPresent"]


class PsuInfo(_Record, kw_only=True, frozen=True, gc=False):
    id: int
    name: str
    power_watts: float | None = None
    status: PsuStatus = "Unknown"


class ChassisInfo(_Record, kw_only=True, frozen=True, gc=False):
    detail: dict[str, str] = msgspec.field(default_factory=dict)
    fan_speeds: list[FanInfo] = msgspec.field(default_factory=list)
    host_id: str
    hostname: str
    inlet_temperature: float | None = None
    instance: str
    outlet_temperature: float | None = None
    psu_status: list[PsuInfo] = msgspec.field(default_factory=list)
    thermal_pressure: str | None = None
    time: str
    total_power_watts: float | None = None


class ProcessInfo(_Record, kw_only=True, frozen=True, gc=False):
    command: str
    cpu_percent: float | None
    cpu_time: int
    device_id: int
    device_uuid: str
    gpu_utilization: float | None
    memory_percent: float | None
    memory_rss: int
    memory_vms: int
    nice_value: int
    pid: int
    ppid: int
    priority: int
    process_name: str
    start_time: str
    state: str
    threads: int
    used_memory: int
    user: str
    uses_gpu: bool


class StorageInfo(_Record, kw_only=True, frozen=True, gc=False):
    available_bytes: int
    host_id: str
    hostname: str
    index: int
    mount_point: str
    total_bytes: int


class ReaderError(_Record, kw_only=True, frozen=True, gc=False):
    kind: ErrorKind
    message: str
    section: str


class Snapshot(_Record, kw_only=True, frozen=True, gc=False):
    chassis: list[ChassisInfo] | UnsetType = UNSET
    cpus: list[CpuInfo] | UnsetType = UNSET
    errors: list[ReaderError] | UnsetType = UNSET  # omitted when empty, as all-smi does
    gpus: list[GpuInfo] | UnsetType = UNSET
    hostname: str
    memory: list[MemoryInfo] | UnsetType = UNSET
    processes: list[ProcessInfo] | UnsetType = UNSET
    schema: int = SCHEMA_VERSION
    storage: list[StorageInfo] | UnsetType = UNSET
    timestamp: str

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
