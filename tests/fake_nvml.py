"""`FakeNvml`: the surface of the `pynvml` module the NVIDIA reader calls, over fake devices.

Same function names and arguments as nvidia-ml-py, the same error hierarchy
(`NVMLError` and `NVMLError_NotSupported`... whose `value` is the NVML code),
plus what tests need: per-call counters, calls made to fail, a failing nvmlInit,
and old-release behaviour (strings as bytes, functions missing).
test_fake_nvml_conformance.py holds all of this to the installed nvidia-ml-py.
"""

from __future__ import annotations

from collections import Counter
from ctypes import c_uint
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

# pynvml's texts for these codes; any other code reads "NVML Error with code N" without a driver.
_ERROR_TEXT = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """As in pynvml: `NVMLError(code)` builds the subclass for that code."""

    _by_code: dict[int, type[NVMLError]] = {}  # noqa: RUF012
    code = NVML_ERROR_UNKNOWN

    def __new__(cls, value: int | None = None) -> NVMLError:
        if cls is NVMLError and value in NVMLError._by_code:
            cls = NVMLError._by_code[value]
        return Exception.__new__(cls)

    def __init__(self, value: int | None = None) -> None:
        self.value = self.code if value is None else value
        super().__init__(self.value)

    def __str__(self) -> str:
        return _ERROR_TEXT.get(self.value, f"NVML Error with code {self.value}")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        NVMLError._by_code[cls.code] = cls


class NVMLError_Uninitialized(NVMLError):
    code = NVML_ERROR_UNINITIALIZED


class NVMLError_InvalidArgument(NVMLError):
    code = NVML_ERROR_INVALID_ARGUMENT


class NVMLError_NotSupported(NVMLError):
    code = NVML_ERROR_NOT_SUPPORTED


class NVMLError_NoPermission(NVMLError):
    code = NVML_ERROR_NO_PERMISSION


class NVMLError_NotFound(NVMLError):
    code = NVML_ERROR_NOT_FOUND


class NVMLError_DriverNotLoaded(NVMLError):
    code = NVML_ERROR_DRIVER_NOT_LOADED


class NVMLError_LibraryNotFound(NVMLError):
    code = NVML_ERROR_LIBRARY_NOT_FOUND


class NVMLError_FunctionNotFound(NVMLError):
    code = NVML_ERROR_FUNCTION_NOT_FOUND


class NVMLError_GpuIsLost(NVMLError):
    code = NVML_ERROR_GPU_IS_LOST


@dataclass
class FakeProcess:
    pid: int
    used_gpu_memory: int | None


@dataclass
class FakeSample:
    pid: int
    time_stamp_us: int
    sm_util: int


@dataclass
class FakeDevice:
    """Values a device reports; None means the device says NotSupported for that call."""

    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str = "GPU-a100"
    brand: int | None = 2  # Tesla
    architecture: int | None = 7  # Ampere
    vbios: str | None = "92.00.45.00.03"
    memory_total: int | None = 80 * 1024**3
    memory_used: int = 10 * 1024**3
    memory_reserved: int = 512 * 1024**2
    utilization_gpu: int | None = 42
    temperature: int | None = 55
    thresholds: dict[int, int] = field(default_factory=lambda: {0: 92, 1: 89, 3: 87})
    power_mw: int | None = 251_500
    graphics_clock_mhz: int | None = 1410
    max_boost_clocks: dict[int, int] = field(default_factory=lambda: {0: 1410, 2: 1593})
    power_limit_mw: int | None = 400_000
    power_limit_default_mw: int | None = 400_000
    power_limit_constraints_mw: tuple[int, int] | None = (100_000, 400_000)
    pstate: int | None = 0
    fan_rpm: int | None = None
    fan_percent: int | None = None
    pcie_gen: int | None = 4
    pcie_width: int | None = 16
    pcie_gen_max: int | None = 4
    pcie_width_max: int | None = 16
    numa_node: int | None = 0
    gsp_mode: tuple[int, int] | None = (1, 0)
    gsp_version: str | None = "550.54.15"
    compute_mode: int | None = 0
    ecc: tuple[int, int] | None = (1, 1)
    mig: tuple[int, int] | None = (0, 0)
    # link index -> (active, remote device type); None: no NvLink hardware at all
    nvlinks: dict[int, tuple[int, int]] | None = None
    compute_processes: list[FakeProcess] = field(default_factory=list)
    graphics_processes: list[FakeProcess] = field(default_factory=list)
    process_samples: list[FakeSample] | None = field(default_factory=list)
    energy_mj: int | None = None  # total energy since the driver loaded (Volta and later)


