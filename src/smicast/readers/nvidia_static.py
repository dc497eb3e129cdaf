"""NVML plumbing for the NVIDIA reader: the guarded call and the facts read once per device.

Every NVML call goes through `nvml_attempt`: an NVML error (not supported, no
permission, GPU lost, function missing from an older driver) makes that one
answer unknown, never the whole reader fail. Functions absent from an older
nvidia-ml-py module count as missing from the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

# Values from nvml.h. They are ABI, so hard-coding them keeps older
# nvidia-ml-py modules (which lack newer constants) working.
NVML_ERROR_INVALID_ARGUMENT: Final = 2
NVML_ERROR_NOT_SUPPORTED: Final = 3
NVML_ERROR_FUNCTION_NOT_FOUND: Final = 13
NVML_ERROR_GPU_IS_LOST: Final = 15
GPU_IS_LOST_TEXT: Final = "GPU is lost"  # NVML's (and all-smi's) text for that code
NVML_ERROR_UNKNOWN: Final = 999
# Answers that will not change while the driver stays loaded: asking again is wasted time.
PERMANENT_ERRORS: Final = frozenset({NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND})

TEMPERATURE_GPU: Final = 0
THRESHOLD_SHUTDOWN: Final = 0
THRESHOLD_SLOWDOWN: Final = 1
THRESHOLD_GPU_MAX: Final = 3
THRESHOLD_ACOUSTIC_CURR: Final = 5
CLOCK_GRAPHICS: Final = 0
CLOCK_MEM: Final = 2
ARCH_BLACKWELL: Final = 10

# Spellings all-smi writes (the Debug names of nvml-wrapper's enums).
BRAND_NAMES: Final = {
    0: "Unknown",
    1: "Quadro",
    2: "Tesla",
    3: "NVS",
    4: "GRID",
    5: "GeForce",
    6: "Titan",
    7: "VApps",
    8: "VPC",
    9: "VCS",
    10: "VWS",
    11: "CloudGaming",
    12: "QuadroRTX",
    13: "RTX",
    14: "Nvidia",
    15: "GeForceRTX",
    16: "TitanRTX",
}
ARCHITECTURE_NAMES: Final = {
    2: "Kepler",
    3: "Maxwell",
    4: "Pascal",
    5: "Volta",
    6: "Turing",
    7: "Ampere",
    8: "Ada",
    9: "Hopper",
    10: "Blackwell",
}
COMPUTE_MODE_NAMES: Final = {
    0: "Default",
    1: "ExclusiveThread",
    2: "Prohibited",
    3: "ExclusiveProcess",
}
NVLINK_REMOTE_TYPES: Final = {0: "gpu", 1: "ibmnpu", 2: "switch"}
# nvml-wrapper's PerformanceState variants, whose Debug names all-smi writes in `detail`.
PSTATE_NAMES: Final = (
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
)


class NvmlLike(Protocol):
    """The part of the `pynvml` module the reader needs by name; the rest is looked up."""

    @property
    def NVMLError(self) -> type[Exception]: ...

    def nvmlInit(self) -> None: ...

    def nvmlDeviceGetCount(self) -> int: ...


def nvml_attempt(nvml: NvmlLike, name: str, *args: Any) -> tuple[Any, int | None]:
    """Call `nvml.<name>(*args)`: (value, None) or (None, NVML error code)."""
    fn = getattr(nvml, name, None)
    if fn is None:
        return None, NVML_ERROR_FUNCTION_NOT_FOUND
    try:
        return fn(*args), None
    except nvml.NVMLError as exc:
        code = getattr(exc, "value", NVML_ERROR_UNKNOWN)
        return None, code if isinstance(code, int) else NVML_ERROR_UNKNOWN


class DeviceCalls:
    """NVML calls on one device handle; remembers which calls the device cannot answer."""

    def __init__(self, nvml: NvmlLike, handle: Any) -> None:
        self._nvml = nvml
        self.handle = handle
        self._unsupported: dict[tuple[str, tuple[Any, ...]], int] = {}
        self.lost = False  # a call answered GPU_IS_LOST since the flag was last cleared

    def attempt(self, name: str, *args: Any) -> tuple[Any, int | None]:
        key = (name, args)
        known_error = self._unsupported.get(key)
        if known_error is not None:
            return None, known_error
        value, error = nvml_attempt(self._nvml, name, self.handle, *args)
        if error == NVML_ERROR_GPU_IS_LOST:
            self.lost = True
        if error in PERMANENT_ERRORS:
            self._unsupported[key] = error
        return value, error

    def get(self, name: str, *args: Any) -> Any:
        """The answer, or None when NVML could not give one."""
        return self.attempt(name, *args)[0]


@dataclass(frozen=True, kw_only=True)
class DeviceStatic:
    """What a device says once: identity, limits and firmware do not move between reads."""

    index: int
    calls: DeviceCalls
    name: str
    uuid: str
    total_memory: int
    uma: bool
    temperature_threshold_slowdown: int | None
    temperature_threshold_shutdown: int | None
    temperature_threshold_max_operating: int | None
    temperature_threshold_acoustic: int | None
    numa_node_id: int | None
    gsp_firmware_mode: int | None
    gsp_firmware_version: str | None
    detail: dict[str, str]


def text(value: Any) -> str | None:
    """NVML strings: str in current nvidia-ml-py, bytes in old releases."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    cleaned = str(value).strip("\x00").strip()
    return cleaned or None


