"""GPU families (every accelerator row) and the NVIDIA hardware-detail families.

Label set G = `gpu, instance, gpu_uuid, gpu_index`; `gpu_index` is the row's
position in the full `gpus` list. Readings a device does not have are omitted,
never written as 0 or -1 (utilization/power < 0, temperature/frequency 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from msgspec import UNSET

from smicast.prometheus.text import (
    Family,
    Samples,
    escape,
    labels,
    labels_with_detail,
    number,
    parse_f64,
)
from smicast.schema import MAX_GPU_FAN_RPM, GpuInfo

ACCELERATOR_TYPES: Final = frozenset({"GPU", "NPU", "TPU"})

GPU_FAMILIES: Final = (
    Family(
        "all_smi_gpu_utilization",
        "GPU utilization percentage (omitted when the device reports no utilization)",
    ),
    Family("all_smi_gpu_memory_used_bytes", "GPU memory used in bytes"),
    Family("all_smi_gpu_memory_total_bytes", "GPU memory total in bytes"),
    Family(
        "all_smi_gpu_temperature_celsius",
        "GPU temperature in celsius (omitted when no sensor reports one)",
    ),
    Family(
        "all_smi_gpu_power_consumption_watts",
        "GPU power consumption in watts (omitted when the device reports no power)",
    ),
    Family(
        "all_smi_gpu_frequency_mhz",
        "GPU frequency in MHz (omitted when the device exposes no clock probe)",
    ),
    Family(
        "all_smi_ane_utilization",
        "ANE utilization in mW (omitted when the native metrics source is unavailable)",
    ),
    Family("all_smi_dla_utilization", "DLA utilization percentage"),
    Family(
        "all_smi_ane_power_watts",
        "ANE power consumption in watts (omitted when the native metrics source is unavailable)",
    ),
    Family("all_smi_thermal_pressure_info", "Thermal pressure level"),
    Family("all_smi_combined_power_watts", "Combined power consumption (CPU + GPU + ANE) in watts"),
    Family("all_smi_gpu_info", "GPU/NPU device information"),
    Family("all_smi_gpu_pcie_gen_current", "Current PCIe generation"),
    Family("all_smi_gpu_pcie_width_current", "Current PCIe link width"),
    Family("all_smi_gpu_clock_graphics_max_mhz", "Maximum graphics clock in MHz"),
    Family("all_smi_gpu_clock_memory_max_mhz", "Maximum memory clock in MHz"),
    Family("all_smi_gpu_power_limit_current_watts", "Current power limit in watts"),
    Family("all_smi_gpu_power_limit_max_watts", "Maximum power limit in watts"),
    Family(
        "all_smi_gpu_performance_state",
        "GPU performance state (0=P0 fastest, 15=P15 idlest; metric is omitted when the device "
        "does not report a P-state)",
    ),
    Family(
        "all_smi_gpu_fan_speed_rpm",
        "GPU fan speed in revolutions per minute (metric is omitted when the device reports "
        "no tachometer)",
    ),
    Family(
        "all_smi_gpu_temperature_threshold_slowdown_celsius",
        "GPU slowdown temperature threshold in Celsius",
    ),
    Family(
        "all_smi_gpu_temperature_threshold_shutdown_celsius",
        "GPU shutdown temperature threshold in Celsius",
    ),
    Family(
        "all_smi_gpu_temperature_threshold_max_operating_celsius",
        "GPU maximum operating temperature threshold in Celsius",
    ),
    Family(
        "all_smi_gpu_temperature_threshold_acoustic_celsius",
        "GPU acoustic (noise) temperature threshold in Celsius",
    ),
)

# (detail key, family): numbers NVIDIA readers leave in `detail`.
_DETAIL_GAUGES: Final = (
    ("pcie_gen_current", "all_smi_gpu_pcie_gen_current"),
    ("pcie_width_current", "all_smi_gpu_pcie_width_current"),
    ("clock_graphics_max", "all_smi_gpu_clock_graphics_max_mhz"),
    ("clock_memory_max", "all_smi_gpu_clock_memory_max_mhz"),
    ("power_limit_current", "all_smi_gpu_power_limit_current_watts"),
    ("power_limit_max", "all_smi_gpu_power_limit_max_watts"),
)

HARDWARE_FAMILIES: Final = (
    Family(
        "all_smi_gpu_numa_node_id",
        "NUMA node the GPU is attached to (metric is omitted when the host has no NUMA "
        "topology or the driver does not report one)",
    ),
    Family(
        "all_smi_gpu_gsp_firmware_mode",
        "GSP firmware mode (0=disabled, 1=enabled, 2=default); omitted when the driver does "
        "not expose the GSP firmware API",
    ),
    Family(
        "all_smi_gpu_gsp_firmware_version_info",
        "GSP firmware version, encoded as a constant 1 with the version in a `version` label; "
        "omitted when unsupported",
    ),
    Family(
        "all_smi_nvlink_remote_device_type",
        "NvLink remote endpoint classification per active link. Value is always 1; "
        "classification is carried in the `remote_type` label (gpu / switch / ibmnpu / unknown). "
        "Optional `bandwidth_mb_s` label carries the per-link bandwidth hint used by the topology "
        "tab's NVn classifier (omitted when the driver does not report it).",
    ),
    Family(
        "all_smi_gpu_sm_occupancy",
        "GPM-reported SM occupancy fraction (0.0-1.0); omitted on devices that do not support "
        "GPM (pre-Hopper)",
    ),
    Family(
        "all_smi_gpu_memory_bandwidth_utilization",
        "GPM-reported memory bandwidth utilization fraction (0.0-1.0); omitted on devices that "
        "do not support GPM (pre-Hopper)",
    ),
)


# smicast's own GPU families: live values all-smi has no family for (its PCIe gauges
# read `detail`, which its NVIDIA reader freezes at start and never fills with them).
SMICAST_GPU_FAMILIES: Final = (
    Family(
        "smicast_gpu_pcie_link_generation",
        "PCIe generation the GPU link runs at now (links train down at idle; omitted when "
        "the device reports no link)",
    ),
    Family(
        "smicast_gpu_pcie_link_width",
        "PCIe lanes the GPU link runs at now (omitted when the device reports no link)",
    ),
)


def _at_least_zero(value: float | None) -> str | None:
    return number(value) if value is not None and value >= 0 else None


def _positive(value: int) -> str | None:
    return str(value) if value > 0 else None


def fan_rpm_from_detail(text: str) -> str | None:
    """`"1450 RPM"` or `"1600 RPM (40%)"`; whole, non-negative, at most MAX_GPU_FAN_RPM."""
    rpm_text, marker, _ = text.partition(" RPM")
    rpm = parse_f64(rpm_text, trim=True) if marker else None
    if rpm is None or rpm < 0 or rpm > MAX_GPU_FAN_RPM or rpm != math.floor(rpm):
        return None
    return number(rpm)


def _pstate(gpu: GpuInfo) -> str | None:
    if gpu.performance_state is not None:
        return str(gpu.performance_state)
    text = gpu.detail.get("performance_state")
    if text is None or not text.startswith("P"):
        return None
    return number(parse_f64(text[1:]))


def render_gpus(gpus: Sequence[GpuInfo], out: list[str]) -> None:
    samples = Samples()
    add = samples.add
    for index, gpu in enumerate(gpus):
        if gpu.device_type not in ACCELERATOR_TYPES:
            continue
        base = (
            ("gpu", gpu.name),
            ("instance", gpu.instance),
            ("gpu_uuid", gpu.uuid),
            ("gpu_index", str(index)),
        )
        g = labels(base)
        detail = gpu.detail
        add("all_smi_gpu_utilization", g, _at_least_zero(gpu.utilization))
        add("all_smi_gpu_memory_used_bytes", g, str(gpu.used_memory))
        add("all_smi_gpu_memory_total_bytes", g, str(gpu.total_memory))
        add("all_smi_gpu_temperature_celsius", g, _positive(gpu.temperature))
        add("all_smi_gpu_power_consumption_watts", g, _at_least_zero(gpu.power_consumption))
        add("all_smi_gpu_frequency_mhz", g, _positive(gpu.frequency))
        add("all_smi_ane_utilization", g, _at_least_zero(gpu.ane_utilization))
        add("all_smi_dla_utilization", g, number(gpu.dla_utilization))
        if "Apple" in gpu.name or "Metal" in gpu.name:
            ane = gpu.ane_utilization
            add("all_smi_ane_power_watts", g, _at_least_zero(None if ane is None else ane / 1000))
            level = detail.get("thermal_pressure")
            if level is not None:
                add("all_smi_thermal_pressure_info", labels((*base, ("level", level))), "1")
            combined = parse_f64(detail.get("combined_power_mw", ""))
            if combined is not None:
                add("all_smi_combined_power_watts", g, number(combined / 1000))
        info = labels_with_detail((*base, ("type", gpu.device_type)), detail)
        add("all_smi_gpu_info", info, "1")
        if detail:
            for key, family in _DETAIL_GAUGES:
                text = detail.get(key)
                if text is not None:
                    add(family, g, number(parse_f64(text)))
        add("all_smi_gpu_performance_state", g, _pstate(gpu))
        if gpu.fan_speed_rpm is not None:
            add("all_smi_gpu_fan_speed_rpm", g, str(gpu.fan_speed_rpm))
        elif "Fan Speed" in detail:
            add("all_smi_gpu_fan_speed_rpm", g, fan_rpm_from_detail(detail["Fan Speed"]))
        add(
            "all_smi_gpu_temperature_threshold_slowdown_celsius",
            g,
            number(gpu.temperature_threshold_slowdown),
        )
        add(
            "all_smi_gpu_temperature_threshold_shutdown_celsius",
            g,
            number(gpu.temperature_threshold_shutdown),
        )
        add(
            "all_smi_gpu_temperature_threshold_max_operating_celsius",
            g,
            number(gpu.temperature_threshold_max_operating),
        )
        add(
            "all_smi_gpu_temperature_threshold_acoustic_celsius",
            g,
            number(gpu.temperature_threshold_acoustic),
        )
    samples.write(GPU_FAMILIES, out)


def render_hardware(gpus: Sequence[GpuInfo], out: list[str]) -> None:
    """NUMA, GSP, NvLink and GPM families; written after chassis, as all-smi orders them."""
    samples = Samples()
    add = samples.add
    for index, gpu in enumerate(gpus):
        if (
            gpu.numa_node_id is None
            and gpu.gsp_firmware_mode is None
            and gpu.gsp_firmware_version is None
            and not gpu.nvlink_remote_devices
            and gpu.gpm_metrics is None
        ):
            continue
        base = (
            ("gpu", gpu.name),
            ("instance", gpu.instance),
            ("gpu_uuid", gpu.uuid),
            ("gpu_index", str(index)),
        )
        g = labels(base)
        add("all_smi_gpu_numa_node_id", g, number(gpu.numa_node_id))
        add("all_smi_gpu_gsp_firmware_mode", g, number(gpu.gsp_firmware_mode))
        if gpu.gsp_firmware_version is not None:
            version = labels((*base, ("version", gpu.gsp_firmware_version)))
            add("all_smi_gpu_gsp_firmware_version_info", version, "1")
        for link in gpu.nvlink_remote_devices:
            link_labels = (
                f'{g}, link_index="{link.link_index}", remote_type="{escape(link.remote_type)}"'
            )
            if link.bandwidth_mb_s is not None:
                link_labels += f', bandwidth_mb_s="{link.bandwidth_mb_s}"'
            add("all_smi_nvlink_remote_device_type", link_labels, "1")
        gpm = gpu.gpm_metrics
        if gpm is not None:
            add("all_smi_gpu_sm_occupancy", g, number(gpm.sm_occupancy))
            add(
                "all_smi_gpu_memory_bandwidth_utilization",
                g,
                number(gpm.memory_bandwidth_utilization),
            )
    samples.write(HARDWARE_FAMILIES, out)


def render_smicast_gpus(gpus: Sequence[GpuInfo], out: list[str]) -> None:
    """The `smicast_gpu_*` families, after every `all_smi_*` one."""
    samples = Samples()
    add = samples.add
    for index, gpu in enumerate(gpus):
        generation, width = gpu.pcie_link_generation, gpu.pcie_link_width
        if generation is UNSET and width is UNSET:
            continue
        g = labels(
            (
                ("gpu", gpu.name),
                ("instance", gpu.instance),
                ("gpu_uuid", gpu.uuid),
                ("gpu_index", str(index)),
            )
        )
        if generation is not UNSET:
            add("smicast_gpu_pcie_link_generation", g, str(generation))
        if width is not UNSET:
            add("smicast_gpu_pcie_link_width", g, str(width))
    samples.write(SMICAST_GPU_FAMILIES, out)
