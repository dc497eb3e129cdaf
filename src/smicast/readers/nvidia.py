"""NVIDIA GPUs through NVML (the `pynvml` module of nvidia-ml-py).

Static facts are read once per device (`nvidia_static.read_static`); each read
asks only for what moves. A field NVML cannot answer is written as all-smi
writes "unavailable" (-1.0 for utilization and power, 0 for temperature and
frequency, null otherwise); only failing to list the devices is a `ReadError`.

GPM metrics (SM occupancy, memory bandwidth) stay null: they need two samples
some time apart, which a single synchronous read cannot take without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from msgspec import UNSET

from smicast.include import Section
from smicast.readers import (
    WALL_CLOCK,
    Clock,
    GpuProcess,
    PartialReadError,
    ReadError,
    default_hostname,
)
from smicast.readers.nvidia_static import (
    CLOCK_GRAPHICS,
    GPU_IS_LOST_TEXT,
    NVLINK_REMOTE_TYPES,
    NVML_ERROR_FUNCTION_NOT_FOUND,
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_INVALID_ARGUMENT,
    PERMANENT_ERRORS,
    TEMPERATURE_GPU,
    DeviceCalls,
    DeviceStatic,
    NvmlLike,
    nvml_attempt,
    read_static,
    read_system_detail,
    system_memory,
)
from smicast.schema import (
    GPU_METRIC_UNAVAILABLE,
    MAX_GPU_FAN_RPM,
    GpuInfo,
    NvLinkRemoteDevice,
    local_time_text,
)

__all__ = ["NvidiaReader", "NvmlLike"]

MAX_DEVICES: Final = 256
# Older nvidia-ml-py releases lack the constant; 18 is the count those drivers knew.
_DEFAULT_MAX_LINKS: Final = 18
# The link index is past the device's links, or the device has no NvLink at all.
_NO_MORE_LINKS: Final = frozenset({NVML_ERROR_INVALID_ARGUMENT, *PERMANENT_ERRORS})

# The unversioned names raise NVMLLibraryMismatchError (not an NVMLError) when the
# driver predates the _v3 entry point; they are asked last, for old nvidia-ml-py only.
_PROCESS_LISTS: Final = tuple(
    tuple(f"nvmlDeviceGet{kind}RunningProcesses{suffix}" for suffix in ("_v3", "_v2", ""))
    for kind in ("Compute", "Graphics")
)

# nvmlInit once per process and NVML module, whatever the number of readers:
# the library keeps a reference count, and the agent never shuts it down.
_INIT_LOCK = threading.Lock()
_INITIALIZED: dict[int, object] = {}  # holds the module, so its id cannot be reused


def ensure_nvml_init(nvml: NvmlLike) -> None:
    """Raises `nvml.NVMLError` when the library or the driver is missing."""
    with _INIT_LOCK:
        if id(nvml) in _INITIALIZED:
            return
        nvml.nvmlInit()
        _INITIALIZED[id(nvml)] = nvml


def _load_pynvml() -> NvmlLike:
    import pynvml  # from nvidia-ml-py

    module: NvmlLike = pynvml
    return module


class NvidiaReader:
    name = "nvidia"
    section = Section.GPU

    def __init__(
        self,
        nvml: NvmlLike | None = None,
        *,
        hostname: str | None = None,
        clock: Clock = WALL_CLOCK,
        procfs: Path = Path("/proc"),
    ) -> None:
        self._nvml = nvml if nvml is not None else _load_pynvml()
        self._hostname = hostname or default_hostname()
        self._clock = clock
        self._meminfo = procfs / "meminfo"
        self._memory_v2: int | None = getattr(self._nvml, "nvmlMemory_v2", None)
        self._max_links = int(getattr(self._nvml, "NVML_NVLINK_MAX_LINKS", _DEFAULT_MAX_LINKS))
        # Reads may overlap (a timed-out read is not cancelled); caches change under this lock.
        self._lock = threading.Lock()
        self._system_detail: dict[str, str] | None = None
        self._devices: dict[int, DeviceStatic] = {}
        self._unopened: set[int] = set()  # indices whose handle answered GPU_IS_LOST
        self._remote_types: dict[tuple[int, int], str] = {}
        self._samples_since_us: dict[int, int] = {}
        self._no_process_utilization: set[int] = set()
        self._energy_mj: Mapping[str, int] = {}

    @classmethod
    def probe(
        cls,
        *,
        hostname: str,
        clock: Clock,
        nvml: NvmlLike | None = None,
        procfs: Path = Path("/proc"),
    ) -> NvidiaReader | None:
        """A reader when NVML loads and sees at least one device, else None; never raises."""
        try:
            lib = nvml if nvml is not None else _load_pynvml()
            ensure_nvml_init(lib)
            count = lib.nvmlDeviceGetCount()
        # Detection: a missing library, a broken driver install or a version
        # mismatch all mean "no NVIDIA reader here", not a crash of the agent.
        except Exception:
            return None
        if count <= 0:
            return None
        return cls(lib, hostname=hostname, clock=clock, procfs=procfs)

    def read(self) -> list[GpuInfo]:
        devices = self._enumerate()
        stamp = local_time_text(self._clock())
        gpus: list[GpuInfo] = []
        answered: list[DeviceStatic] = []
        lost: list[str] = []
        for device in devices:
            device.calls.lost = False
            gpu = self._read_device(device, stamp)
            if device.calls.lost:  # fell off the bus: no reading of it is true
                lost.append(f"GPU {device.index} ({device.uuid})")
            else:
                gpus.append(gpu)
                answered.append(device)
        self._energy_mj = _energy_counters(answered)
        with self._lock:
            for device in devices:
                if device.calls.lost:  # open it again next time: a reset GPU has a new handle
                    self._devices.pop(device.index, None)
            lost += [f"GPU {index} (cannot be opened)" for index in sorted(self._unopened)]
        if lost:
            # The others keep reporting; the collector adds an `errors` entry naming these.
            raise PartialReadError(f"{self.name}: {', '.join(lost)}: {GPU_IS_LOST_TEXT}", gpus)
        return gpus

    def energy_counters_mj(self) -> Mapping[str, int]:
        """NVML's total-energy counters (millijoules by UUID) as of the last read.

        Not part of the Snapshot (all-smi's schema has no such field); the energy
        account takes them from here with each frame.
        """
        return self._energy_mj

    def read_processes(self) -> list[GpuProcess]:
        found: list[GpuProcess] = []
        for device in self._enumerate():
            memory_by_pid: dict[int, int] = {}
            for names in _PROCESS_LISTS:
                for proc in _first_answer(device.calls, names) or ():
                    pid = int(proc.pid)
                    if pid <= 0:
                        continue
                    # None without permission or under WDDM; a process listed in both
                    # lists shares one allocation, so take the larger, not the sum.
                    used = int(proc.usedGpuMemory or 0)
                    memory_by_pid[pid] = max(memory_by_pid.get(pid, 0), used)
            if not memory_by_pid:
                continue
            utilization = self._process_utilization(device)
            found.extend(
                GpuProcess(
                    device_id=device.index,
                    device_uuid=device.uuid,
                    pid=pid,
                    used_memory=used,
                    gpu_utilization=utilization.get(pid, 0.0),
                )
                for pid, used in sorted(memory_by_pid.items())
            )
        return found

    def _enumerate(self) -> list[DeviceStatic]:
        try:
            ensure_nvml_init(self._nvml)
            count = min(int(self._nvml.nvmlDeviceGetCount()), MAX_DEVICES)
        except self._nvml.NVMLError as exc:
            raise ReadError(f"NVML could not list the GPUs: {exc}") from exc
        with self._lock:
            if self._system_detail is None:
                self._system_detail = read_system_detail(self._nvml)
            for index in range(count):
                if index in self._devices:
                    continue
                handle, error = nvml_attempt(self._nvml, "nvmlDeviceGetHandleByIndex", index)
                # A device NVML cannot open (lost, being reset) is left out so the
                # others still report; it is tried again on the next read.
                if handle is None:
                    if error == NVML_ERROR_GPU_IS_LOST:
                        self._unopened.add(index)
                    continue
                self._unopened.discard(index)
                calls = DeviceCalls(self._nvml, handle)
                self._devices[index] = read_static(calls, index, self._system_detail)
            return [self._devices[i] for i in range(count) if i in self._devices]

    def _read_device(self, device: DeviceStatic, stamp: str) -> GpuInfo:
        calls = device.calls
        rates = calls.get("nvmlDeviceGetUtilizationRates")
        temperature = calls.get("nvmlDeviceGetTemperature", TEMPERATURE_GPU)
        power_mw = calls.get("nvmlDeviceGetPowerUsage")
        frequency = calls.get("nvmlDeviceGetClockInfo", CLOCK_GRAPHICS)
        used_memory, total_memory = self._memory(device)
        pstate = calls.get("nvmlDeviceGetPerformanceState")
        performance_state = int(pstate) if pstate is not None and 0 <= pstate <= 15 else None
        # The link trains down at idle: asked on every read, kept out of `detail`.
        link_generation = link_width = None
        if not device.uma:
            link_generation = calls.get("nvmlDeviceGetCurrPcieLinkGeneration")
            link_width = calls.get("nvmlDeviceGetCurrPcieLinkWidth")
        return GpuInfo(
            uuid=device.uuid,
            time=stamp,
            name=device.name,
            device_type="GPU",
            host_id=self._hostname,
            hostname=self._hostname,
            instance=self._hostname,
            utilization=float(rates.gpu) if rates is not None else GPU_METRIC_UNAVAILABLE,
            ane_utilization=0.0,
            temperature=int(temperature or 0),
            used_memory=used_memory,
            total_memory=total_memory,
            frequency=int(frequency or 0),
            power_consumption=(
                power_mw / 1000.0 if power_mw is not None else GPU_METRIC_UNAVAILABLE
            ),
            temperature_threshold_slowdown=device.temperature_threshold_slowdown,
            temperature_threshold_shutdown=device.temperature_threshold_shutdown,
            temperature_threshold_max_operating=device.temperature_threshold_max_operating,
            temperature_threshold_acoustic=device.temperature_threshold_acoustic,
            performance_state=performance_state,
            fan_speed_rpm=_fan_speed(calls),
            pcie_link_generation=UNSET if link_generation is None else int(link_generation),
            pcie_link_width=UNSET if link_width is None else int(link_width),
            numa_node_id=device.numa_node_id,
            gsp_firmware_mode=device.gsp_firmware_mode,
            gsp_firmware_version=device.gsp_firmware_version,
            nvlink_remote_devices=self._nvlinks(device),
            gpm_metrics=None,
            detail=dict(device.detail),
        )

    def _memory(self, device: DeviceStatic) -> tuple[int, int]:
        """(used, total) bytes; a unified-memory GPU allocates from host memory."""
        if device.uma:
            total, used = system_memory(self._meminfo)
            return used, total
        # v2 leaves the driver's reservation out of `used`, as nvidia-smi and all-smi count it.
        info = None
        if self._memory_v2 is not None:
            info = device.calls.get("nvmlDeviceGetMemoryInfo", self._memory_v2)
        if info is None:
            info = device.calls.get("nvmlDeviceGetMemoryInfo")
        if info is None:
            return 0, device.total_memory
        return int(info.used), int(info.total)

    def _nvlinks(self, device: DeviceStatic) -> list[NvLinkRemoteDevice]:
        # Link state is asked on every read (a cable can drop); the far end of a
        # link is wiring, so its type is asked once per link.
        links: list[NvLinkRemoteDevice] = []
        for link in range(self._max_links):
            active, error = device.calls.attempt("nvmlDeviceGetNvLinkState", link)
            if error in _NO_MORE_LINKS:
                break
            if not active:
                continue
            key = (device.index, link)
            remote = self._remote_types.get(key)
            if remote is None:
                raw = device.calls.get("nvmlDeviceGetNvLinkRemoteDeviceType", link)
                remote = NVLINK_REMOTE_TYPES.get(raw, "unknown")
                if raw is not None:
                    self._remote_types[key] = remote
            links.append(NvLinkRemoteDevice(link_index=link, remote_type=remote))
        return links

    def _process_utilization(self, device: DeviceStatic) -> dict[int, float]:
        """SM utilization per pid from the samples NVML buffered since the last call."""
        if device.index in self._no_process_utilization:
            return {}
        with self._lock:
            since_us = self._samples_since_us.get(device.index, 0)
        samples, error = device.calls.attempt("nvmlDeviceGetProcessUtilization", since_us)
        if error in PERMANENT_ERRORS:
            self._no_process_utilization.add(device.index)
        if not samples:  # NVML says NotFound when nothing ran since `since_us`
            return {}
        latest: dict[int, tuple[int, float]] = {}
        for sample in samples:
            stamp_us, pid = int(sample.timeStamp), int(sample.pid)
            if pid not in latest or stamp_us >= latest[pid][0]:
                latest[pid] = (stamp_us, min(max(float(sample.smUtil), 0.0), 100.0))
        with self._lock:
            self._samples_since_us[device.index] = max(s for s, _ in latest.values())
        return {pid: util for pid, (_, util) in latest.items()}


def _energy_counters(devices: list[DeviceStatic]) -> dict[str, int]:
    # Millijoules since the driver loaded, Volta and later; NotSupported is remembered.
    found: dict[str, int] = {}
    for device in devices:
        millijoules = device.calls.get("nvmlDeviceGetTotalEnergyConsumption")
        if millijoules is not None and millijoules >= 0:
            found[device.uuid] = int(millijoules)
    return found


def _first_answer(calls: DeviceCalls, names: tuple[str, ...]) -> Any:
    """The answer of the first of `names` this nvidia-ml-py and driver both have."""
    for name in names:
        value, error = calls.attempt(name)
        if error != NVML_ERROR_FUNCTION_NOT_FOUND:
            return value
    return None


def _fan_speed(calls: DeviceCalls) -> int | None:
    """Tachometer RPM when the board has one (NVML 12.x); a duty-cycle percent is no RPM."""
    rpm = calls.get("nvmlDeviceGetFanSpeedRPM")
    return None if rpm is None else min(int(rpm), MAX_GPU_FAN_RPM)