def watts_text(milliwatts: Any) -> str:
    return f"{int(milliwatts) / 1000.0:.2f}"


def cuda_version_text(version: int) -> str:
    """NVML encodes CUDA 12.4 as 12040."""
    return f"{version // 1000}.{version % 1000 // 10}"


def read_system_detail(nvml: NvmlLike) -> dict[str, str]:
    """Detail keys shared by every device of the host; all-smi writes all four, always."""
    driver = text(nvml_attempt(nvml, "nvmlSystemGetDriverVersion")[0])
    cuda, _ = nvml_attempt(nvml, "nvmlSystemGetCudaDriverVersion_v2")
    if cuda is None:
        cuda, _ = nvml_attempt(nvml, "nvmlSystemGetCudaDriverVersion")
    cuda_text = cuda_version_text(cuda if isinstance(cuda, int) and cuda > 0 else 0)
    return {
        "Driver Version": driver or "Unknown",
        "CUDA Version": cuda_text,
        "lib_name": "CUDA",
        "lib_version": cuda_text,
    }


def read_static(calls: DeviceCalls, index: int, system_detail: dict[str, str]) -> DeviceStatic:
    name = text(calls.get("nvmlDeviceGetName")) or "Unknown GPU"
    memory = calls.get("nvmlDeviceGetMemoryInfo")
    total_memory = int(memory.total) if memory is not None else 0
    architecture = calls.get("nvmlDeviceGetArchitecture")
    uma = _is_uma(name, architecture, total_memory)
    return DeviceStatic(
        index=index,
        calls=calls,
        name=name,
        uuid=text(calls.get("nvmlDeviceGetUUID")) or f"GPU-{index}",
        total_memory=total_memory,
        uma=uma,
        temperature_threshold_slowdown=_threshold(calls, THRESHOLD_SLOWDOWN),
        temperature_threshold_shutdown=_threshold(calls, THRESHOLD_SHUTDOWN),
        temperature_threshold_max_operating=_threshold(calls, THRESHOLD_GPU_MAX),
        temperature_threshold_acoustic=_threshold(calls, THRESHOLD_ACOUSTIC_CURR),
        numa_node_id=_numa_node(calls.get("nvmlDeviceGetNumaNodeId")),
        gsp_firmware_mode=_gsp_mode(calls.get("nvmlDeviceGetGspFirmwareMode")),
        gsp_firmware_version=text(calls.get("nvmlDeviceGetGspFirmwareVersion")),
        detail=_device_detail(calls, architecture, uma, system_detail),
    )