@dataclass(frozen=True)
class FakeHandle:
    index: int


class FakeNvml:
    """Counts every call in `calls`; `fail(name, error)` makes a call raise."""

    NVMLError = NVMLError
    NVMLError_Uninitialized = NVMLError_Uninitialized
    NVMLError_InvalidArgument = NVMLError_InvalidArgument
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NoPermission = NVMLError_NoPermission
    NVMLError_NotFound = NVMLError_NotFound
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_FunctionNotFound = NVMLError_FunctionNotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost

    NVML_NVLINK_MAX_LINKS = 36  # nvidia-ml-py 13; 12.x releases said 18
    nvmlMemory_v2 = 0x02000028
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_GRAPHICS = 0
    NVML_CLOCK_MEM = 2

    def __init__(
        self,
        devices: list[FakeDevice],
        *,
        driver_version: str = "550.54.15",
        cuda_version: int | None = 12040,
        init_error: type[NVMLError] | None = None,
        strings_as_bytes: bool = False,
    ) -> None:
        self.devices = devices
        self.driver_version = driver_version
        self.cuda_version = cuda_version
        self.init_error = init_error
        self.strings_as_bytes = strings_as_bytes
        self.calls: Counter[str] = Counter()
        self._failures: dict[tuple[str, int | None], type[NVMLError]] = {}
        self.last_process_utilization_since: int | None = None

    def fail(self, name: str, error: type[NVMLError], *, device: int | None = None) -> None:
        """Make `name` raise `error`, on one device or (device=None) on all of them."""
        self._failures[(name, device)] = error

    def heal(self, name: str, *, device: int | None = None) -> None:
        self._failures.pop((name, device), None)

    def _check(self, name: str, index: int | None = None) -> None:
        self.calls[name] += 1
        error = self._failures.get((name, index)) or self._failures.get((name, None))
        if error is not None:
            raise error()

    def _enter(self, name: str, handle: FakeHandle) -> FakeDevice:
        self._check(name, handle.index)
        return self.devices[handle.index]

    def _str(self, value: str) -> str | bytes:
        return value.encode() if self.strings_as_bytes else value

    @staticmethod
    def _known(value: Any) -> Any:
        if value is None:
            raise NVMLError_NotSupported()
        return value

    # -- library -------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self._check("nvmlInit")
        if self.init_error is not None:
            raise self.init_error()

    def nvmlShutdown(self) -> None:
        self._check("nvmlShutdown")

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._check("nvmlDeviceGetHandleByIndex", index)
        if not 0 <= index < len(self.devices):
            raise NVMLError_InvalidArgument()
        return FakeHandle(index)

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._check("nvmlSystemGetDriverVersion")
        return self._str(self.driver_version)

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._check("nvmlSystemGetCudaDriverVersion_v2")
        return int(self._known(self.cuda_version))

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check("nvmlSystemGetCudaDriverVersion")
        return int(self._known(self.cuda_version))

    # -- static facts --------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str | bytes:
        return self._str(self._enter("nvmlDeviceGetName", handle).name)

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str | bytes:
        return self._str(self._enter("nvmlDeviceGetUUID", handle).uuid)

    def nvmlDeviceGetBrand(self, handle: FakeHandle) -> int:
        return int(self._known(self._enter("nvmlDeviceGetBrand", handle).brand))

    def nvmlDeviceGetArchitecture(self, device: FakeHandle) -> int:
        return int(self._known(self._enter("nvmlDeviceGetArchitecture", device).architecture))

    def nvmlDeviceGetVbiosVersion(self, handle: FakeHandle) -> str | bytes:
        return self._str(self._known(self._enter("nvmlDeviceGetVbiosVersion", handle).vbios))

    def nvmlDeviceGetTemperatureThreshold(self, handle: FakeHandle, threshold: int) -> int:
        device = self._enter("nvmlDeviceGetTemperatureThreshold", handle)
        return self._known(device.thresholds.get(threshold))

    def nvmlDeviceGetMaxCustomerBoostClock(self, handle: FakeHandle, type: int) -> int:
        device = self._enter("nvmlDeviceGetMaxCustomerBoostClock", handle)
        return self._known(device.max_boost_clocks.get(type))

    def nvmlDeviceGetMaxClockInfo(self, handle: FakeHandle, type: int) -> int:
        device = self._enter("nvmlDeviceGetMaxClockInfo", handle)
        return self._known(device.max_boost_clocks.get(type))

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: FakeHandle) -> int:
        device = self._enter("nvmlDeviceGetPowerManagementDefaultLimit", handle)
        return self._known(device.power_limit_default_mw)

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: FakeHandle) -> list[int]:
        device = self._enter("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        return list(self._known(device.power_limit_constraints_mw))

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetMaxPcieLinkGeneration", handle).pcie_gen_max)

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: FakeHandle) -> int:
        device = self._enter("nvmlDeviceGetMaxPcieLinkWidth", handle)
        return self._known(device.pcie_width_max)

    def nvmlDeviceGetNumaNodeId(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetNumaNodeId", handle).numa_node)

    def nvmlDeviceGetGspFirmwareMode(
        self,
        handle: FakeHandle,
        isEnabled: Any = c_uint(),  # noqa: B008 -- pynvml's out-parameter defaults
        defaultMode: Any = c_uint(),  # noqa: B008
    ) -> list[int]:
        # The out-parameters are there for pynvml's signature only; the answer is the list
        # pynvml returns when they are left out (filling the shared defaults would race).
        return list(self._known(self._enter("nvmlDeviceGetGspFirmwareMode", handle).gsp_mode))

    def nvmlDeviceGetGspFirmwareVersion(self, handle: FakeHandle, version: Any = None) -> Any:
        # pynvml returns the raw char buffer here, bytes even in current releases;
        # a buffer passed as `version` is filled instead, and the answer is NVML_SUCCESS.
        device = self._enter("nvmlDeviceGetGspFirmwareVersion", handle)
        text = self._known(device.gsp_version).encode()
        if version is None:
            return text
        version.value = text
        return NVML_SUCCESS

    def nvmlDeviceGetComputeMode(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetComputeMode", handle).compute_mode)

    def nvmlDeviceGetEccMode(self, handle: FakeHandle) -> list[int]:
        return list(self._known(self._enter("nvmlDeviceGetEccMode", handle).ecc))

    def nvmlDeviceGetMigMode(self, device: FakeHandle) -> list[int]:
        return list(self._known(self._enter("nvmlDeviceGetMigMode", device).mig))

    # -- per read ------------------------------------------------------------------------

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> SimpleNamespace:
        device = self._enter("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=self._known(device.utilization_gpu), memory=0)

    def nvmlDeviceGetMemoryInfo(
        self, handle: FakeHandle, version: int | None = None
    ) -> SimpleNamespace:
        device = self._enter("nvmlDeviceGetMemoryInfo", handle)
        total = self._known(device.memory_total)
        if version is None:  # v1 counts the driver's reservation as used
            used = device.memory_used + device.memory_reserved
            return SimpleNamespace(total=total, used=used, free=total - used)
        if version != self.nvmlMemory_v2:
            raise NVMLError_InvalidArgument()
        free = total - device.memory_used - device.memory_reserved
        return SimpleNamespace(
            version=version,
            total=total,
            reserved=device.memory_reserved,
            used=device.memory_used,
            free=free,
        )

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        device = self._enter("nvmlDeviceGetTemperature", handle)
        if sensor != self.NVML_TEMPERATURE_GPU:
            raise NVMLError_InvalidArgument()
        return self._known(device.temperature)

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetPowerUsage", handle).power_mw)

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, type: int) -> int:
        device = self._enter("nvmlDeviceGetClockInfo", handle)
        if type != self.NVML_CLOCK_GRAPHICS:
            raise NVMLError_NotSupported()
        return self._known(device.graphics_clock_mhz)

    def nvmlDeviceGetPerformanceState(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetPerformanceState", handle).pstate)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetTotalEnergyConsumption", handle).energy_mj)

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetPowerManagementLimit", handle).power_limit_mw)

    def nvmlDeviceGetFanSpeedRPM(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetFanSpeedRPM", handle).fan_rpm)

    def nvmlDeviceGetFanSpeed_v2(self, handle: FakeHandle, fan: int) -> int:
        device = self._enter("nvmlDeviceGetFanSpeed_v2", handle)
        if fan != 0:
            raise NVMLError_InvalidArgument()
        return self._known(device.fan_percent)

    def nvmlDeviceGetFanSpeed(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetFanSpeed", handle).fan_percent)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetCurrPcieLinkGeneration", handle).pcie_gen)

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: FakeHandle) -> int:
        return self._known(self._enter("nvmlDeviceGetCurrPcieLinkWidth", handle).pcie_width)

    def nvmlDeviceGetNvLinkState(self, device: FakeHandle, link: int) -> int:
        links = self._known(self._enter("nvmlDeviceGetNvLinkState", device).nvlinks)
        if link not in links:
            raise NVMLError_InvalidArgument()
        return links[link][0]

    def nvmlDeviceGetNvLinkRemoteDeviceType(self, handle: FakeHandle, link: int) -> int:
        device = self._enter("nvmlDeviceGetNvLinkRemoteDeviceType", handle)
        links = self._known(device.nvlinks)
        if link not in links:
            raise NVMLError_InvalidArgument()
        return links[link][1]

    def running_processes(self, name: str, handle: FakeHandle) -> list[SimpleNamespace]:
        """Any of the Compute/Graphics RunningProcesses variants, counted under `name`."""
        device = self._enter(name, handle)
        listed = device.graphics_processes if "Graphics" in name else device.compute_processes
        return [_process(p) for p in listed]

    # Current nvidia-ml-py has the _v3 entry points; the unversioned names wrap them.
    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: FakeHandle) -> list[SimpleNamespace]:
        return self.running_processes("nvmlDeviceGetComputeRunningProcesses_v3", handle)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: FakeHandle) -> list[SimpleNamespace]:
        return self.running_processes("nvmlDeviceGetComputeRunningProcesses_v2", handle)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[SimpleNamespace]:
        return self.running_processes("nvmlDeviceGetComputeRunningProcesses", handle)

    def nvmlDeviceGetGraphicsRunningProcesses_v3(self, handle: FakeHandle) -> list[SimpleNamespace]:
        return self.running_processes("nvmlDeviceGetGraphicsRunningProcesses_v3", handle)

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, handle: FakeHandle) -> list[SimpleNamespace]:
        return self.running_processes("nvmlDeviceGetGraphicsRunningProcesses_v2", handle)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeHandle) -> list[SimpleNamespace]:
        return self.running_processes("nvmlDeviceGetGraphicsRunningProcesses", handle)

    def nvmlDeviceGetProcessUtilization(
        self, handle: FakeHandle, timeStamp: int
    ) -> list[SimpleNamespace]:
        self.last_process_utilization_since = timeStamp
        device = self._enter("nvmlDeviceGetProcessUtilization", handle)
        samples = [s for s in self._known(device.process_samples) if s.time_stamp_us > timeStamp]
        if not samples:
            raise NVMLError_NotFound()
        return [
            SimpleNamespace(
                pid=s.pid,
                timeStamp=s.time_stamp_us,
                smUtil=s.sm_util,
                memUtil=0,
                encUtil=0,
                decUtil=0,
            )
            for s in samples
        ]


