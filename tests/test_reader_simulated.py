"""SimulatedReader: the contract, reproducibility, bounds and a plausible busy node."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from itertools import pairwise

import pytest

from smicast.include import Section
from smicast.readers import GpuReader
from smicast.readers.simulated import SimulatedReader
from smicast.readers.simulated_profiles import MIB, PARTS
from smicast.schema import GpuInfo, ProcessInfo, local_time_text
from tests.reader_contract import check_reader

PLATFORMS = ("nvidia", "amd", "gaudi", "tenstorrent")
START_S = 1_760_000_000.0


class SteppingClock:
    """Advances a fixed step on every call, as a node polled every few seconds would see."""

    def __init__(self, start_s: float = START_S, step_s: float = 3.0) -> None:
        self.now_s = start_s
        self.step_s = step_s

    def __call__(self) -> float:
        self.now_s += self.step_s
        return self.now_s


def make_reader(platform: str = "nvidia", count: int = 8, seed: int = 0) -> SimulatedReader:
    return SimulatedReader(platform, count, seed=seed, hostname="node-0001", clock=SteppingClock())


def frames(reader: SimulatedReader, reads: int) -> list[list[GpuInfo]]:
    return [reader.read() for _ in range(reads)]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_keeps_the_reader_contract(platform: str) -> None:
    reader = make_reader(platform)
    assert isinstance(reader, GpuReader)
    assert reader.name == f"simulated-{platform}"
    assert reader.section is Section.GPU
    results = check_reader(reader, reads=3)
    assert all(len(items) == 8 for items in results)


@pytest.mark.parametrize(
    ("platform", "name", "device_type"),
    [
        ("nvidia", "NVIDIA H200 141GB HBM3", "GPU"),
        ("amd", "AMD Instinct MI300X 192GB HBM3", "GPU"),
        ("gaudi", "Intel Gaudi 3", "NPU"),
        ("tenstorrent", "Tenstorrent Wormhole n300", "NPU"),
    ],
)
def test_names_and_device_type_per_platform(platform: str, name: str, device_type: str) -> None:
    for gpu in make_reader(platform).read():
        assert (gpu.name, gpu.device_type) == (name, device_type)
        assert gpu.host_id == gpu.hostname == gpu.instance == "node-0001"
        assert gpu.fan_speed_rpm is None


def test_same_seed_gives_the_same_frames_and_another_seed_does_not() -> None:
    first, second = make_reader(seed=7), make_reader(seed=7)
    a, b = [], []
    for _ in range(60):
        a.append(first.read())
        # Looking at the processes draws nothing: the next frames stay the same.
        first.read_processes()
        b.append(second.read())
    assert a == b
    assert first.read_processes() == second.read_processes()
    assert frames(make_reader(seed=8), 60) != a


def test_time_field_follows_the_clock() -> None:
    clock = SteppingClock()
    reader = SimulatedReader("amd", 2, hostname="h", clock=clock)
    gpus = reader.read()
    assert {g.time for g in gpus} == {local_time_text(clock.now_s)}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_values_stay_in_bounds_over_many_reads(platform: str) -> None:
    part = PARTS[platform]
    previous: dict[str, float] = {}
    for gpus in frames(make_reader(platform), 500):
        for gpu in gpus:
            assert gpu.utilization is not None and gpu.power_consumption is not None
            assert 0.0 <= gpu.utilization <= 100.0
            assert abs(gpu.utilization - previous.get(gpu.uuid, gpu.utilization)) <= 6.0
            previous[gpu.uuid] = gpu.utilization
            assert 30 <= gpu.temperature <= 90
            assert part.power_min_w <= gpu.power_consumption <= part.power_max_w
            assert gpu.total_memory == part.total_memory
            assert 0.05 * gpu.total_memory - MIB <= gpu.used_memory <= 0.95 * gpu.total_memory
            if part.clock_max_mhz:
                assert part.clock_min_mhz <= gpu.frequency <= part.clock_max_mhz
            else:
                assert gpu.frequency == 0  # the vendor tool reports none
            if platform == "nvidia":
                # P8 at idle; P0, with flips to P2, under load.
                if gpu.utilization < 10.0:
                    assert gpu.performance_state == 8
                else:
                    assert gpu.performance_state in (0, 2)
            else:
                assert gpu.performance_state is None
            if platform in ("nvidia", "amd"):
                # The link runs at Gen5 under load and may train down to Gen1 at idle.
                assert gpu.pcie_link_width == 16
                if gpu.utilization >= 10.0:
                    assert gpu.pcie_link_generation == 5
                else:
                    assert gpu.pcie_link_generation in (1, 5)


def test_utilization_moves_between_reads() -> None:
    history = frames(make_reader(), 20)
    for before, after in pairwise(history):
        assert [g.utilization for g in before] != [g.utilization for g in after]
    for index in range(8):
        assert len({gpus[index].utilization for gpus in history}) > 1


def test_most_devices_busy_some_idle() -> None:
    history = frames(make_reader(count=8), 200)
    means = [statistics.fmean(g[i].utilization or 0.0 for g in history) for i in range(8)]
    assert sum(m > 50 for m in means) >= 5
    assert sum(m < 15 for m in means) >= 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_power_and_temperature_follow_utilization(platform: str) -> None:
    history = frames(make_reader(platform), 300)
    util = [g.utilization or 0.0 for gpus in history for g in gpus]
    power = [g.power_consumption or 0.0 for gpus in history for g in gpus]
    temp = [float(g.temperature) for gpus in history for g in gpus]
    assert statistics.correlation(util, power) > 0.8
    assert statistics.correlation(util, temp) > 0.7

    def mean_of(index: int, field: str) -> float:
        return statistics.fmean(float(getattr(gpus[index], field)) for gpus in history)

    busiest = max(range(8), key=lambda i: mean_of(i, "utilization"))
    idlest = min(range(8), key=lambda i: mean_of(i, "utilization"))
    coolest = min(range(8), key=lambda i: mean_of(i, "temperature"))
    assert busiest != coolest
    assert mean_of(busiest, "power_consumption") > mean_of(idlest, "power_consumption")
    assert mean_of(busiest, "temperature") > mean_of(idlest, "temperature")


@pytest.mark.parametrize("count", [1, 64])
def test_count_is_honoured(count: int) -> None:
    reader = make_reader(count=count)
    gpus = reader.read()
    assert len(gpus) == count
    assert len({g.uuid for g in gpus}) == count
    assert {p.device_id for p in reader.read_processes()} == set(range(count))
    nodes = [g.numa_node_id for g in gpus]
    assert nodes == sorted(nodes)  # the first half of the board on node 0, the rest on 1
    assert nodes.count(0) == (count + 1) // 2 and nodes.count(1) == count // 2


def test_uuids_look_like_the_vendors_and_stay_put() -> None:
    nvidia = [g.uuid for g in make_reader("nvidia", 8).read()]
    hexes = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert all(re.fullmatch(f"GPU-{hexes}", u) for u in nvidia)
    # Per (seed, platform, index): the count and the reads done do not move them.
    assert [g.uuid for g in make_reader("nvidia", 4).read()] == nvidia[:4]
    assert [g.uuid for g in frames(make_reader("nvidia", 8), 30)[-1]] == nvidia
    assert set(nvidia).isdisjoint(g.uuid for g in make_reader("nvidia", 8, seed=1).read())
    amd = [g.uuid for g in make_reader("amd", 2).read()]
    assert amd == ["GPU-0000:05:00.0", "GPU-0000:26:00.0"]  # all-smi names AMD GPUs by PCI
    for gpu in make_reader("gaudi", 2).read():
        assert re.fullmatch(r"01P4-HL3250A0-18-[0-9A-Z]{6}-\d\d-\d\d-00", gpu.uuid)
    for gpu in make_reader("tenstorrent", 2).read():
        assert re.fullmatch(r"[0-9a-f]{16}", gpu.uuid)


def test_nvidia_hardware_details() -> None:
    gpu = make_reader("nvidia", 8).read()[0]
    # Exactly the keys all-smi's NVIDIA reader writes for a PCIe (non-UMA) part.
    expected_keys = {
        "Driver Version", "CUDA Version", "lib_name", "lib_version", "Brand", "architecture",
        "compute_mode", "vbios_version", "PCIe Generation", "PCIe Width", "pcie_gen_max",
        "pcie_width_max", "clock_graphics_max", "clock_memory_max", "power_limit_current",
        "power_limit_default", "power_limit_min", "power_limit_max", "performance_state",
        "ecc_mode_current", "mig_mode_current",
    }  # fmt: skip
    assert gpu.detail.keys() == expected_keys
    assert gpu.detail["lib_name"] == "CUDA" and gpu.detail["architecture"] == "Hopper"
    assert gpu.detail["PCIe Width"] == "x16" and gpu.detail["PCIe Generation"] in ("1", "5")
    assert float(gpu.detail["power_limit_max"]) == PARTS["nvidia"].power_max_w
    assert gpu.detail["performance_state"] in ("Zero", "Two", "Eight")
    slowdown, shutdown, max_operating = (
        gpu.temperature_threshold_slowdown,
        gpu.temperature_threshold_shutdown,
        gpu.temperature_threshold_max_operating,
    )
    assert slowdown and shutdown and max_operating and max_operating < slowdown < shutdown
    assert gpu.gsp_firmware_mode == 1 and gpu.gsp_firmware_version == gpu.detail["Driver Version"]
    assert gpu.nvlink_remote_devices and {
        link.remote_type for link in gpu.nvlink_remote_devices
    } == {"switch"}
    assert gpu.gpm_metrics is not None


def test_npu_details() -> None:
    gaudi = make_reader("gaudi", 1).read()[0]
    assert gaudi.detail["Internal Name"] == "HL-325L"
    assert gaudi.detail["lib_name"] == "Habana" and gaudi.detail["firmware"]
    assert float(gaudi.detail["power_limit_max"]) == PARTS["gaudi"].power_max_w
    # Live readings stay out of `detail` (all_smi_gpu_info would churn with them).
    assert not {"Used Memory", "Free Memory", "Current Power"} & gaudi.detail.keys()
    reader = make_reader("tenstorrent", 1)
    first, second = reader.read()[0], reader.read()[0]
    assert second.detail["board_type"] == "n300" and second.detail["board_id"] == second.uuid
    assert second.detail["firmware"] and second.detail["arc_fw_version"]
    assert second.detail["aiclk_mhz"] == str(second.frequency)
    assert int(second.detail["heartbeat"]) > int(first.detail["heartbeat"])
    for npu in (gaudi, second):
        assert npu.numa_node_id is None and npu.nvlink_remote_devices == []
        assert npu.temperature_threshold_slowdown is None and npu.gpm_metrics is None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_processes_fit_inside_their_device(platform: str) -> None:
    reader = make_reader(platform)
    for _ in range(200):
        gpus = reader.read()
        procs = reader.read_processes()
        memory: dict[int, int] = defaultdict(int)
        util: dict[int, float] = defaultdict(float)
        for proc in procs:
            assert proc.device_uuid == gpus[proc.device_id].uuid
            memory[proc.device_id] += proc.used_memory
            util[proc.device_id] += proc.gpu_utilization or 0.0
        for gpu_index, gpu in enumerate(gpus):
            assert memory[gpu_index] <= gpu.used_memory
            assert util[gpu_index] <= (gpu.utilization or 0.0) + 1e-9
        per_device = [sum(p.device_id == i for p in procs) for i in range(len(gpus))]
        assert all(1 <= n <= 3 for n in per_device)
        assert len({p.pid for p in procs}) == len(procs)


def test_processes_carry_complete_plausible_info() -> None:
    reader = make_reader()
    reader.read()
    for proc in reader.read_processes():
        info = proc.info
        assert isinstance(info, ProcessInfo)
        assert (info.device_id, info.device_uuid, info.pid) == (
            proc.device_id,
            proc.device_uuid,
            proc.pid,
        )
        assert info.used_memory == proc.used_memory
        assert info.gpu_utilization == proc.gpu_utilization
        assert info.uses_gpu and info.priority == 20 and info.nice_value == 0
        assert 300 <= info.pid < 4_194_304 and info.ppid >= 1 and info.threads > 0
        assert info.process_name and info.user and info.command
        assert info.state in ("R", "S")
        assert int(info.start_time) < START_S
        assert 0 < info.memory_rss < info.memory_vms
        assert info.memory_percent is not None and 0 < info.memory_percent < 100
        assert info.cpu_percent is not None and info.cpu_percent >= 0


def test_cpu_time_grows_and_processes_come_and_go() -> None:
    reader = make_reader()
    reader.read()
    initial = {p.pid: p.info for p in reader.read_processes() if p.info}
    last_cpu_time = {pid: info.cpu_time for pid, info in initial.items()}
    newcomers: set[int] = set()
    for _ in range(500):
        reader.read()
        for proc in reader.read_processes():
            assert proc.info is not None
            assert proc.info.cpu_time >= last_cpu_time.get(proc.pid, 0)
            last_cpu_time[proc.pid] = proc.info.cpu_time
            if proc.pid not in initial:
                newcomers.add(proc.pid)
                assert int(proc.info.start_time) >= START_S  # started while we watched
    assert newcomers
    final = {p.pid: p.info for p in reader.read_processes() if p.info}
    survivors = initial.keys() & final.keys()
    assert survivors
    assert all(final[pid].cpu_time > initial[pid].cpu_time for pid in survivors)
    commands = " ".join(info.command for info in final.values())
    assert re.search(
        r"train\.py|torchrun --nproc_per_node=8|vllm serve|ipykernel|eval\.py", commands
    )


def test_rejects_unknown_platform_and_negative_count() -> None:
    with pytest.raises(ValueError, match="unknown simulated platform"):
        SimulatedReader("voodoo", 2)
    with pytest.raises(ValueError, match="negative"):
        SimulatedReader("nvidia", -1)
    assert SimulatedReader("nvidia", 0, hostname="h").read() == []
