"""ProcessReader: GPU pids enriched from a captured /proc."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from smicast.include import Section
from smicast.readers import GpuProcess, GpuReader
from smicast.readers.processes import ProcessReader, sees_host_pids
from smicast.schema import GpuInfo, ProcessInfo
from tests.fakes import make_process
from tests.reader_contract import check_reader

DATA = Path(__file__).parent / "data" / "linux"
BOOT_S = 1776686000  # btime in the captured /proc/stat
NOW_S = BOOT_S + 8000.0
MEM_TOTAL = 197581844 * 1024
GIB = 1 << 30


class FakeGpuReader:
    """A GPU reader that lists fixed processes; its own read() is not what is tested here."""

    name = "fake-gpu"
    section = Section.GPU

    def __init__(self, processes: Sequence[GpuProcess]) -> None:
        self.processes = list(processes)

    def read(self) -> Sequence[GpuInfo]:
        return []

    def read_processes(self) -> Sequence[GpuProcess]:
        return list(self.processes)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 500.0

    def __call__(self) -> float:
        return self.now_s


SIMULATED = make_process(
    pid=31337, device_id=9, device_uuid="SIM", used_memory=1, gpu_utilization=1.0
)
LISTING = [
    GpuProcess(
        device_id=0, device_uuid="GPU-0", pid=4242, used_memory=8 * GIB, gpu_utilization=75.0
    ),
    GpuProcess(
        device_id=1, device_uuid="GPU-1", pid=4242, used_memory=6 * GIB, gpu_utilization=60.0
    ),
    GpuProcess(
        device_id=1, device_uuid="GPU-1", pid=5151, used_memory=2 * GIB, gpu_utilization=0.0
    ),
    GpuProcess(device_id=0, device_uuid="GPU-0", pid=777, used_memory=0),
    GpuProcess(device_id=0, device_uuid="GPU-0", pid=99999, used_memory=GIB),  # gone from /proc
    GpuProcess(device_id=1, device_uuid="GPU-1", pid=31337, used_memory=3 * GIB, info=SIMULATED),
]


def make_reader(
    procfs: Path, monotonic: FakeMonotonic | None = None, listing: Sequence[GpuProcess] = LISTING
) -> ProcessReader:
    gpu = FakeGpuReader(listing)
    assert isinstance(gpu, GpuReader)
    return ProcessReader(
        [gpu],
        procfs,
        hostname="gpu-node-1",
        clock=lambda: NOW_S,
        monotonic=monotonic or FakeMonotonic(),
        users=lambda uid: {1000: "alice"}.get(uid, f"uid-{uid}"),
        clock_ticks=100,
        page_size=4096,
    )


def test_contract_and_enriched_fields() -> None:
    reader = make_reader(DATA / "intel-2s" / "proc")
    assert reader.name == "processes" and reader.section is Section.PROCESS
    items = check_reader(reader, reads=1)[0]
    assert [(p.pid, p.device_id) for p in items if isinstance(p, ProcessInfo)] == [
        (4242, 0),
        (4242, 1),
        (5151, 1),
        (777, 0),
        (99999, 0),
        (31337, 1),
    ]  # 99999 has no /proc entry: kept with what the GPU reader knows
    unseen = items[4]
    assert isinstance(unseen, ProcessInfo)
    assert (unseen.process_name, unseen.command, unseen.user) == ("", "", "")
    # all-smi's ProcessInfo has plain f64 here and writes 0.0; null would fail its parser.
    assert (unseen.cpu_percent, unseen.memory_percent) == (0.0, 0.0)
    assert unseen.used_memory > 0 and unseen.uses_gpu
    python = items[0]
    assert python == ProcessInfo(
        device_id=0,
        device_uuid="GPU-0",
        pid=4242,
        process_name="python3",
        used_memory=8 * GIB,
        cpu_percent=pytest.approx(5.0),  # 150 s of CPU over the 3000 s since it started
        memory_percent=pytest.approx(GIB * 100 / MEM_TOTAL),
        memory_rss=262144 * 4096,
        memory_vms=34359738368,
        user="alice",
        state="S",
        start_time=str(BOOT_S + 5000),
        cpu_time=150,
        command="python3 train.py --epochs 10",
        ppid=4200,
        threads=24,
        uses_gpu=True,
        priority=20,
        nice_value=0,
        gpu_utilization=75.0,
    )
    second_gpu = items[1]
    assert isinstance(second_gpu, ProcessInfo)
    assert (second_gpu.device_uuid, second_gpu.used_memory, second_gpu.gpu_utilization) == (
        "GPU-1",
        6 * GIB,
        60.0,
    )
    assert second_gpu.cpu_percent == python.cpu_percent  # one sample per pid, not per GPU


def test_comm_with_spaces_and_parentheses() -> None:
    items = make_reader(DATA / "intel-2s" / "proc").read()
    vllm = next(p for p in items if p.pid == 5151)
    assert vllm.process_name == "vllm (worker) 1"
    assert vllm.state == "R" and vllm.ppid == 4242 and vllm.threads == 8
    assert (vllm.priority, vllm.nice_value) == (15, -5)
    assert vllm.command == "python3 -m vllm.entrypoints.openai.api_server --model /models/Llama 3"
    assert vllm.user == "uid-4000123"  # real uid from the Uid: line, through the user table
    assert vllm.cpu_percent == pytest.approx(0.3)
    assert vllm.gpu_utilization == 0.0


def test_zombie_without_cmdline() -> None:
    items = make_reader(DATA / "intel-2s" / "proc").read()
    zombie = next(p for p in items if p.pid == 777)
    assert zombie.command == "[torchrun]"
    assert zombie.state == "Z" and zombie.memory_rss == 0 and zombie.memory_percent == 0.0


def test_unknown_uid_is_shown_as_its_number() -> None:
    reader = ProcessReader(
        [FakeGpuReader(LISTING[2:3])], DATA / "intel-2s" / "proc", clock_ticks=100, page_size=4096
    )
    [vllm] = reader.read()
    assert vllm.user == "4000123"


def test_simulated_info_passes_through_with_the_gpu_fields() -> None:
    items = make_reader(DATA / "intel-2s" / "proc").read()
    simulated = items[-1]
    assert simulated.process_name == SIMULATED.process_name
    assert simulated.command == SIMULATED.command
    assert (simulated.device_id, simulated.device_uuid) == (1, "GPU-1")
    assert (simulated.used_memory, simulated.gpu_utilization) == (3 * GIB, 0.0)


def test_cpu_percent_between_reads_and_history_is_bounded(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(DATA / "intel-2s" / "proc", proc)
    monotonic = FakeMonotonic()
    gpu = FakeGpuReader(LISTING[:1])
    reader = ProcessReader(
        [gpu], proc, clock=lambda: NOW_S, monotonic=monotonic, clock_ticks=100, page_size=4096
    )
    reader.read()
    stat = proc / "4242" / "stat"
    fields = stat.read_text().split(" ")
    fields[13], fields[14] = str(int(fields[13]) + 240), str(int(fields[14]) + 60)  # utime, stime
    stat.write_text(" ".join(fields))
    monotonic.now_s += 10.0
    [python] = reader.read()
    assert python.cpu_percent == pytest.approx(30.0)  # 3 s of CPU in 10 s
    assert python.cpu_time == 153

    gpu.processes = []
    assert reader.read() == []
    gpu.processes = LISTING[:1]
    monotonic.now_s += 10.0
    [again] = reader.read()  # forgotten: back to the average since start
    assert again.cpu_percent == pytest.approx(153 * 100 / 3000)


def proc_in_namespace(tmp_path: Path, namespace: str) -> Path:
    proc = tmp_path / "proc"
    shutil.copytree(DATA / "intel-2s" / "proc", proc)
    (proc / "self" / "ns").mkdir()
    (proc / "self" / "ns" / "pid").symlink_to(namespace)  # what readlink shows
    return proc


def test_in_a_container_pid_namespace_host_pids_are_not_described(tmp_path: Path) -> None:
    # NVML gives host pids; this /proc's 4242 and 5151 are unrelated local processes.
    proc = proc_in_namespace(tmp_path, "pid:[4026532561]")
    items = make_reader(proc).read()
    assert [(p.pid, p.device_id, p.used_memory) for p in items[:3]] == [
        (4242, 0, 8 * GIB),
        (4242, 1, 6 * GIB),
        (5151, 1, 2 * GIB),
    ]
    for item in items[:5]:
        assert (item.process_name, item.command, item.user, item.state) == ("", "", "", "")
        assert item.uses_gpu and item.ppid == 0
    assert items[5].process_name == SIMULATED.process_name  # simulated: passed through


def test_in_the_host_pid_namespace_containerized_processes_are_described(
    tmp_path: Path,
) -> None:
    proc = proc_in_namespace(tmp_path, "pid:[4026531836]")
    status = proc / "4242" / "status"
    status.write_text(status.read_text().replace("NSpid:\t4242", "NSpid:\t4242\t17"))
    items = make_reader(proc).read()
    assert (items[0].process_name, items[0].user) == ("python3", "alice")
    # An entry whose outermost pid is not the one asked for is not that process.
    status.write_text(status.read_text().replace("NSpid:\t4242\t17", "NSpid:\t17"))
    described = make_reader(proc).read()
    assert (described[0].pid, described[0].process_name) == (4242, "")
    assert described[2].process_name == "vllm (worker) 1"


def test_this_machine() -> None:
    me = os.getpid()
    gpu = FakeGpuReader([GpuProcess(device_id=0, device_uuid="GPU-X", pid=me, used_memory=GIB)])
    [first, second] = check_reader(ProcessReader([gpu]))
    for items in (first, second):
        [mine] = items
        assert isinstance(mine, ProcessInfo)
        if not sees_host_pids(Path("/proc")):
            # A container with its own PID namespace: a GPU pid is the host's, so the
            # local entry with that number is not described.
            assert (mine.pid, mine.command, mine.used_memory) == (me, "", GIB)
            continue
        assert mine.pid == me and mine.ppid == os.getppid()
        assert mine.memory_rss > 0 and mine.threads >= 1
        assert mine.cpu_percent is not None and mine.cpu_percent >= 0.0
        assert int(mine.start_time) > 0
        assert mine.command
