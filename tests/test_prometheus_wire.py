"""The Prometheus text against all-smi's exporters: HELP texts, NPU labels, family sets.

`ALL_SMI_HELP` (tests/all_smi_help.py) is transcribed from the `.help(...)` calls of
all-smi's current exporters; every `# HELP all_smi_*` line smicast writes must carry
exactly that text.
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
from tests.all_smi_help import ALL_SMI_HELP
from tests.fakes import make_gpu, make_snapshot

NOW = 1_776_686_400.0
DATA = Path(__file__).parent / "data"


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
