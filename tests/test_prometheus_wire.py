"""The Prometheus text against all-smi's exporters: HELP texts, NPU labels, family sets.

`ALL_SMI_HELP` is transcribed from the `.help(...)` calls of all-smi's current
exporters (`src/api/metrics/**`); every `# HELP all_smi_*` line smicast writes must
carry exactly that text.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from smicast.prometheus import render_metrics
from smicast.readers.simulated import SimulatedReader
from smicast.readers.simulated_profiles import PARTS
from smicast.schema import GpuInfo, Snapshot
from tests.fakes import make_gpu, make_snapshot

NOW = 1_776_686_400.0
DATA = Path(__file__).parent / "data"

ALL_SMI_HELP: dict[str, str] = {
    "all_smi_ane_power_watts": "ANE power consumption in watts (omitted when the native metrics source is unavailable)",
    "all_smi_ane_utilization": "ANE utilization in mW (omitted when the native metrics source is unavailable)",
    "all_smi_build_info": "Build information for the running all-smi binary; always 1",
    "all_smi_chassis_ane_power_watts": "ANE (Apple Neural Engine) power consumption in watts",
    "all_smi_chassis_cpu_power_watts": "CPU power consumption in watts",
    "all_smi_chassis_fan_speed_rpm": "Fan speed in RPM",
    "all_smi_chassis_gpu_power_watts": "GPU power consumption in watts",
    "all_smi_chassis_info": "Chassis/node identification information",
    "all_smi_chassis_inlet_temperature_celsius": "Chassis inlet temperature in Celsius",
    "all_smi_chassis_outlet_temperature_celsius": "Chassis outlet temperature in Celsius",
    "all_smi_chassis_power_watts": "Total chassis power consumption in watts",
    "all_smi_chassis_thermal_pressure_info": "Thermal pressure level (macOS)",
    "all_smi_combined_power_watts": "Combined power consumption (CPU + GPU + ANE) in watts",
    "all_smi_cpu_ane_ops_per_second": "Apple Neural Engine operations per second",
    "all_smi_cpu_core_count": "Total number of CPU cores",
    "all_smi_cpu_core_utilization": "Per-core CPU utilization percentage",
    "all_smi_cpu_e_cluster_frequency_mhz": "Apple Silicon E-cluster frequency in MHz",
    "all_smi_cpu_e_core_count": "Apple Silicon E-core count",
    "all_smi_cpu_e_core_utilization": "Apple Silicon E-core utilization percentage",
    "all_smi_cpu_frequency_mhz": "CPU frequency in MHz",
    "all_smi_cpu_gpu_core_count": "Apple Silicon GPU core count",
    "all_smi_cpu_info": "CPU device information",
    "all_smi_cpu_p_cluster_frequency_mhz": "Apple Silicon P-cluster frequency in MHz",
    "all_smi_cpu_p_core_count": "Apple Silicon P-core count",
    "all_smi_cpu_p_core_utilization": "Apple Silicon P-core utilization percentage",
    "all_smi_cpu_power_consumption_watts": "CPU power consumption in watts",
    "all_smi_cpu_s_cluster_frequency_mhz": "Apple Silicon S-cluster (Super) frequency in MHz",
    "all_smi_cpu_s_core_count": "Apple Silicon S-core (Super) count",
    "all_smi_cpu_s_core_utilization": "Apple Silicon S-core (Super) utilization percentage",
    "all_smi_cpu_socket_count": "Number of CPU sockets",
    "all_smi_cpu_socket_frequency_mhz": "Per-socket CPU frequency in MHz",
    "all_smi_cpu_socket_temperature_celsius": "Per-socket CPU temperature in celsius",
    "all_smi_cpu_socket_utilization": "Per-socket CPU utilization percentage",
    "all_smi_cpu_temperature_celsius": "CPU temperature in celsius",
    "all_smi_cpu_thread_count": "Total number of CPU threads",
    "all_smi_cpu_utilization": "CPU utilization percentage",
    "all_smi_disk_available_bytes": "Available disk space in bytes",
    "all_smi_disk_total_bytes": "Total disk space in bytes",
    "all_smi_dla_utilization": "DLA utilization percentage",
    "all_smi_gaudi_aip_utilization_percent": "Gaudi AIP (AI Processor) utilization percentage",
    "all_smi_gaudi_device_info": "Intel Gaudi device information",
    "all_smi_gaudi_driver_info": "Intel Gaudi (Habana) driver version",
    "all_smi_gaudi_internal_name_info": "Intel Gaudi internal device name",
    "all_smi_gaudi_memory_total_bytes": "Gaudi HBM total memory in bytes",
    "all_smi_gaudi_memory_used_bytes": "Gaudi HBM memory used in bytes",
    "all_smi_gaudi_memory_utilization_percent": "Gaudi HBM memory utilization percentage",
    "all_smi_gaudi_power_draw_watts": "Gaudi current power consumption in watts",
    "all_smi_gaudi_power_max_watts": "Gaudi maximum power limit in watts",
    "all_smi_gaudi_power_utilization_percent": "Gaudi power utilization percentage",
    "all_smi_gaudi_temperature_celsius": "Gaudi AIP temperature in Celsius",
    "all_smi_gpu_clock_graphics_max_mhz": "Maximum graphics clock in MHz",
    "all_smi_gpu_clock_memory_max_mhz": "Maximum memory clock in MHz",
    "all_smi_gpu_fan_speed_rpm": "GPU fan speed in revolutions per minute (metric is omitted when the device reports no tachometer)",
    "all_smi_gpu_frequency_mhz": "GPU frequency in MHz (omitted when the device exposes no clock probe)",
    "all_smi_gpu_gsp_firmware_mode": "GSP firmware mode (0=disabled, 1=enabled, 2=default); omitted when the driver does not expose the GSP firmware API",
    "all_smi_gpu_gsp_firmware_version_info": "GSP firmware version, encoded as a constant 1 with the version in a `version` label; omitted when unsupported",
    "all_smi_gpu_info": "GPU/NPU device information",
    "all_smi_gpu_memory_bandwidth_utilization": "GPM-reported memory bandwidth utilization fraction (0.0-1.0); omitted on devices that do not support GPM (pre-Hopper)",
    "all_smi_gpu_memory_total_bytes": "GPU memory total in bytes",
    "all_smi_gpu_memory_used_bytes": "GPU memory used in bytes",
    "all_smi_gpu_numa_node_id": "NUMA node the GPU is attached to (metric is omitted when the host has no NUMA topology or the driver does not report one)",
    "all_smi_gpu_pcie_gen_current": "Current PCIe generation",
    "all_smi_gpu_pcie_width_current": "Current PCIe link width",
    "all_smi_gpu_performance_state": "GPU performance state (0=P0 fastest, 15=P15 idlest; metric is omitted when the device does not report a P-state)",
    "all_smi_gpu_power_consumption_watts": "GPU power consumption in watts (omitted when the device reports no power)",
    "all_smi_gpu_power_limit_current_watts": "Current power limit in watts",
    "all_smi_gpu_power_limit_max_watts": "Maximum power limit in watts",
    "all_smi_gpu_sm_occupancy": "GPM-reported SM occupancy fraction (0.0-1.0); omitted on devices that do not support GPM (pre-Hopper)",
    "all_smi_gpu_temperature_celsius": "GPU temperature in celsius (omitted when no sensor reports one)",
    "all_smi_gpu_temperature_threshold_acoustic_celsius": "GPU acoustic (noise) temperature threshold in Celsius",
    "all_smi_gpu_temperature_threshold_max_operating_celsius": "GPU maximum operating temperature threshold in Celsius",
    "all_smi_gpu_temperature_threshold_shutdown_celsius": "GPU shutdown temperature threshold in Celsius",
    "all_smi_gpu_temperature_threshold_slowdown_celsius": "GPU slowdown temperature threshold in Celsius",
    "all_smi_gpu_utilization": "GPU utilization percentage (omitted when the device reports no utilization)",
    "all_smi_memory_available_bytes": "Available system memory in bytes",
    "all_smi_memory_buffers_bytes": "Memory used for buffers in bytes",
    "all_smi_memory_cached_bytes": "Memory used for cache in bytes",
    "all_smi_memory_free_bytes": "Free system memory in bytes",
    "all_smi_memory_total_bytes": "Total system memory in bytes",
    "all_smi_memory_used_bytes": "Used system memory in bytes",
    "all_smi_memory_utilization": "Memory utilization percentage",
    "all_smi_npu_device_info": "NPU device information",
    "all_smi_npu_firmware_info": "NPU firmware version",
    "all_smi_npu_power_draw_watts": "NPU power draw in watts",
    "all_smi_npu_power_watts": "NPU power consumption in watts",
    "all_smi_npu_temperature_celsius": "NPU temperature in celsius",
    "all_smi_nvlink_remote_device_type": "NvLink remote endpoint classification per active link. Value is always 1; classification is carried in the `remote_type` label (gpu / switch / ibmnpu / unknown). Optional `bandwidth_mb_s` label carries the per-link bandwidth hint used by the topology tab's NVn classifier (omitted when the driver does not report it).",
    "all_smi_process_cpu_percent": "Process CPU utilization percentage",
    "all_smi_process_memory_used_bytes": "Process GPU memory used in bytes",
    "all_smi_process_start_time_seconds": "Wall-clock seconds since the process started (TIME+ equivalent)",
    "all_smi_swap_free_bytes": "Free swap space in bytes",
    "all_smi_swap_total_bytes": "Total swap space in bytes",
    "all_smi_swap_used_bytes": "Used swap space in bytes",
    "all_smi_tenstorrent_aiclk_mhz": "AI clock frequency in MHz",
    "all_smi_tenstorrent_arc0_health": "ARC0 health counter",
    "all_smi_tenstorrent_arc3_health": "ARC3 health counter",
    "all_smi_tenstorrent_arc_firmware_info": "ARC firmware version",
    "all_smi_tenstorrent_arcclk_mhz": "ARC clock frequency in MHz",
    "all_smi_tenstorrent_asic_temperature_celsius": "ASIC temperature in celsius",
    "all_smi_tenstorrent_axiclk_mhz": "AXI clock frequency in MHz",
    "all_smi_tenstorrent_board_info": "Tenstorrent board information",
    "all_smi_tenstorrent_collection_method_info": "Data collection method used",
    "all_smi_tenstorrent_current_amperes": "Current in amperes",
    "all_smi_tenstorrent_ddr_firmware_info": "DDR firmware version",
    "all_smi_tenstorrent_ddr_status": "DDR status register value",
    "all_smi_tenstorrent_dram_info": "DRAM configuration information",
    "all_smi_tenstorrent_eth_firmware_info": "Ethernet firmware version",
    "all_smi_tenstorrent_eth_status_info": "Ethernet status register value",
    "all_smi_tenstorrent_fan_rpm": "Fan speed in RPM",
    "all_smi_tenstorrent_fan_speed_percent": "Fan speed percentage",
    "all_smi_tenstorrent_faults": "Fault register value",
    "all_smi_tenstorrent_firmware_date_info": "Firmware build date",
    "all_smi_tenstorrent_heartbeat": "Device heartbeat counter",
    "all_smi_tenstorrent_inlet_temperature_celsius": "Inlet temperature in celsius",
    "all_smi_tenstorrent_outlet1_temperature_celsius": "Outlet 1 temperature in celsius",
    "all_smi_tenstorrent_outlet2_temperature_celsius": "Outlet 2 temperature in celsius",
    "all_smi_tenstorrent_pcie_address_info": "PCIe address information",
    "all_smi_tenstorrent_pcie_device_info": "PCIe device identification",
    "all_smi_tenstorrent_pcie_generation": "PCIe generation",
    "all_smi_tenstorrent_pcie_status_info": "PCIe status register value",
    "all_smi_tenstorrent_pcie_width": "PCIe link width",
    "all_smi_tenstorrent_power_limit_tdc_amperes": "TDC current limit in amperes",
    "all_smi_tenstorrent_power_limit_tdp_watts": "TDP power limit in watts",
    "all_smi_tenstorrent_power_raw_watts": "Raw power consumption in watts",
    "all_smi_tenstorrent_spibootrom_firmware_info": "SPI Boot ROM firmware version",
    "all_smi_tenstorrent_tdc_limit_amperes": "TDC limit in amperes",
    "all_smi_tenstorrent_tdp_limit_watts": "TDP limit in watts",
    "all_smi_tenstorrent_thermal_limit_celsius": "Thermal limit in celsius",
    "all_smi_tenstorrent_throttler": "Throttler state register value",
    "all_smi_tenstorrent_voltage_volts": "Core voltage in volts",
    "all_smi_tenstorrent_vreg_temperature_celsius": "Voltage regulator temperature in celsius",
    "all_smi_thermal_pressure_info": "Thermal pressure level",
    "all_smi_up": "1 once the exporter has completed a collection cycle, 0 before that",
}


def help_lines(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            found[name] = help_text
    return found


def full_snapshot() -> Snapshot:
    """Every section and most families at once (the Prometheus tests' rich snapshot)."""
    from tests.test_prometheus import full_snapshot as rich

    snap: Snapshot = rich()
    return snap


def simulated(platform: str, count: int = 4, seed: int = 3) -> list[GpuInfo]:
    return list(
        SimulatedReader(platform, count, seed=seed, hostname="sim", clock=lambda: NOW).read()
    )


@pytest.mark.parametrize("platform", [None, *sorted(PARTS)])
def test_help_texts_are_all_smis(platform: str | None) -> None:
    if platform is None:
        snap = full_snapshot()
    else:
        reader = SimulatedReader(platform, 4, seed=3, hostname="sim", clock=lambda: NOW)
        gpus = list(reader.read())
        procs = [p.info for p in reader.read_processes() if p.info is not None]
        snap = make_snapshot(gpus=gpus, processes=procs)
    helps = help_lines(render_metrics(snap))
    ours = {name: text for name, text in helps.items() if name.startswith("all_smi_")}
    assert ours, "nothing rendered"
    assert {name: ALL_SMI_HELP.get(name) for name in ours} == ours


def test_every_all_smi_family_smicast_declares_has_all_smis_help() -> None:
    from smicast.prometheus.chassis import CHASSIS_FAMILIES
    from smicast.prometheus.gpu import GPU_FAMILIES, HARDWARE_FAMILIES
    from smicast.prometheus.host import CPU_FAMILIES, DISK_FAMILIES, MEMORY_FAMILIES
    from smicast.prometheus.npu import NPU_FAMILIES
    from smicast.prometheus.process import PROCESS_FAMILIES

    declared = [
        *GPU_FAMILIES,
        *HARDWARE_FAMILIES,
        *NPU_FAMILIES,
        *CPU_FAMILIES,
        *MEMORY_FAMILIES,
        *DISK_FAMILIES,
        *CHASSIS_FAMILIES,
        *PROCESS_FAMILIES,
    ]
    mismatched = {
        f.name: f.help
        for f in declared
        if f.name.startswith("all_smi_") and ALL_SMI_HELP.get(f.name) != f.help
    }
    assert mismatched == {}


def test_npu_firmware_labels_are_sanitized_like_all_smi() -> None:
    for platform in ("gaudi", "tenstorrent"):
        text = render_metrics(make_snapshot(gpus=simulated(platform, 2)))
        lines = [
            line for line in text.splitlines() if line.startswith("all_smi_npu_firmware_info{")
        ]
        assert len(lines) == 2
        for line in lines:
            labels = line[line.index("{") + 1 : line.rindex("}")]
            for pair in labels.split(", "):
                _, _, value = pair.partition("=")
                assert all(c.isalnum() or c in '_.-"' for c in value), line
    gaudi = make_gpu(
        "Intel Gaudi 3",
        device_type="NPU",
        instance="node 1:9090",
        uuid="01P4 HL/3",
        detail={"firmware": "hl-1.19.1 (fw 57.2)"},
    )
    text = render_metrics(make_snapshot(gpus=[gaudi]))
    assert (
        'all_smi_npu_firmware_info{npu="Intel_Gaudi_3", instance="node_1_9090", '
        'npu_uuid="01P4_HL_3", npu_index="0", firmware="hl-1.19.1__fw_57.2_"} 1'
    ) in text.splitlines()
    assert "all_smi_npu_device_info" not in text
    # all_smi_gpu_info keeps the raw name: all-smi sanitizes only the NPU firmware series.
    assert 'gpu="Intel Gaudi 3"' in text


# -- the rule: all_smi_* exactly as all-smi's exporter writes them, extras named smicast_* --

PROCESS = {
    "all_smi_process_memory_used_bytes",
    "all_smi_process_start_time_seconds",
    "all_smi_process_cpu_percent",
}
BASELINE = {"all_smi_up", "all_smi_build_info"}
GPU_BASIC = {
    "all_smi_gpu_utilization",
    "all_smi_gpu_memory_used_bytes",
    "all_smi_gpu_memory_total_bytes",
    "all_smi_gpu_temperature_celsius",
    "all_smi_gpu_power_consumption_watts",
    "all_smi_ane_utilization",  # every row with ane_utilization >= 0, as all-smi does
    "all_smi_gpu_info",
}
# What all-smi's exporters (api/metrics/{gpu,hardware,process}.rs and npu/*) write for a
# frame of each simulated platform, worked out from its code for that Snapshot.
ALL_SMI_FAMILIES: dict[str, set[str]] = {
    "nvidia": BASELINE
    | GPU_BASIC
    | PROCESS
    | {
        "all_smi_gpu_frequency_mhz",
        # From `detail`; no pcie_gen_current/pcie_width_current there, so no PCIe gauges.
        "all_smi_gpu_clock_graphics_max_mhz",
        "all_smi_gpu_clock_memory_max_mhz",
        "all_smi_gpu_power_limit_current_watts",
        "all_smi_gpu_power_limit_max_watts",
        "all_smi_gpu_performance_state",
        "all_smi_gpu_temperature_threshold_slowdown_celsius",
        "all_smi_gpu_temperature_threshold_shutdown_celsius",
        "all_smi_gpu_temperature_threshold_max_operating_celsius",
        "all_smi_gpu_numa_node_id",
        "all_smi_gpu_gsp_firmware_mode",
        "all_smi_gpu_gsp_firmware_version_info",
        "all_smi_nvlink_remote_device_type",
        "all_smi_gpu_sm_occupancy",
        "all_smi_gpu_memory_bandwidth_utilization",
    },
    "amd": BASELINE | GPU_BASIC | PROCESS | {"all_smi_gpu_frequency_mhz"},
    "gaudi": BASELINE
    | GPU_BASIC
    | PROCESS
    | {
        "all_smi_gpu_power_limit_max_watts",  # the GPU exporter reads every row's detail
        "all_smi_npu_firmware_info",
        "all_smi_gaudi_device_info",
        "all_smi_gaudi_internal_name_info",
        "all_smi_gaudi_driver_info",
        "all_smi_gaudi_aip_utilization_percent",
        "all_smi_gaudi_memory_used_bytes",
        "all_smi_gaudi_memory_total_bytes",
        "all_smi_gaudi_memory_utilization_percent",
        "all_smi_gaudi_power_draw_watts",
        "all_smi_gaudi_power_max_watts",
        "all_smi_gaudi_power_utilization_percent",
        "all_smi_gaudi_temperature_celsius",
    },
    "tenstorrent": BASELINE
    | GPU_BASIC
    | PROCESS
    | {"all_smi_gpu_frequency_mhz", "all_smi_npu_firmware_info"}
    | {
        f"all_smi_tenstorrent_{suffix}"
        for suffix in (
            "arc_firmware_info",
            "eth_firmware_info",
            "ddr_firmware_info",
            "spibootrom_firmware_info",
            "firmware_date_info",
            "asic_temperature_celsius",
            "vreg_temperature_celsius",
            "aiclk_mhz",
            "axiclk_mhz",
            "arcclk_mhz",
            "voltage_volts",
            "current_amperes",
            "tdp_limit_watts",
            "heartbeat",
            "power_raw_watts",
            "board_info",
            "pcie_address_info",
            "pcie_generation",
            "pcie_width",
        )
    },
}
SMICAST_FAMILIES: dict[str, set[str]] = {
    "nvidia": {"smicast_gpu_pcie_link_generation", "smicast_gpu_pcie_link_width"},
    "amd": {"smicast_gpu_pcie_link_generation", "smicast_gpu_pcie_link_width"},
    "gaudi": set(),
    "tenstorrent": set(),
}


def simulated_text(platform: str, reads: int = 3) -> str:
    reader = SimulatedReader(platform, 8, seed=3, hostname="sim", clock=lambda: NOW)
    for _ in range(reads - 1):
        reader.read()
    gpus = list(reader.read())
    procs = [p.info for p in reader.read_processes() if p.info is not None]
    snap = Snapshot(timestamp="2026-04-20T12:00:00Z", hostname="sim", gpus=gpus, processes=procs)
    return render_metrics(snap, version="0.0.0")


def sample_families(text: str) -> set[str]:
    return {line.split("{")[0] for line in text.splitlines() if line and not line.startswith("#")}


@pytest.mark.parametrize("platform", sorted(PARTS))
def test_all_smi_families_are_exactly_all_smis_and_extras_are_smicast(platform: str) -> None:
    families = sample_families(simulated_text(platform))
    assert {f for f in families if f.startswith("all_smi_")} == ALL_SMI_FAMILIES[platform]
    assert families - ALL_SMI_FAMILIES[platform] == SMICAST_FAMILIES[platform]
    assert "all_smi_npu_device_info" not in families


# -- all_smi_gpu_info never churns --------------------------------------------------------


def info_series(text: str) -> dict[str, set[str]]:
    """gpu_uuid -> the distinct label sets of its all_smi_gpu_info lines."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("all_smi_gpu_info{"):
            label_text = line[line.index("{") + 1 : line.rindex("}")]
            uuid = label_text.split('gpu_uuid="', 1)[1].split('"', 1)[0]
            found.setdefault(uuid, set()).add(label_text)
    return found


def merge(into: dict[str, set[str]], more: dict[str, set[str]]) -> None:
    for uuid, series in more.items():
        into.setdefault(uuid, set()).update(series)


def gauge_values(text: str, family: str) -> set[str]:
    return {line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(family + "{")}


@pytest.mark.parametrize("platform", ["nvidia", "amd", "gaudi"])
def test_one_info_series_per_gpu_over_1000_simulated_frames(platform: str) -> None:
    reader = SimulatedReader(platform, 8, seed=11, hostname="sim", clock=lambda: NOW)
    series: dict[str, set[str]] = {}
    links: set[str] = set()
    pstates: set[str] = set()
    for _ in range(1000):
        text = render_metrics(make_snapshot(gpus=reader.read()))
        merge(series, info_series(text))
        links |= gauge_values(text, "smicast_gpu_pcie_link_generation")
        pstates |= gauge_values(text, "all_smi_gpu_performance_state")
    assert len(series) == 8
    assert {uuid: len(labels) for uuid, labels in series.items()} == dict.fromkeys(series, 1)
    # ...while the live values did move: the link trained down at idle, P-states flipped.
    # (Tenstorrent is left out: all-smi's exporter reads its live values from `detail`.)
    if platform != "gaudi":
        assert links == {"1", "5"}
    if platform == "nvidia":
        assert pstates == {"0", "2", "8"}


def test_one_info_series_per_gpu_across_nvml_reads_with_changed_live_values() -> None:
    from smicast.readers.nvidia import NvidiaReader
    from tests.fake_nvml import FakeNvml, a100, h100

    nvml = FakeNvml([a100(fan_rpm=1200), h100()])
    reader = NvidiaReader(nvml, hostname="n", clock=lambda: NOW)
    first = render_metrics(make_snapshot(gpus=reader.read()))
    for device in nvml.devices:
        device.pstate, device.pcie_gen, device.pcie_width = 8, 1, 8
        device.power_limit_mw, device.fan_rpm = 250_000, 2400
    second = render_metrics(make_snapshot(gpus=reader.read()))
    series: dict[str, set[str]] = {}
    merge(series, info_series(first))
    merge(series, info_series(second))
    assert {uuid: len(labels) for uuid, labels in series.items()} == {"GPU-a100": 1, "GPU-h100": 1}
    assert 'pcie_width="x16"' in next(iter(series["GPU-a100"]))
    assert gauge_values(second, "smicast_gpu_pcie_link_generation") == {"1"}
    assert gauge_values(second, "smicast_gpu_pcie_link_width") == {"8"}
    assert gauge_values(second, "all_smi_gpu_performance_state") == {"8"}
    assert gauge_values(second, "all_smi_gpu_fan_speed_rpm") == {"2400"}


def test_one_info_series_per_gpu_across_amd_reads_with_changed_live_values(
    tmp_path: Path,
) -> None:
    from smicast.readers.amd import AmdReader

    root = tmp_path / "amd"
    shutil.copytree(DATA / "amd", root, symlinks=True)
    reader = AmdReader(root / "sys", root / "proc", hostname="n", clock=lambda: NOW)
    first = render_metrics(make_snapshot(gpus=reader.read()))
    device = root / "sys" / "class" / "drm" / "card1" / "device"
    (device / "current_link_speed").write_text("16.0 GT/s PCIe\n")
    (device / "current_link_width").write_text("8\n")
    (device / "hwmon" / "hwmon5" / "fan1_input").write_text("2900\n")
    (device / "hwmon" / "hwmon5" / "power1_cap").write_text("200000000\n")
    (device / "pp_dpm_mclk").write_text("0: 96Mhz\n1: 456Mhz *\n")
    (device / "power_dpm_force_performance_level").write_text("manual\n")
    second = render_metrics(make_snapshot(gpus=reader.read()))
    series: dict[str, set[str]] = {}
    merge(series, info_series(first))
    merge(series, info_series(second))
    assert len(series) == 2
    assert {uuid: len(labels) for uuid, labels in series.items()} == dict.fromkeys(series, 1)
    assert gauge_values(first, "smicast_gpu_pcie_link_generation") == {"4", "1"}
    assert gauge_values(second, "smicast_gpu_pcie_link_generation") == {"4"}
    assert gauge_values(second, "smicast_gpu_pcie_link_width") == {"16", "8"}
    assert gauge_values(second, "all_smi_gpu_fan_speed_rpm") == {"2900"}


# -- golden Prometheus text per simulated platform ------------------------------------------

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
REGEN = os.environ.get("SMICAST_REGEN_GOLDEN") == "1"


def machine_independent(text: str) -> str:
    """all_smi_build_info carries this machine's OS and architecture; pin them."""
    return re.sub(
        r'(all_smi_build_info\{.*), os="[^"]*", arch="[^"]*"\}',
        r'\1, os="linux", arch="x86_64"}',
        text,
    )


@pytest.mark.parametrize("platform", sorted(PARTS))
def test_golden_prometheus_text(platform: str) -> None:
    text = machine_independent(simulated_text(platform))
    path = GOLDEN_DIR / f"prometheus-{platform}.txt"
    if REGEN:
        path.write_text(text)
    assert text == path.read_text()
