"""Prometheus exposition: all-smi's families and labels, valid text, one HELP per family."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from smicast import __version__
from smicast.encode import decode_snapshot, snapshot_json
from smicast.include import Section
from smicast.prometheus import render_baseline, render_metrics
from smicast.prometheus.process import start_time_seconds
from smicast.prometheus.text import escape, label_name, number
from smicast.schema import (
    AppleSiliconCpuInfo,
    ChassisInfo,
    CoreUtilization,
    CpuSocketInfo,
    FanInfo,
    GpmMetrics,
    NvLinkRemoteDevice,
    PsuInfo,
    StorageInfo,
)
from tests.fakes import make_cpu, make_gpu, make_memory, make_process, make_snapshot

# The line pattern all-smi's `view` client scrapes with (reference §5.7).
VIEW_LINE = re.compile(r"^all_smi_([^\{]+)\{([^}]+)\} ([\d\.]+)$")

NVIDIA_DETAIL = {
    "Driver Version": "550.54.15",
    "CUDA Version": "12.4",
    "lib_name": "CUDA",
    "lib_version": "12.4",
    "Brand": "Nvidia",
    "architecture": "Hopper",
    "compute_mode": "Default",
    "vbios_version": "96.00.89.00.01",
    "PCIe Generation": "5",
    "PCIe Width": "16",
    "pcie_gen_current": "5",
    "pcie_gen_max": "5",
    "pcie_width_current": "16",
    "pcie_width_max": "16",
    "clock_graphics_max": "1980",
    "clock_memory_max": "2619",
    "power_limit_current": "700",
    "power_limit_default": "700",
    "power_limit_min": "200",
    "power_limit_max": "700",
    "performance_state": "P0",
    "ecc_mode_current": "Enabled",
    "mig_mode_current": "Disabled",
    "Memory Type": "HBM3",
}


def full_snapshot() -> Any:
    """A busy 8-GPU node: every section, detail keys, hardware details, fans, swap."""
    gpus = [
        make_gpu(
            "NVIDIA H100 80GB HBM3",
            uuid=f"GPU-{i:08x}-1111-2222-3333-444455556666",
            utilization=12.5 * i,
            temperature=40 + i,
            power_consumption=100.25 + i,
            used_memory=(i + 1) << 30,
            total_memory=80 << 30,
            frequency=1980,
            performance_state=0,
            temperature_threshold_slowdown=90,
            temperature_threshold_shutdown=95,
            temperature_threshold_max_operating=85,
            temperature_threshold_acoustic=None if i % 2 else 77,
            numa_node_id=i // 4,
            gsp_firmware_mode=1,
            gsp_firmware_version="550.54.15",
            nvlink_remote_devices=[
                NvLinkRemoteDevice(link_index=0, remote_type="switch", bandwidth_mb_s=25_781),
                NvLinkRemoteDevice(link_index=1, remote_type="gpu"),
            ],
            gpm_metrics=GpmMetrics(sm_occupancy=0.67, memory_bandwidth_utilization=0.42),
            detail=NVIDIA_DETAIL,
        )
        for i in range(8)
    ]
    processes = [
        make_process(
            pid=1000 + i,
            device_id=i % 8,
            device_uuid=gpus[i % 8].uuid,
            user="alice" if i % 2 else "bob",
            start_time=f"{i:02d}:15:30",
            cpu_percent=3.14159 * i,
            command=f"python train.py --rank {i} --config 'a,b'",
        )
        for i in range(24)
    ]
    cpu = make_cpu(
        cpu_model="AMD EPYC 9654 96-Core Processor",
        platform_type="Amd",
        socket_count=2,
        total_cores=192,
        total_threads=384,
        base_frequency_mhz=2400,
        max_frequency_mhz=3700,
        per_socket_info=[
            CpuSocketInfo(socket_id=s, utilization=20.0 + s, cores=96, threads=192, temperature=50)
            for s in range(2)
        ],
        per_core_utilization=[
            CoreUtilization(core_id=c, utilization=(c * 7) % 100 + 0.5) for c in range(64)
        ],
    )
    memory = make_memory(
        swap_total_bytes=8 << 30,
        swap_used_bytes=1 << 30,
        swap_free_bytes=7 << 30,
        buffers_bytes=512 << 20,
        cached_bytes=4 << 30,
    )
    chassis = ChassisInfo(
        host_id="mockhost",
        hostname="mockhost",
        instance="mockhost",
        total_power_watts=1234.5678,
        inlet_temperature=21.55,
        outlet_temperature=35.0,
        fan_speeds=[
            FanInfo(id=i, name=f"FAN{i}", speed_rpm=4000 + i, max_rpm=9000) for i in range(4)
        ],
        psu_status=[PsuInfo(id=0, name="PSU0", status="Ok", power_watts=650.0)],
        detail={"Product Name": "SYS-821GE", "Vendor": "Supermicro", "platform": "Linux"},
        time="2026-04-20 12:00:00",
    )
    storage = [
        StorageInfo(
            mount_point=mount,
            total_bytes=2 << 40,
            available_bytes=1 << 40,
            host_id="mockhost",
            hostname="mockhost",
            index=i,
        )
        for i, mount in enumerate(["/", "/data", "/scratch"])
    ]
    return make_snapshot(
        gpus=gpus,
        processes=processes,
        cpus=[cpu],
        memory=[memory],
        chassis=[chassis],
        storage=storage,
    )


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def lines_of(text: str, family: str) -> list[str]:
    return [line for line in samples(text) if line.startswith(family + "{")]


# -- all-smi reference tests ------------------------------------------------------------


def test_prometheus_output_reuses_api_exporter_format() -> None:
    text = render_metrics(make_snapshot())
    assert "# HELP all_smi_gpu_utilization" in text
    assert "# TYPE all_smi_gpu_utilization gauge" in text
    assert "all_smi_gpu_utilization{" in text
    assert "all_smi_memory_total_bytes{" in text


def test_snapshot_command_text_is_the_api_text_for_the_same_data() -> None:
    from smicast.commands.snapshot import render

    snapshot = full_snapshot()
    sections = list(Section)
    cli = render("prometheus", [snapshot], sections, pretty=False, query=None)
    assert cli == render_metrics(snapshot, ready=True).encode("utf-8")


def test_same_data_after_a_wire_round_trip_renders_the_same_text() -> None:
    snapshot = full_snapshot()
    again = decode_snapshot(snapshot_json(snapshot))
    assert render_metrics(again) == render_metrics(snapshot)


# -- structure ---------------------------------------------------------------------------


def test_help_and_type_once_per_family_with_samples_grouped() -> None:
    text = render_metrics(full_snapshot())
    helps = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# HELP "))
    types = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE "))
    assert helps and all(n == 1 for n in helps.values()), helps
    assert types == helps
    # Every sample sits under its own family's TYPE line.
    current = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            current = line.split()[2]
        elif not line.startswith("#"):
            assert line.split("{", 1)[0] == current, line


def test_sections_follow_all_smi_order() -> None:
    text = render_metrics(full_snapshot())
    order = [
        "all_smi_up{",
        "all_smi_build_info{",
        "all_smi_gpu_utilization{",
        "all_smi_gpu_info{",
        "all_smi_gpu_temperature_threshold_slowdown_celsius{",
        "all_smi_process_memory_used_bytes{",
        "all_smi_cpu_info{",
        "all_smi_cpu_core_utilization{",
        "all_smi_memory_total_bytes{",
        "all_smi_disk_total_bytes{",
        "all_smi_chassis_info{",
        "all_smi_chassis_fan_speed_rpm{",
        "all_smi_gpu_numa_node_id{",
        "all_smi_gpu_memory_bandwidth_utilization{",
    ]
    positions = [text.index("\n" + marker) for marker in order[1:]]
    assert text.startswith("# HELP all_smi_up ")
    assert positions == sorted(positions)


def test_whole_output_parses_with_the_reference_parser() -> None:
    families = {f.name: f for f in text_string_to_metric_families(render_metrics(full_snapshot()))}
    assert families["all_smi_gpu_utilization"].type == "gauge"
    assert len(families["all_smi_gpu_utilization"].samples) == 8
    assert len(families["all_smi_process_cpu_percent"].samples) == 24
    assert len(families["all_smi_cpu_core_utilization"].samples) == 64
    assert len(families["all_smi_nvlink_remote_device_type"].samples) == 16
    info = families["all_smi_gpu_info"].samples[0]
    assert info.labels["driver_version"] == "550.54.15"
    assert info.labels["pcie_generation"] == "5"


def test_every_sample_line_matches_the_view_client_pattern() -> None:
    for line in samples(render_metrics(full_snapshot())):
        assert VIEW_LINE.match(line), line


# promtool lints these all-smi names for their `_count` suffix; the names are the
# wire contract, so that lint (and only that lint) is expected.
WIRE_FIXED_LINTS = {
    f'{name} non-histogram and non-summary metrics should not have "_count" suffix'
    for name in ("all_smi_cpu_socket_count", "all_smi_cpu_core_count", "all_smi_cpu_thread_count")
}


def test_promtool_reports_no_problems_for_a_full_snapshot() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required under CI (Debian package: prometheus)")
        pytest.skip("promtool not installed")
    text = render_metrics(full_snapshot())
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode("utf-8"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    report = (result.stdout + result.stderr).decode("utf-8", "replace")
    findings = {line.strip() for line in report.splitlines() if line.strip()}
    assert findings <= WIRE_FIXED_LINTS, report
    # Exit 3 is "lint findings"; a parse error (duplicate HELP, bad escape) is exit 1.
    assert result.returncode in (0, 3) if findings else result.returncode == 0, report


@pytest.mark.parametrize("platform", ["nvidia", "amd", "gaudi", "tenstorrent"])
def test_simulated_platforms_render_valid_text(platform: str) -> None:
    from smicast.readers.simulated import SimulatedReader

    reader = SimulatedReader(platform, 4, seed=3, hostname="sim", clock=lambda: 1_776_686_400.0)
    gpus = list(reader.read())
    processes = [p.info for p in reader.read_processes() if p.info is not None]
    text = render_metrics(make_snapshot(gpus=gpus, processes=processes))
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "all_smi_gpu_memory_used_bytes" in names
    if platform in ("gaudi", "tenstorrent"):
        assert "all_smi_npu_firmware_info" in names
        assert any(name.startswith(f"all_smi_{platform}_") for name in names)
    for line in samples(text):
        # all-smi's view client reads all_smi_* lines; smicast_* ones are ours.
        assert VIEW_LINE.match(line) or line.startswith("smicast_"), line


# -- baseline ----------------------------------------------------------------------------


def test_baseline_before_the_first_frame_is_up_zero_then_build_info() -> None:
    text = render_baseline(ready=False, hostname="node-a")
    sample_lines = samples(text)
    assert sample_lines[0] == 'all_smi_up{instance="node-a", hostname="node-a"} 0'
    assert sample_lines[1].startswith(
        f'all_smi_build_info{{instance="node-a", hostname="node-a", version="{__version__}", os="'
    )
    assert sample_lines[1].endswith('"} 1')
    assert len(sample_lines) == 2
    assert list(text_string_to_metric_families(text))


def test_up_is_one_when_ready_and_instance_can_differ_from_hostname() -> None:
    text = render_metrics(make_snapshot(), ready=True, instance="node-a:9090", version="9.9.9")
    assert 'all_smi_up{instance="node-a:9090", hostname="mockhost"} 1' in text
    assert 'version="9.9.9"' in text
    assert render_metrics(make_snapshot(), ready=False).count("} 0\n") >= 1
    assert 'all_smi_up{instance="mockhost", hostname="mockhost"} 0' in render_metrics(
        make_snapshot(), ready=False
    )


def test_extra_text_is_appended_newline_terminated() -> None:
    text = render_metrics(make_snapshot(), extra="smicast_sse_subscribers 3")
    assert text.endswith("\nsmicast_sse_subscribers 3\n")


def test_a_snapshot_with_no_sections_renders_just_the_baseline() -> None:
    text = render_metrics(make_snapshot(gpus=[], cpus=[], memory=[], chassis=[]))
    assert [line.split("{")[0] for line in samples(text)] == ["all_smi_up", "all_smi_build_info"]


# -- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (80.0, "80"),
        (80, "80"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "0.0000001"),
        (1.5e-7, "0.00000015"),
        (1e21, "1000000000000000000000"),
        (1.5e21, "1500000000000000000000"),
        (1e16, "10000000000000000"),
        (123456.789, "123456.789"),
        (-2.5, "-2.5"),
        (-0.0, "-0"),
        (5e-324, "0." + "0" * 323 + "5"),
        (2**64 - 1, "18446744073709551615"),
    ],
)
def test_numbers_print_like_rust_display(value: float, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, None])
def test_non_finite_numbers_have_no_text(value: float | None) -> None:
    assert number(value) is None


def test_non_finite_readings_are_skipped_not_written() -> None:
    gpu = make_gpu(utilization=math.nan, power_consumption=math.inf, ane_utilization=-math.inf)
    cpu = make_cpu(utilization=math.nan, power_consumption=None)
    text = render_metrics(make_snapshot(gpus=[gpu], cpus=[cpu]))
    for family in (
        "all_smi_gpu_utilization",
        "all_smi_gpu_power_consumption_watts",
        "all_smi_ane_utilization",
        "all_smi_cpu_utilization",
        "all_smi_cpu_power_consumption_watts",
    ):
        assert lines_of(text, family) == [], family
        assert f"# HELP {family} " not in text
    assert "nan" not in text.lower() and "inf" not in text.lower().replace("info", "")
    assert lines_of(text, "all_smi_gpu_memory_total_bytes")


def test_unavailable_sentinels_are_omitted_like_all_smi() -> None:
    quiet = make_gpu("Quiet", utilization=-1.0, power_consumption=-1.0, temperature=0, frequency=0)
    busy = make_gpu("Busy", utilization=0.0, power_consumption=0.0)
    text = render_metrics(make_snapshot(gpus=[quiet, busy]))
    for family in (
        "all_smi_gpu_utilization",
        "all_smi_gpu_power_consumption_watts",
        "all_smi_gpu_temperature_celsius",
        "all_smi_gpu_frequency_mhz",
    ):
        assert [line for line in lines_of(text, family) if 'gpu="Quiet"' in line] == []
    assert " -1\n" not in text
    # A real zero is a reading.
    assert lines_of(text, "all_smi_gpu_utilization") == [
        'all_smi_gpu_utilization{gpu="Busy", instance="mockhost:9090", '
        'gpu_uuid="GPU-Busy-UUID", gpu_index="1"} 0'
    ]
    assert len(lines_of(text, "all_smi_gpu_info")) == 2


def test_swap_buffers_and_cached_only_when_present() -> None:
    bare = render_metrics(make_snapshot(memory=[make_memory()]))
    for family in ("all_smi_swap_total_bytes", "all_smi_memory_buffers_bytes"):
        assert family not in bare
    full = render_metrics(
        make_snapshot(memory=[make_memory(swap_total_bytes=10, swap_free_bytes=10, cached_bytes=5)])
    )
    assert lines_of(full, "all_smi_swap_total_bytes")
    assert lines_of(full, "all_smi_swap_used_bytes")[0].endswith(" 0")
    assert lines_of(full, "all_smi_memory_cached_bytes")[0].endswith(" 5")
    assert "all_smi_memory_buffers_bytes" not in full


def test_fixed_precision_families() -> None:
    text = render_metrics(full_snapshot())
    assert lines_of(text, "all_smi_chassis_power_watts") == [
        'all_smi_chassis_power_watts{hostname="mockhost", instance="mockhost"} 1234.57'
    ]
    assert lines_of(text, "all_smi_chassis_inlet_temperature_celsius")[0].endswith("} 21.6")
    assert lines_of(text, "all_smi_chassis_outlet_temperature_celsius")[0].endswith("} 35.0")
    cpu_percent = lines_of(text, "all_smi_process_cpu_percent")
    assert cpu_percent[0].endswith("} 0.00")
    assert cpu_percent[1].endswith("} 3.14")


# -- labels ------------------------------------------------------------------------------


def test_label_values_are_escaped_and_control_characters_dropped() -> None:
    nasty = 'say "hi"\\C:\\dir\nnext\rline\x1b[2J\x07\x85end'
    text = render_metrics(make_snapshot(gpus=[make_gpu(nasty)], cpus=[], memory=[]))
    expected = 'say \\"hi\\"\\\\C:\\\\dir\\nnextline[2Jend'
    assert f'gpu="{expected}"' in lines_of(text, "all_smi_gpu_memory_used_bytes")[0]
    assert "\x1b" not in text and "\x07" not in text and "\x85" not in text
    family = next(
        f for f in text_string_to_metric_families(text) if f.name == "all_smi_gpu_memory_used_bytes"
    )
    # CR is dropped: all-smi's `\r` escape is not part of the text format.
    assert family.samples[0].labels["gpu"] == 'say "hi"\\C:\\dir\nnextline[2Jend'


def test_label_values_are_capped_at_1024_bytes_without_splitting_an_escape() -> None:
    assert len(escape("é" * 2000).encode()) <= 1024
    cut = escape("a" * 1023 + '"tail')
    assert cut == "a" * 1023  # the escape pair would not fit, so it goes whole
    assert escape("x" * 1024) == "x" * 1024


def test_process_labels_are_truncated_with_the_marker() -> None:
    proc = make_process(command="c" * 4096, process_name="n" * 512, user="u" * 512)
    text = render_metrics(make_snapshot(processes=[proc]))
    line = lines_of(text, "all_smi_process_memory_used_bytes")[0]
    assert f'command="{"c" * 256}...(3840 bytes truncated)"' in line
    assert f'name="{"n" * 128}...(384 bytes truncated)"' in line
    assert f'user="{"u" * 128}...(384 bytes truncated)"' in line
    short = render_metrics(make_snapshot(processes=[make_process()]))
    assert 'command="python train.py --epochs 10"' in short


def test_process_series_carry_all_smi_labels_in_order() -> None:
    proc = make_process(pid=7, device_id=3, start_time="01:02:03", cpu_percent=12.345)
    text = render_metrics(make_snapshot(processes=[proc]))
    labels = (
        'pid="7", name="python", user="alice", device_id="3", gpu_index="3", '
        'device_uuid="GPU-A100-UUID", command="python train.py --epochs 10"'
    )
    assert f"all_smi_process_start_time_seconds{{{labels}}} 3723" in text
    assert f"all_smi_process_cpu_percent{{{labels}}} 12.35" in text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("42", 42),
        ("05:30", 330),
        ("02:00:00", 7200),
        ("00:10.55", 10),
        ("1:02:03.50", 3723),
        ("", 0),
        ("abc", 0),
        ("12:xx", 0),
        ("1::2", 0),
        ("-5", 0),
        ("99999999999999999999", 0),
    ],
)
def test_start_time_parsing_matches_all_smi(text: str, seconds: int) -> None:
    assert start_time_seconds(text) == seconds


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("Source: Fan", "source__fan"),
        ("3D Engine", "_3d_engine"),
        ("GPU.Temp/Limit", "gpu_temp_limit"),
        ("Driver Version", "driver_version"),
        ("café", "caf_"),
    ],
)
def test_detail_keys_become_label_names(key: str, name: str) -> None:
    assert label_name(key) == name


def test_gpu_info_carries_sanitized_detail_labels() -> None:
    detail = {
        "Driver Version": ' "550.54" ',
        "type": "clash with a base label",
        "Instance": "clash too",
        "Source: Fan": "hwmon",
        "3D Engine": "busy",
        "note": "a\x1bb",
    }
    text = render_metrics(make_snapshot(gpus=[make_gpu("A100", detail=detail)]))
    (line,) = lines_of(text, "all_smi_gpu_info")
    assert line == (
        'all_smi_gpu_info{gpu="A100", instance="mockhost:9090", gpu_uuid="GPU-A100-UUID", '
        'gpu_index="0", type="GPU", _3d_engine="busy", driver_version="550.54", '
        'source__fan="hwmon", note="ab"} 1'
    )
    assert list(text_string_to_metric_families(text))


def test_detail_derived_gpu_families() -> None:
    detail = {
        "pcie_gen_current": "4",
        "pcie_width_current": "16",
        "clock_graphics_max": "1410",
        "power_limit_max": "400.5",
        "performance_state": "P2",
        "Fan Speed": "1450 RPM",
        "clock_memory_max": " 1215",  # all-smi's parse does not trim: no sample
    }
    text = render_metrics(make_snapshot(gpus=[make_gpu(detail=detail)]))
    assert lines_of(text, "all_smi_gpu_pcie_gen_current")[0].endswith("} 4")
    assert lines_of(text, "all_smi_gpu_pcie_width_current")[0].endswith("} 16")
    assert lines_of(text, "all_smi_gpu_clock_graphics_max_mhz")[0].endswith("} 1410")
    assert lines_of(text, "all_smi_gpu_power_limit_max_watts")[0].endswith("} 400.5")
    assert lines_of(text, "all_smi_gpu_performance_state")[0].endswith("} 2")
    assert lines_of(text, "all_smi_gpu_fan_speed_rpm")[0].endswith("} 1450")
    assert "all_smi_gpu_clock_memory_max_mhz" not in text


@pytest.mark.parametrize(
    ("fan", "expected"),
    [("1600 RPM (40%)", "1600"), ("40%", None), ("12.5 RPM", None), ("200000 RPM", None)],
)
def test_fan_speed_from_detail_text(fan: str, expected: str | None) -> None:
    text = render_metrics(make_snapshot(gpus=[make_gpu(detail={"Fan Speed": fan})]))
    got = lines_of(text, "all_smi_gpu_fan_speed_rpm")
    assert [line.rsplit(" ", 1)[1] for line in got] == ([expected] if expected else [])


def test_typed_fields_win_over_detail() -> None:
    gpu = make_gpu(performance_state=8, fan_speed_rpm=900, detail={"performance_state": "P2"})
    text = render_metrics(make_snapshot(gpus=[gpu]))
    assert lines_of(text, "all_smi_gpu_performance_state")[0].endswith("} 8")
    assert lines_of(text, "all_smi_gpu_fan_speed_rpm")[0].endswith("} 900")


def test_apple_families_only_for_apple_rows() -> None:
    apple = make_gpu(
        "Apple M2 Max GPU",
        ane_utilization=1500.0,
        detail={"thermal_pressure": "Nominal", "combined_power_mw": "12500"},
    )
    text = render_metrics(make_snapshot(gpus=[apple, make_gpu("A100")]))
    assert [line.rsplit(" ", 1)[1] for line in lines_of(text, "all_smi_ane_power_watts")] == ["1.5"]
    assert 'level="Nominal"' in lines_of(text, "all_smi_thermal_pressure_info")[0]
    assert lines_of(text, "all_smi_combined_power_watts")[0].endswith("} 12.5")
    assert len(lines_of(text, "all_smi_ane_utilization")) == 2  # 0 mW on non-Apple rows


def test_hardware_detail_families() -> None:
    text = render_metrics(full_snapshot())
    links = lines_of(text, "all_smi_nvlink_remote_device_type")
    assert links[0].endswith(
        'gpu_index="0", link_index="0", remote_type="switch", bandwidth_mb_s="25781"} 1'
    )
    assert links[1].endswith('gpu_index="0", link_index="1", remote_type="gpu"} 1')
    assert lines_of(text, "all_smi_gpu_numa_node_id")[7].endswith('gpu_index="7"} 1')
    assert lines_of(text, "all_smi_gpu_sm_occupancy")[0].endswith("} 0.67")
    assert 'version="550.54.15"' in lines_of(text, "all_smi_gpu_gsp_firmware_version_info")[0]
    assert len(lines_of(text, "all_smi_gpu_temperature_threshold_acoustic_celsius")) == 4
    assert "all_smi_gpu_numa_node_id" not in render_metrics(make_snapshot())


def test_cpu_families_with_sockets_cores_and_apple_clusters() -> None:
    cpu = make_cpu(
        platform_type={"Other": 'RISC-V "x"'},
        per_socket_info=[CpuSocketInfo(socket_id=1, utilization=33.5, cores=4, threads=8)],
        per_core_utilization=[
            CoreUtilization(core_id=0, core_type="Performance", utilization=90.0),
            CoreUtilization(core_id=1, core_type="Efficiency", utilization=10.0),
            CoreUtilization(core_id=2, core_type="Super", utilization=50.0),
            CoreUtilization(core_id=3, utilization=5.0),
        ],
        apple_silicon_info=AppleSiliconCpuInfo(
            p_core_count=8, e_core_count=4, gpu_core_count=38, p_cluster_frequency_mhz=3500
        ),
    )
    text = render_metrics(make_snapshot(cpus=[cpu]))
    assert 'platform_type="Other(\\"RISC-V \\\\\\"x\\\\\\"\\")"' in text
    assert lines_of(text, "all_smi_cpu_socket_utilization") == [
        'all_smi_cpu_socket_utilization{cpu_model="Mock CPU", instance="mockhost:9090", '
        'hostname="mockhost", cpu_index="0", socket_id="1"} 33.5'
    ]
    assert "all_smi_cpu_socket_temperature_celsius" not in text
    types = [
        re.search(r'core_type="(\w)"', line)[1]
        for line in lines_of(text, "all_smi_cpu_core_utilization")
    ]  # type: ignore[index]
    assert types == ["P", "E", "S", "C"]
    assert lines_of(text, "all_smi_cpu_p_cluster_frequency_mhz")[0].endswith("} 3500")
    assert "all_smi_cpu_s_core_count" not in text
    assert "all_smi_cpu_e_cluster_frequency_mhz" not in text
    assert list(text_string_to_metric_families(text))


def test_disk_and_chassis_labels() -> None:
    text = render_metrics(full_snapshot())
    assert lines_of(text, "all_smi_disk_total_bytes")[1] == (
        'all_smi_disk_total_bytes{instance="mockhost", mount_point="/data", index="1"} 2199023255552'
    )
    assert lines_of(text, "all_smi_chassis_info") == [
        'all_smi_chassis_info{hostname="mockhost", instance="mockhost", product_name="SYS-821GE", '
        'vendor="Supermicro", platform="Linux"} 1'
    ]
    assert lines_of(text, "all_smi_chassis_fan_speed_rpm")[3] == (
        'all_smi_chassis_fan_speed_rpm{hostname="mockhost", instance="mockhost", fan_id="3", '
        'fan_name="FAN3"} 4003'
    )


# -- NPUs --------------------------------------------------------------------------------


def test_npu_common_and_vendor_families() -> None:
    gaudi = make_gpu(
        "Intel Gaudi 3",
        device_type="NPU",
        utilization=40.0,
        power_consumption=300.0,
        detail={
            "firmware": "1.18.0",
            "lib_version": "1.18.0-fw-51.2.0",
            "Internal Name": "HL-325L",
            "power_limit_max": "600",
            "temperature": "45",
        },
    )
    tenstorrent = make_gpu(
        "Tenstorrent Wormhole n300",
        device_type="NPU",
        detail={
            "firmware": "80.10.0.0",
            "arc_fw_version": "2.24.0",
            "asic_temperature": "52.5",
            "aiclk_mhz": "1000",
            "heartbeat": "12345",
            "ddr_status": "0x55",
            "faults": "zz",
            "eth_status0": "0x11",
            "board_type": "n300",
            "board_id": "0100014511",
            "pcie_link_gen": "Gen4",
            "pcie_link_width": "x16",
        },
    )
    text = render_metrics(make_snapshot(gpus=[make_gpu("A100"), gaudi, tenstorrent]))
    # Label values sanitized as all-smi's CommonNpuExporter does: [A-Za-z0-9_.-] only.
    assert lines_of(text, "all_smi_npu_firmware_info")[0] == (
        'all_smi_npu_firmware_info{npu="Intel_Gaudi_3", instance="mockhost_9090", '
        'npu_uuid="GPU-Intel_Gaudi_3-UUID", npu_index="1", firmware="1.18.0"} 1'
    )
    # Defined by all-smi's common NPU exporter, called by no vendor path: never emitted.
    for family in ("device_info", "temperature_celsius", "power_watts", "power_draw_watts"):
        assert f"all_smi_npu_{family}" not in text
    assert lines_of(text, "all_smi_gaudi_power_utilization_percent")[0].endswith("} 50")
    assert 'internal_name="HL-325L"' in lines_of(text, "all_smi_gaudi_internal_name_info")[0]
    assert lines_of(text, "all_smi_gaudi_memory_utilization_percent")[0].endswith("} 12.5")
    assert lines_of(text, "all_smi_tenstorrent_asic_temperature_celsius")[0].endswith("} 52.5")
    assert lines_of(text, "all_smi_tenstorrent_ddr_status")[0].endswith("} 85")
    assert "all_smi_tenstorrent_faults" not in text
    assert 'architecture="wormhole"' in lines_of(text, "all_smi_tenstorrent_board_info")[0]
    assert lines_of(text, "all_smi_tenstorrent_pcie_generation")[0].endswith("} 4")
    assert "# TYPE all_smi_tenstorrent_heartbeat counter" in text
    # NPU rows are GPU rows too, with their position in the full list.
    assert 'gpu_index="2", type="NPU"' in lines_of(text, "all_smi_gpu_info")[2]
    assert list(text_string_to_metric_families(text))
