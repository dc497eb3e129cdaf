"""CpuReader against captured /proc and /sys trees of a 2-socket Intel, a 1-socket AMD and an arm box."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smicast.include import Section
from smicast.readers import ReadError
from smicast.readers.cpu import CpuReader
from smicast.schema import CpuInfo, local_time_text
from tests.reader_contract import check_reader

DATA = Path(__file__).parent / "data" / "linux"
NOW_S = 1_776_700_000.0
RAPL_MAX_UJ = 262143328850


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def copy_tree(name: str, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / name
    shutil.copytree(DATA / name, root)
    return root / "proc", root / "sys"


def advance_stat(stat: Path, deltas: dict[int, list[int]]) -> None:
    """Add per-CPU tick deltas (user nice system idle iowait irq softirq steal guest guest_nice)."""
    lines = stat.read_text().splitlines()
    cpus = {}
    for line in lines:
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            cpu = int(name[3:])
            add = deltas.get(cpu, [0] * 10)
            cpus[cpu] = [int(v) + d for v, d in zip(values, add, strict=True)]
    total = [sum(v[i] for v in cpus.values()) for i in range(10)]
    out = ["cpu  " + " ".join(map(str, total))]
    out += [f"cpu{n} " + " ".join(map(str, v)) for n, v in sorted(cpus.items())]
    out += [line for line in lines if not line.startswith("cpu")]
    stat.write_text("\n".join(out) + "\n")


def intel_reader(tmp_path: Path, monotonic: FakeMonotonic | None = None) -> tuple[CpuReader, Path]:
    proc, sys = copy_tree("intel-2s", tmp_path)
    reader = CpuReader(
        proc,
        sys,
        hostname="gpu-node-1",
        clock=lambda: NOW_S,
        monotonic=monotonic or FakeMonotonic(),
        architecture="x86_64",
    )
    return reader, tmp_path / "intel-2s"


def test_contract_on_every_captured_tree(tmp_path: Path) -> None:
    for name in ("intel-2s", "amd-1s", "arm-1s"):
        proc, sys = copy_tree(name, tmp_path)
        reader = CpuReader(proc, sys, hostname="h", clock=lambda: NOW_S, architecture="x86_64")
        assert reader.name == "cpu" and reader.section is Section.CPU
        results = check_reader(reader)
        assert all(len(items) == 1 for items in results)


def test_intel_static_facts(tmp_path: Path) -> None:
    reader, _ = intel_reader(tmp_path)
    cpu = reader.read()[0]
    assert cpu.host_id == cpu.hostname == cpu.instance == "gpu-node-1"
    assert cpu.cpu_model == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"
    assert cpu.architecture == "x86_64"
    assert cpu.platform_type == "Intel"
    assert (cpu.socket_count, cpu.total_cores, cpu.total_threads) == (2, 8, 8)
    assert (cpu.base_frequency_mhz, cpu.max_frequency_mhz) == (2500, 3900)
    assert cpu.cache_size_mb == 27  # 28160 KB
    assert cpu.time == local_time_text(NOW_S)
    assert cpu.apple_silicon_info is None


def test_utilization_from_two_stat_samples(tmp_path: Path) -> None:
    reader, root = intel_reader(tmp_path)
    busy_75 = [60, 0, 15, 20, 5, 0, 0, 0, 10, 0]  # guest ticks are inside user: not counted twice
    advance_stat(
        root / "proc" / "stat",
        {
            0: busy_75,
            1: busy_75,
            4: busy_75,
            5: busy_75,
            2: [10, 0, 0, 90, 0, 0, 0, 0, 0, 0],
            3: [0, 0, 0, 100, 0, 0, 0, 0, 0, 0],
            6: [20, 5, 5, 70, 0, 0, 0, 0, 0, 0],
            7: [0, 0, 0, 80, 0, 0, 0, 20, 0, 0],  # stolen time is busy from the guest's view
        },
    )
    cpu = reader.read()[0]
    assert cpu.utilization == pytest.approx(45.0)  # 360 busy of 800 ticks
    per_core = {c.core_id: c.utilization for c in cpu.per_core_utilization}
    assert per_core == pytest.approx(
        {0: 75.0, 1: 75.0, 2: 10.0, 3: 0.0, 4: 75.0, 5: 75.0, 6: 30.0, 7: 20.0}
    )
    assert all(c.core_type == "Standard" for c in cpu.per_core_utilization)
    sockets = {s.socket_id: s for s in cpu.per_socket_info}
    assert sockets[0].utilization == pytest.approx(75.0)  # cpus 0, 1, 4, 5
    assert sockets[1].utilization == pytest.approx(15.0)  # cpus 2, 3, 6, 7
    assert (sockets[0].cores, sockets[0].threads) == (4, 4)


def test_idle_interval_reads_zero(tmp_path: Path) -> None:
    reader, _ = intel_reader(tmp_path)
    cpu = reader.read()[0]  # /proc/stat has not moved since the constructor sampled it
    assert cpu.utilization == 0.0
    assert {c.utilization for c in cpu.per_core_utilization} == {0.0}


def test_intel_sensors_frequency_and_power(tmp_path: Path) -> None:
    monotonic = FakeMonotonic()
    reader, root = intel_reader(tmp_path, monotonic)
    rapl = root / "sys" / "class" / "powercap"
    (rapl / "intel-rapl:0" / "energy_uj").write_text(f"{118223344556 + 100_000_000}\n")
    (rapl / "intel-rapl:1" / "energy_uj").write_text("30000000\n")  # wrapped past the range
    (rapl / "intel-rapl:0:0" / "energy_uj").write_text("999999999999\n")  # subzone: ignored
    (rapl / "intel-rapl:2" / "energy_uj").write_text("999999999999\n")  # psys: ignored
    monotonic.now_s += 2.0
    cpu = reader.read()[0]
    # 100 J on package 0 and 40 J across the wrap on package 1, over 2 s.
    assert cpu.power_consumption == pytest.approx(70.0)
    assert cpu.temperature == 61
    sockets = {s.socket_id: s for s in cpu.per_socket_info}
    assert (sockets[0].temperature, sockets[1].temperature) == (52, 61)
    assert (sockets[0].frequency_mhz, sockets[1].frequency_mhz) == (2900, 1200)


def test_rapl_unreadable_means_no_power(tmp_path: Path) -> None:
    proc, sys = copy_tree("intel-2s", tmp_path)
    for zone in (sys / "class" / "powercap").iterdir():
        shutil.rmtree(zone)
    cpu = CpuReader(proc, sys, hostname="h").read()[0]
    assert cpu.power_consumption is None


def test_amd_single_socket(tmp_path: Path) -> None:
    proc, sys = copy_tree("amd-1s", tmp_path)
    cpu = CpuReader(proc, sys, hostname="h", architecture="x86_64").read()[0]
    assert cpu.cpu_model == "AMD Ryzen 3 3200G with Radeon Vega Graphics"
    assert cpu.platform_type == "Amd"
    assert (cpu.socket_count, cpu.total_cores, cpu.total_threads) == (1, 4, 4)
    # No base_frequency file (acpi-cpufreq): the average of the cpuinfo clocks instead.
    assert (cpu.base_frequency_mhz, cpu.max_frequency_mhz) == (2500, 3600)
    assert cpu.cache_size_mb == 0  # 512 KB
    assert cpu.temperature == 45  # k10temp Tctl; the nvme and amdgpu sensors are not the CPU
    assert cpu.power_consumption is None
    [socket] = cpu.per_socket_info
    assert (socket.socket_id, socket.cores, socket.threads) == (0, 4, 4)
    assert socket.temperature == 45
    assert socket.frequency_mhz == 2500


def test_arm_without_model_name(tmp_path: Path) -> None:
    proc, sys = copy_tree("arm-1s", tmp_path)
    cpu = CpuReader(proc, sys, hostname="h", architecture="aarch64").read()[0]
    assert cpu.cpu_model == "ARM ARM Processor (Part: 0xd0c)"  # as all-smi names it
    assert cpu.platform_type == "Arm"
    assert cpu.architecture == "aarch64"
    assert (cpu.socket_count, cpu.total_cores) == (1, 4)
    assert cpu.cache_size_mb == 1  # largest sysfs cache level: 1024K
    assert cpu.temperature == 48  # cpu_thermal
    assert (cpu.base_frequency_mhz, cpu.max_frequency_mhz) == (0, 0)


def test_missing_proc_never_breaks_construction(tmp_path: Path) -> None:
    reader = CpuReader(tmp_path / "proc", tmp_path / "sys", hostname="h")
    with pytest.raises(ReadError, match="cannot read"):
        reader.read()


def test_this_machine() -> None:
    cpu = check_reader(CpuReader())[-1][0]
    assert isinstance(cpu, CpuInfo)
    assert cpu.total_cores >= 1 and cpu.socket_count >= 1
    assert cpu.utilization is not None and 0.0 <= cpu.utilization <= 100.0
    assert len(cpu.per_core_utilization) >= 1
