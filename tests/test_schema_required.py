"""No null where all-smi's types require a value, from any reader or code path.

`REQUIRED` (smicast.schema_required) lists what all-smi declares non-optional;
these tests check the list against all-smi's Option fields and run the guard over
every reader (simulated platforms, FakeNvml with failing calls, the captured AMD and
/proc trees with sensors removed), a collected Snapshot and a recorded trace read back.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import msgspec
import pytest

from smicast.collect import Collector
from smicast.encode import decode_snapshot, snapshot_json
from smicast.include import Section
from smicast.readers import GpuProcess
from smicast.readers.amd import AmdReader
from smicast.readers.chassis import ChassisReader
from smicast.readers.cpu import CpuReader
from smicast.readers.memory import MemoryReader
from smicast.readers.nvidia import NvidiaReader
from smicast.readers.processes import ProcessReader
from smicast.readers.simulated import SimulatedReader
from smicast.readers.simulated_profiles import PARTS
from smicast.record.reader import iter_frames
from smicast.record.writer import TraceWriter
from smicast.schema import GpuInfo, Snapshot
from smicast.schema_required import EXTENSIONS, REQUIRED, required_nulls
from tests.fake_nvml import FakeDevice, FakeNvml, NVMLError_NotSupported
from tests.fakes import make_gpu, make_process, make_snapshot

DATA = Path(__file__).parent / "data"
NOW = 1_776_686_400.0

# The `Option<…>` fields of all-smi's types (src/device/types.rs and friends),
# transcribed on their own: every other field of a wire type must be in REQUIRED.
ALL_SMI_OPTIONAL: dict[str, set[str]] = {
    "Snapshot": {"gpus", "cpus", "memory", "chassis", "processes", "storage"},
    "GpuInfo": {
        "dla_utilization",
        "tensorcore_utilization",
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
        "gpm_metrics",
    },
    "NvLinkRemoteDevice": {"bandwidth_mb_s"},
    "GpmMetrics": {"sm_occupancy", "memory_bandwidth_utilization"},
    "CpuInfo": {"temperature", "power_consumption", "apple_silicon_info"},
    "CpuSocketInfo": {"temperature"},
    "AppleSiliconCpuInfo": {
        "ane_ops_per_second",
        "s_cluster_frequency_mhz",
        "p_cluster_frequency_mhz",
        "e_cluster_frequency_mhz",
        "s_core_l2_cache_mb",
        "p_core_l2_cache_mb",
        "e_core_l2_cache_mb",
    },
    "ChassisInfo": {
        "total_power_watts",
        "inlet_temperature",
        "outlet_temperature",
        "thermal_pressure",
    },
    "PsuInfo": {"power_watts"},
}


def assert_no_required_nulls(snapshot_or_items: object) -> None:
    assert required_nulls(snapshot_or_items) == []


@pytest.mark.parametrize("struct", list(REQUIRED), ids=lambda t: t.__name__)
def test_every_field_is_required_or_optional_in_all_smi(struct: type[msgspec.Struct]) -> None:
    fields = set(struct.__struct_fields__)
    optional = ALL_SMI_OPTIONAL.get(struct.__name__, set())
    extensions = EXTENSIONS.get(struct, frozenset())
    assert extensions <= fields
    assert REQUIRED[struct] <= fields
    assert REQUIRED[struct].isdisjoint(optional)
    assert REQUIRED[struct] | optional | extensions == fields


def test_the_guard_finds_null_and_non_finite_numbers_in_required_fields() -> None:
    snap = make_snapshot(
        gpus=[make_gpu(utilization=math.nan, dla_utilization=math.nan)],
        processes=[make_process(cpu_percent=None, memory_percent=math.inf)],
    )
    # dla_utilization is Option<f64> in all-smi: null there is fine.
    assert required_nulls(snap) == [
        "gpus.0.utilization",
        "processes.0.cpu_percent",
        "processes.0.memory_percent",
    ]


def test_a_gpu_process_without_a_proc_entry_gets_zero_percentages() -> None:
    """The bug this guard exists for: all-smi writes 0.0, its parser rejects null."""

    class OneProcess:
        name = "nvidia"
        section = Section.GPU

        def read(self) -> list[GpuInfo]:
            return []

        def read_processes(self) -> list[GpuProcess]:
            return [GpuProcess(device_id=0, device_uuid="GPU-0", pid=99_999, used_memory=1 << 30)]

    reader = ProcessReader([OneProcess()], DATA / "linux" / "intel-2s" / "proc", clock=lambda: NOW)
    (unseen,) = reader.read()
    assert (unseen.cpu_percent, unseen.memory_percent) == (0.0, 0.0)
    assert_no_required_nulls(unseen)
    line = snapshot_json(make_snapshot(processes=[unseen]))
    assert b'"cpu_percent":0.0' in line and b"null" not in line.split(b'"processes"')[1]


@pytest.mark.parametrize("platform", sorted(PARTS))
def test_simulated_platforms(platform: str) -> None:
    reader = SimulatedReader(platform, 8, seed=3, hostname="sim", clock=lambda: NOW)
    for _ in range(50):
        assert_no_required_nulls(reader.read())
    assert_no_required_nulls([p.info for p in reader.read_processes()])


def test_nvml_with_every_reading_failing() -> None:
    nvml = FakeNvml([FakeDevice(), FakeDevice(uuid="GPU-b", memory_total=None)], cuda_version=None)
    for name in dir(nvml):
        if name.startswith("nvmlDeviceGet") and name not in (
            "nvmlDeviceGetCount",
            "nvmlDeviceGetHandleByIndex",
        ):
            nvml.fail(name, NVMLError_NotSupported)
    gpus = NvidiaReader(nvml, hostname="n").read()
    assert len(gpus) == 2
    assert_no_required_nulls(gpus)


def test_amd_tree_with_sensors_missing(tmp_path: Path) -> None:
    root = tmp_path / "amd"
    shutil.copytree(DATA / "amd", root, symlinks=True)
    for pattern in ("*_input", "*_average", "power1_cap*", "fan1_*"):
        for path in (root / "sys").rglob(pattern):
            path.unlink()
    for name in ("gpu_busy_percent", "pp_dpm_sclk", "mem_info_vram_used"):
        (root / "sys/class/drm/card0/device" / name).write_text("garbage\n")
    reader = AmdReader(root / "sys", root / "proc", hostname="n", clock=lambda: NOW)
    assert_no_required_nulls(reader.read())
    assert_no_required_nulls(ProcessReader([reader], root / "proc", clock=lambda: NOW).read())


@pytest.mark.parametrize("tree", ["intel-2s", "amd-1s", "arm-1s"])
def test_captured_host_trees(tree: str) -> None:
    root = DATA / "linux" / tree
    readers: list[CpuReader | MemoryReader | ChassisReader] = [
        CpuReader(
            root / "proc", root / "sys", hostname="n", clock=lambda: NOW, sleep=lambda _: None
        ),
        ChassisReader(root / "sys", hostname="n", clock=lambda: NOW),
    ]
    if (root / "proc" / "meminfo").exists():
        readers.append(MemoryReader(root / "proc", sysfs=root / "sys", hostname="n"))
    for reader in readers:
        for _ in range(2):
            assert_no_required_nulls(reader.read())


def test_collected_snapshot_and_a_trace_read_back(tmp_path: Path) -> None:
    gpus = SimulatedReader("nvidia", 4, seed=1, hostname="sim", clock=lambda: NOW)
    readers = [gpus, ProcessReader([gpus], DATA / "linux" / "intel-2s" / "proc")]
    collector = Collector(readers, hostname="sim", clock=lambda: NOW)
    frames = [collector.collect([Section.GPU, Section.PROCESS]) for _ in range(3)]
    for frame in frames:
        assert_no_required_nulls(frame)
        assert_no_required_nulls(decode_snapshot(snapshot_json(frame)))
    path = tmp_path / "t.ndjson"
    writer = TraceWriter(path, hosts=["sim"], interval_ms=1000)
    for frame in frames:
        writer.write(frame)
    writer.close()
    replayed: list[Snapshot] = list(iter_frames([path]))
    assert len(replayed) == 3
    for frame in replayed:
        assert_no_required_nulls(frame)
