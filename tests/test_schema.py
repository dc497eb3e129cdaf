"""Schema 1: the field names of the reference, a golden file, and frames all-smi writes.

Regenerate the golden files after a deliberate change of the wire shape with
`SMICAST_REGEN_GOLDEN=1 pytest tests/test_schema.py`, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest
from msgspec import UNSET

from smicast.encode import decode_snapshot, snapshot_json
from smicast.schema import (
    GPU_METRIC_UNAVAILABLE,
    SCHEMA_VERSION,
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
    local_time_text,
    utc_timestamp,
)
from tests.fakes import make_cpu, make_gpu, make_process, make_snapshot

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
REGEN = os.environ.get("SMICAST_REGEN_GOLDEN") == "1"
HOST = "nöde-東京"  # non-ASCII on purpose: the wire carries raw UTF-8

# Transcribed from the reference (§2.1 to §2.7), independently of schema.py.
REFERENCE_FIELDS: dict[type, set[str]] = {
    Snapshot: {
        "schema",
        "timestamp",
        "hostname",
        "gpus",
        "cpus",
        "memory",
        "chassis",
        "processes",
        "storage",
        "errors",
    },
    GpuInfo: {
        "uuid",
        "time",
        "name",
        "device_type",
        "host_id",
        "hostname",
        "instance",
        "utilization",
        "ane_utilization",
        "dla_utilization",
        "tensorcore_utilization",
        "temperature",
        "used_memory",
        "total_memory",
        "frequency",
        "power_consumption",
        "gpu_core_count",
        "temperature_threshold_slowdown",
        "temperature_threshold_shutdown",
        "temperature_threshold_max_operating",
        "temperature_threshold_acoustic",
        "performance_state",
        "fan_speed_rpm",
        "numa_node_id",
        "gsp_firmware_mode",
        "gsp_firmware_version",
        "nvlink_remote_devices",
        "gpm_metrics",
        "detail",
    },
    NvLinkRemoteDevice: {"link_index", "remote_type", "bandwidth_mb_s"},
    GpmMetrics: {"sm_occupancy", "memory_bandwidth_utilization"},
    CpuInfo: {
        "index",
        "host_id",
        "hostname",
        "instance",
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
        "temperature",
        "power_consumption",
        "per_socket_info",
        "apple_silicon_info",
        "per_core_utilization",
        "time",
    },
    CpuSocketInfo: {"socket_id", "utilization", "cores", "threads", "temperature", "frequency_mhz"},
    AppleSiliconCpuInfo: {
        "s_core_count",
        "p_core_count",
        "e_core_count",
        "gpu_core_count",
        "s_core_utilization",
        "p_core_utilization",
        "e_core_utilization",
        "ane_ops_per_second",
        "s_cluster_frequency_mhz",
        "p_cluster_frequency_mhz",
        "e_cluster_frequency_mhz",
        "s_core_l2_cache_mb",
        "p_core_l2_cache_mb",
        "e_core_l2_cache_mb",
    },
    CoreUtilization: {"core_id", "core_type", "utilization"},
    MemoryInfo: {
        "index",
        "host_id",
        "hostname",
        "instance",
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
    },
    ChassisInfo: {
        "host_id",
        "hostname",
        "instance",
        "total_power_watts",
        "inlet_temperature",
        "outlet_temperature",
        "thermal_pressure",
        "fan_speeds",
        "psu_status",
        "detail",
        "time",
    },
    FanInfo: {"id", "name", "speed_rpm", "max_rpm"},
    PsuInfo: {"id", "name", "status", "power_watts"},
    ProcessInfo: {
        "device_id",
        "device_uuid",
        "pid",
        "process_name",
        "used_memory",
        "cpu_percent",
        "memory_percent",
        "memory_rss",
        "memory_vms",
        "user",
        "state",
        "start_time",
        "cpu_time",
        "command",
        "ppid",
        "threads",
        "uses_gpu",
        "priority",
        "nice_value",
        "gpu_utilization",
    },
    StorageInfo: {"mount_point", "total_bytes", "available_bytes", "host_id", "hostname", "index"},
    ReaderError: {"kind", "message", "section"},
}


def full_snapshot() -> Snapshot:
    """Every section and every nested shape, with values chosen to exercise the encoder."""
    gpu = make_gpu(
        "H100",
        hostname=HOST,
        temperature_threshold_slowdown=87,
        temperature_threshold_shutdown=92,
        temperature_threshold_max_operating=85,
        performance_state=0,
        fan_speed_rpm=1450,
        pcie_link_generation=5,
        pcie_link_width=16,
        numa_node_id=0,
        gsp_firmware_mode=1,
        gsp_firmware_version="570.124.06",
        nvlink_remote_devices=[
            NvLinkRemoteDevice(link_index=0, remote_type="switch", bandwidth_mb_s=50_000),
            NvLinkRemoteDevice(link_index=1, remote_type="gpu"),
        ],
        gpm_metrics=GpmMetrics(sm_occupancy=0.5, memory_bandwidth_utilization=None),
        detail={"Driver Version": "570.124.06", "CUDA Version": "12.8", "Brand": "Nvidia"},
    )
    cpu = make_cpu(
        hostname=HOST,
        platform_type={"Other": "riscv64"},
        base_frequency_mhz=2300,
        max_frequency_mhz=3500,
        cache_size_mb=32,
        per_socket_info=[
            CpuSocketInfo(
                socket_id=0,
                utilization=25.0,
                cores=8,
                threads=16,
                temperature=55,
                frequency_mhz=2300,
            )
        ],
        per_core_utilization=[
            CoreUtilization(core_id=0, utilization=80.0),
            CoreUtilization(core_id=1, core_type="Performance", utilization=0.25),
        ],
    )
    memory = MemoryInfo(
        host_id=HOST,
        hostname=HOST,
        instance=HOST,
        total_bytes=32 << 30,
        used_bytes=8 << 30,
        available_bytes=24 << 30,
        free_bytes=20 << 30,
        buffers_bytes=1 << 30,
        cached_bytes=3 << 30,
        swap_total_bytes=4 << 30,
        swap_used_bytes=0,
        swap_free_bytes=4 << 30,
        utilization=25.0,
        time="2026-04-20 12:00:00",
    )
    chassis = ChassisInfo(
        host_id=HOST,
        hostname=HOST,
        instance=HOST,
        total_power_watts=1200.5,
        inlet_temperature=22.0,
        fan_speeds=[FanInfo(id=1, name="fan1", speed_rpm=5200, max_rpm=12000)],
        psu_status=[
            PsuInfo(id=0, name="PSU0", status="Ok", power_watts=600.0),
            PsuInfo(id=1, name="PSU1", status="NotPresent"),
        ],
        detail={"Product Name": "Mock Server", "Vendor": "Mock Inc.", "platform": "Linux"},
        time="2026-04-20 12:00:00",
    )
    storage = StorageInfo(
        mount_point="/",
        total_bytes=500 << 30,
        available_bytes=100 << 30,
        host_id=HOST,
        hostname=HOST,
        index=0,
    )
    error = ReaderError(kind="timeout", message="reader exceeded timeout of 5000 ms", section="gpu")
    return make_snapshot(
        hostname=HOST,
        gpus=[gpu, make_gpu("A100", hostname=HOST, utilization=GPU_METRIC_UNAVAILABLE)],
        cpus=[cpu],
        memory=[memory],
        chassis=[chassis],
        processes=[make_process(device_uuid="GPU-H100-UUID", user="jürgen")],
        storage=[storage],
        errors=[error],
    )


def _check_golden(name: str, data: bytes) -> None:
    path = GOLDEN_DIR / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"missing {path}; run with SMICAST_REGEN_GOLDEN=1 to create it"
    assert data == path.read_bytes(), f"{name} differs from the golden file"


def _keys_in_order(data: bytes) -> list[list[str]]:
    """The key order of every object, as it appears in the bytes."""
    seen: list[list[str]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen.append([k for k, _ in pairs])
        return dict(pairs)

    json.loads(data, object_pairs_hook=hook)
    return seen


# smicast's additions: the live PCIe link (all-smi freezes it in `detail` at start).
# all-smi's serde types ignore unknown keys, so its parsers read these frames unchanged.
SMICAST_EXTENSIONS: dict[type, set[str]] = {GpuInfo: {"pcie_link_generation", "pcie_link_width"}}


def wire_fields(cls: type) -> set[str]:
    return REFERENCE_FIELDS[cls] | SMICAST_EXTENSIONS.get(cls, set())


def test_schema_types_have_exactly_the_reference_fields() -> None:
    for cls in REFERENCE_FIELDS:
        expected = wire_fields(cls)
        assert set(cls.__struct_fields__) == expected, (
            cls.__name__,
            set(cls.__struct_fields__) ^ expected,
        )


def test_compact_encoding_equals_golden_file() -> None:
    _check_golden("snapshot.json", snapshot_json(full_snapshot()) + b"\n")


def test_pretty_encoding_equals_golden_file() -> None:
    _check_golden("snapshot.pretty.json", snapshot_json(full_snapshot(), pretty=True) + b"\n")


def test_golden_bytes_are_canonical_json() -> None:
    data = snapshot_json(full_snapshot())
    # Compact, sorted at every level, raw UTF-8: exactly what Python's json would write.
    canonical = json.dumps(
        json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert data == canonical.encode("utf-8")
    for keys in _keys_in_order(data):
        assert keys == sorted(keys)
    assert HOST.encode("utf-8") in data
    assert b"\\u" not in data
    assert b"\n" not in data and b": " not in data


def test_golden_covers_every_section_and_field() -> None:
    obj = json.loads(snapshot_json(full_snapshot()))
    assert list(obj) == [
        "chassis",
        "cpus",
        "errors",
        "gpus",
        "hostname",
        "memory",
        "processes",
        "schema",
        "storage",
        "timestamp",
    ]
    sections = {
        "gpus": GpuInfo,
        "cpus": CpuInfo,
        "memory": MemoryInfo,
        "chassis": ChassisInfo,
        "processes": ProcessInfo,
        "storage": StorageInfo,
        "errors": ReaderError,
    }
    for key, cls in sections.items():
        assert obj[key], key
        for item in obj[key]:
            # smicast's extensions are left out when unknown, all-smi's fields never.
            assert REFERENCE_FIELDS[cls] <= set(item) <= wire_fields(cls), key
    gpu = obj["gpus"][0]
    assert set(gpu) == wire_fields(GpuInfo)
    assert set(gpu["nvlink_remote_devices"][0]) == REFERENCE_FIELDS[NvLinkRemoteDevice]
    assert set(gpu["gpm_metrics"]) == REFERENCE_FIELDS[GpmMetrics]
    cpu = obj["cpus"][0]
    assert set(cpu["per_socket_info"][0]) == REFERENCE_FIELDS[CpuSocketInfo]
    assert set(cpu["per_core_utilization"][0]) == REFERENCE_FIELDS[CoreUtilization]
    chassis = obj["chassis"][0]
    assert set(chassis["fan_speeds"][0]) == REFERENCE_FIELDS[FanInfo]
    assert set(chassis["psu_status"][0]) == REFERENCE_FIELDS[PsuInfo]


def test_number_forms_on_the_wire() -> None:
    data = snapshot_json(full_snapshot())
    assert b'"utilization":80.0' in data  # f64 keeps its fraction
    assert b'"utilization":-1.0' in data  # finite sentinels stay as they are
    assert b'"temperature":65,' in data  # integers stay plain
    assert b'"used_memory":1073741824' in data
    assert b'"uses_gpu":true' in data
    assert b'"platform_type":{"Other":"riscv64"}' in data
    assert b'"schema":1' in data


def test_golden_file_decodes_back_to_the_same_snapshot() -> None:
    data = (GOLDEN_DIR / "snapshot.json").read_bytes()
    assert decode_snapshot(data) == full_snapshot()
    pretty = (GOLDEN_DIR / "snapshot.pretty.json").read_bytes()
    assert decode_snapshot(pretty) == full_snapshot()


def test_defaults_match_all_smi_sentinels() -> None:
    gpu = GpuInfo(
        uuid="u", time="t", name="n", device_type="GPU", host_id="h", hostname="h", instance="h"
    )
    assert gpu.utilization == -1.0 and gpu.power_consumption == -1.0
    assert gpu.ane_utilization == 0.0
    assert gpu.temperature == 0 and gpu.frequency == 0
    assert gpu.gpm_metrics is None and gpu.nvlink_remote_devices == [] and gpu.detail == {}
    snap = Snapshot(timestamp="2026-04-20T12:00:00Z", hostname="h")
    assert snap.schema == SCHEMA_VERSION == 1
    assert snap.device_count() == 0


def test_device_count_sums_present_sections() -> None:
    assert full_snapshot().device_count() == 2 + 1 + 1 + 1 + 1 + 1
    assert make_snapshot(gpus=[], cpus=UNSET, memory=[], chassis=UNSET).device_count() == 0


def test_timestamps() -> None:
    assert utc_timestamp(1_776_686_400.0) == "2026-04-20T12:00:00Z"
    assert utc_timestamp(1_776_686_400.999) == "2026-04-20T12:00:00Z"  # seconds precision
    text = local_time_text(1_776_686_400.0)
    assert len(text) == 19 and text[4] == "-" and text[10] == " " and text[13] == ":"


# A frame as all-smi writes it: serde_json, sorted keys, every field present.
ALL_SMI_FRAME = (
    '{"chassis":[{"detail":{"Product Name":"PowerEdge XE9680","Vendor":"Dell Inc.",'
    '"platform":"Linux"},"fan_speeds":[{"id":1,"max_rpm":0,"name":"Fan1","speed_rpm":7800}],'
    '"host_id":"gpu-01","hostname":"gpu-01","inlet_temperature":null,"instance":"gpu-01",'
    '"outlet_temperature":null,"psu_status":[],"thermal_pressure":null,'
    '"time":"2026-04-20 14:00:00","total_power_watts":2800.0}],'
    '"cpus":[{"apple_silicon_info":null,"architecture":"riscv64","base_frequency_mhz":0,'
    '"cache_size_mb":0,"cpu_model":"SiFive U74","host_id":"gpu-01","hostname":"gpu-01",'
    '"index":0,"instance":"gpu-01","max_frequency_mhz":1500,'
    '"per_core_utilization":[{"core_id":0,"core_type":"Standard","utilization":12.5}],'
    '"per_socket_info":[{"cores":4,"frequency_mhz":1500,"socket_id":0,"temperature":null,'
    '"threads":4,"utilization":12.5}],"platform_type":{"Other":"x"},"power_consumption":null,'
    '"socket_count":1,"temperature":48,"time":"2026-04-20 14:00:00","total_cores":4,'
    '"total_threads":4,"utilization":12.5}],'
    '"errors":[{"kind":"panic","message":"task 7 panicked","section":"storage"}],'
    '"gpus":[{"ane_utilization":0.0,"detail":{"CUDA Version":"12.8"},"device_type":"GPU",'
    '"dla_utilization":null,"fan_speed_rpm":null,"frequency":1980,"gpm_metrics":null,'
    '"gpu_core_count":null,"gsp_firmware_mode":null,"gsp_firmware_version":null,'
    '"host_id":"gpu-01","hostname":"gpu-01","instance":"gpu-01","name":"NVIDIA H100 80GB HBM3",'
    '"numa_node_id":null,"nvlink_remote_devices":[{"bandwidth_mb_s":null,"link_index":0,'
    '"remote_type":"unknown"}],"performance_state":0,"power_consumption":null,'
    '"temperature":61,"temperature_threshold_acoustic":null,'
    '"temperature_threshold_max_operating":null,"temperature_threshold_shutdown":null,'
    '"temperature_threshold_slowdown":null,"tensorcore_utilization":null,'
    '"time":"2026-04-20 14:00:00","total_memory":85899345920,"used_memory":1048576,'
    '"utilization":null,"uuid":"GPU-1"}],"hostname":"gpu-01",'
    '"memory":[{"available_bytes":3,"buffers_bytes":0,"cached_bytes":0,"free_bytes":3,'
    '"host_id":"gpu-01","hostname":"gpu-01","index":0,"instance":"gpu-01","swap_free_bytes":0,'
    '"swap_total_bytes":0,"swap_used_bytes":0,"time":"2026-04-20 14:00:00","total_bytes":4,'
    '"used_bytes":1,"utilization":25.0}],'
    '"processes":[{"command":"python serve.py","cpu_percent":3.5,"cpu_time":12,'
    '"device_id":0,"device_uuid":"GPU-1","gpu_utilization":0.0,"memory_percent":0.1,'
    '"memory_rss":1024,"memory_vms":4096,"nice_value":-5,"pid":77,"ppid":1,"priority":15,'
    '"process_name":"python","start_time":"1776693600","state":"S","threads":3,"used_memory":512,'
    '"user":"bob","uses_gpu":true}],"schema":1,'
    '"storage":[{"available_bytes":10,"host_id":"gpu-01","hostname":"gpu-01","index":0,'
    '"mount_point":"/","total_bytes":20}],"timestamp":"2026-04-20T14:00:00Z"}\n'
)


def test_decodes_a_frame_written_by_all_smi() -> None:
    snap = decode_snapshot(ALL_SMI_FRAME)
    assert snap.schema == 1 and snap.hostname == "gpu-01"
    assert snap.timestamp == "2026-04-20T14:00:00Z"
    assert isinstance(snap.gpus, list) and isinstance(snap.cpus, list)
    gpu = snap.gpus[0]
    assert gpu.utilization is None and gpu.power_consumption is None  # NaN became null
    assert gpu.nvlink_remote_devices == [NvLinkRemoteDevice(link_index=0, remote_type="unknown")]
    assert snap.cpus[0].platform_type == {"Other": "x"}
    assert isinstance(snap.processes, list) and snap.processes[0].nice_value == -5
    assert isinstance(snap.chassis, list) and snap.chassis[0].fan_speeds[0].speed_rpm == 7800
    assert snap.errors == [ReaderError(kind="panic", message="task 7 panicked", section="storage")]
    assert snap.device_count() == 6
    # Our encoding of it is the same bytes all-smi wrote (keys sorted, numbers alike).
    assert snapshot_json(snap) + b"\n" == ALL_SMI_FRAME.encode("utf-8")


def test_decodes_a_minimal_frame_with_defaults() -> None:
    snap = decode_snapshot('{"schema":1,"timestamp":"2026-04-20T14:00:00Z","hostname":"h"}')
    assert snap.gpus is UNSET and snap.errors is UNSET
    # `index` has a serde default in all-smi: frames without it still decode.
    frame = json.loads(ALL_SMI_FRAME)
    del frame["cpus"][0]["index"], frame["memory"][0]["index"]
    snap = decode_snapshot(json.dumps(frame))
    assert isinstance(snap.cpus, list) and snap.cpus[0].index == 0


def test_unknown_fields_are_ignored() -> None:
    frame = json.loads(ALL_SMI_FRAME)
    frame["future_section"] = [{"x": 1}]
    frame["gpus"][0]["future_field"] = {"nested": [1, 2]}
    frame["cpus"][0]["per_core_utilization"][0]["extra"] = True
    snap = decode_snapshot(json.dumps(frame))
    assert snap == decode_snapshot(ALL_SMI_FRAME)


@pytest.mark.parametrize("missing", ["timestamp", "hostname"])
def test_top_level_identity_is_required(missing: str) -> None:
    frame = json.loads(ALL_SMI_FRAME)
    del frame[missing]
    with pytest.raises(msgspec.ValidationError):
        decode_snapshot(json.dumps(frame))


def test_process_fields_are_all_required_on_input() -> None:
    frame = json.loads(ALL_SMI_FRAME)
    del frame["processes"][0]["user"]
    with pytest.raises(msgspec.ValidationError):
        decode_snapshot(json.dumps(frame))