def _device_detail(
    calls: DeviceCalls, architecture: Any, uma: bool, system_detail: dict[str, str]
) -> dict[str, str]:
    """all-smi's NVIDIA `detail`, key for key and in its value formats, read once.

    all-smi builds this map at its first read and never again, so the readings in
    it (current PCIe link, P-state, power limit) stay as they were then: they name
    the device in `all_smi_gpu_info` and must not move. Live values go to typed
    fields (`performance_state`, `fan_speed_rpm`, `pcie_link_*`).
    """
    detail = dict(system_detail)
    _put(detail, "Brand", BRAND_NAMES.get(calls.get("nvmlDeviceGetBrand")))
    _put(detail, "architecture", ARCHITECTURE_NAMES.get(architecture))
    if uma:
        # A unified-memory part (GB10) has no PCIe link of its own to report.
        detail["Memory Type"] = "Unified"
        detail["Interconnect"] = "Integrated"
    else:
        _put(detail, "PCIe Generation", calls.get("nvmlDeviceGetCurrPcieLinkGeneration"))
        width = calls.get("nvmlDeviceGetCurrPcieLinkWidth")
        if width is not None:
            detail["PCIe Width"] = f"x{int(width)}"
        _put(detail, "pcie_gen_max", calls.get("nvmlDeviceGetMaxPcieLinkGeneration"))
        _put(detail, "pcie_width_max", calls.get("nvmlDeviceGetMaxPcieLinkWidth"))
    _put(detail, "compute_mode", COMPUTE_MODE_NAMES.get(calls.get("nvmlDeviceGetComputeMode")))
    pstate = calls.get("nvmlDeviceGetPerformanceState")
    if pstate is not None:
        detail["performance_state"] = (
            PSTATE_NAMES[pstate] if 0 <= pstate < len(PSTATE_NAMES) else "Unknown"
        )
    limit = calls.get("nvmlDeviceGetPowerManagementLimit")
    if limit is not None:
        detail["power_limit_current"] = watts_text(limit)
    default_limit = calls.get("nvmlDeviceGetPowerManagementDefaultLimit")
    if default_limit is not None:
        detail["power_limit_default"] = watts_text(default_limit)
    constraints = calls.get("nvmlDeviceGetPowerManagementLimitConstraints")
    if constraints is not None:
        detail["power_limit_min"] = watts_text(constraints[0])
        detail["power_limit_max"] = watts_text(constraints[1])
    _put_modes(detail, "ecc_mode", calls.get("nvmlDeviceGetEccMode"), ("Disabled", "Enabled"))
    for key, clock in (("clock_graphics_max", CLOCK_GRAPHICS), ("clock_memory_max", CLOCK_MEM)):
        _put(detail, key, calls.get("nvmlDeviceGetMaxCustomerBoostClock", clock))
    # all-smi writes the raw MIG mode numbers (nvml-wrapper's MigMode holds u32s).
    _put_modes(detail, "mig_mode", calls.get("nvmlDeviceGetMigMode"), ("0", "1"))
    vbios = text(calls.get("nvmlDeviceGetVbiosVersion"))
    if vbios is not None:
        # all-smi formats this String with `{:?}`: the value carries Rust's quotes.
        detail["vbios_version"] = rust_debug_str(vbios)
    return detail


def rust_debug_str(value: str) -> str:
    """Rust's `format!("{:?}", string)`: quoted, with `\\`, `\"` and control escapes."""
    out = ['"']
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char < " " or "\x7f" <= char <= "\x9f":
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def system_memory(meminfo: Path) -> tuple[int, int]:
    """(total, used) bytes of host memory: what a unified-memory GPU allocates from."""
    fields: dict[str, int] = {}
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return 0, 0
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable") and rest.split():
            fields[key] = int(rest.split()[0]) * 1024
    total = fields.get("MemTotal", 0)
    return total, max(total - fields.get("MemAvailable", total), 0)


def _is_uma(name: str, architecture: Any, total_memory: int) -> bool:
    if total_memory > 0:
        return False
    lowered = name.lower()
    return architecture == ARCH_BLACKWELL or "gb10" in lowered or "dgx spark" in lowered


def _put(detail: dict[str, str], key: str, value: Any) -> None:
    if value is not None:
        detail[key] = str(value)


def _put_modes(detail: dict[str, str], prefix: str, modes: Any, names: tuple[str, str]) -> None:
    if modes is None:
        return
    current, pending = (names[1] if mode else names[0] for mode in modes)
    detail[f"{prefix}_current"] = current
    # Pending only matters when a reboot would change the mode, as all-smi writes it.
    if pending != current:
        detail[f"{prefix}_pending"] = pending


def _threshold(calls: DeviceCalls, threshold: int) -> int | None:
    value = calls.get("nvmlDeviceGetTemperatureThreshold", threshold)
    return int(value) if value else None


def _numa_node(value: Any) -> int | None:
    # Drivers say "no NUMA" with -1 or, read as unsigned, all bits set.
    if value is None or not 0 <= int(value) < 0x7FFFFFFF:
        return None
    return int(value)


def _gsp_mode(value: Any) -> int | None:
    """0 disabled, 1 enabled, 2 default (the default flag wins, as in all-smi)."""
    if value is None:
        return None
    enabled, default = value
    return 2 if default else 1 if enabled else 0