def _process(proc: FakeProcess) -> SimpleNamespace:
    return SimpleNamespace(
        pid=proc.pid,
        usedGpuMemory=proc.used_gpu_memory,
        gpuInstanceId=0xFFFFFFFF,
        computeInstanceId=0xFFFFFFFF,
    )


def a100(**overrides: Any) -> FakeDevice:
    return FakeDevice(**overrides)


def h100(**overrides: Any) -> FakeDevice:
    """An SXM H100: fan-less, four NvLinks to NvSwitches active, one down."""
    fields: dict[str, Any] = dict(
        name="NVIDIA H100 80GB HBM3",
        uuid="GPU-h100",
        brand=14,  # Nvidia
        architecture=9,  # Hopper
        vbios="96.00.99.00.01",
        memory_total=80 * 1024**3,
        memory_used=60 * 1024**3,
        utilization_gpu=97,
        temperature=71,
        thresholds={0: 95, 1: 92, 3: 90, 5: 83},
        power_mw=612_345,
        graphics_clock_mhz=1980,
        max_boost_clocks={0: 1980, 2: 2619},
        power_limit_mw=700_000,
        power_limit_default_mw=700_000,
        power_limit_constraints_mw=(200_000, 700_000),
        pstate=2,
        pcie_gen=5,
        pcie_width=16,
        pcie_gen_max=5,
        pcie_width_max=16,
        numa_node=1,
        gsp_mode=(1, 1),
        gsp_version="550.54.15",
        compute_mode=3,
        ecc=(1, 0),
        mig=(0, 1),
        nvlinks={0: (1, 2), 1: (1, 2), 2: (0, 2), 3: (1, 2), 4: (1, 0)},
    )
    fields.update(overrides)
    return FakeDevice(**fields)
