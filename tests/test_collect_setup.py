"""Set-up under the collector's timeout, and the error kinds: error, panic, partial reads.

The hung driver here is the real NVIDIA reader over a `FakeNvml` whose `nvmlInit`
blocks until the test releases it; timeouts are tens of milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from msgspec import UNSET

from smicast.collect import Collector
from smicast.include import Section
from smicast.readers import GpuProcess, Item, PartialReadError
from smicast.readers.registry import detect_gpu_readers
from smicast.readers.setup import DeferredGpuReader, DeferredReader
from tests.fake_nvml import FakeDevice, FakeNvml
from tests.fakes import BuggyReader, StaticReader, make_gpu, make_memory, make_process

SHORT_S = 0.05


class FakeGpuReader:
    name = "nvidia"
    section = Section.GPU

    def read(self) -> Sequence[Item]:
        return [make_gpu()]

    def read_processes(self) -> Sequence[GpuProcess]:
        return [GpuProcess(device_id=0, device_uuid="GPU-A100-UUID", pid=4242, used_memory=1)]


class StaticProcessesOf:
    """A process reader that describes every GPU process as `make_process()`."""

    name = "processes"
    section = Section.PROCESS

    def __init__(self, gpu: DeferredGpuReader) -> None:
        self._gpu = gpu

    def read(self) -> Sequence[Item]:
        return [make_process() for _ in self._gpu.read_processes()]


class HungInitNvml(FakeNvml):
    """nvmlInit blocks until `driver_back` is set: a GPU that fell off the bus."""

    def __init__(self) -> None:
        super().__init__([FakeDevice(uuid="GPU-0"), FakeDevice(uuid="GPU-1")])
        self.driver_back = threading.Event()
        self.init_calls = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1
        self.driver_back.wait()
        super().nvmlInit()


@pytest.fixture
def hung_nvml() -> Iterator[HungInitNvml]:
    nvml = HungInitNvml()
    yield nvml
    nvml.driver_back.set()


def collector_with(nvml: FakeNvml, tmp_path: Path) -> Collector:
    gpus = detect_gpu_readers(hostname="h", clock=lambda: 0.0, sysfs=tmp_path, nvml=nvml)
    memory = StaticReader(Section.MEMORY, [make_memory()], name="memory")
    return Collector([*gpus, memory], timeout_s=SHORT_S, hostname="h")


def test_building_readers_touches_no_hardware(hung_nvml: HungInitNvml, tmp_path: Path) -> None:
    readers = detect_gpu_readers(hostname="h", clock=lambda: 0.0, sysfs=tmp_path, nvml=hung_nvml)
    assert [r.name for r in readers] == ["nvidia", "amd"]
    assert hung_nvml.init_calls == 0


def test_a_hung_nvml_init_costs_a_timeout_and_the_gpus_come_back(
    hung_nvml: HungInitNvml, tmp_path: Path
) -> None:
    collector = collector_with(hung_nvml, tmp_path)
    sections = {Section.GPU, Section.MEMORY}

    first = collector.collect(sections)
    assert first.memory == [make_memory()]
    assert first.gpus is UNSET  # not `[]`: nobody knows whether there are GPUs
    assert isinstance(first.errors, list)
    [err] = first.errors
    assert (err.section, err.kind) == ("gpu", "timeout")
    assert err.message == f"reader exceeded timeout of {round(SHORT_S * 1000)} ms during set-up"

    second = collector.collect(sections)  # still stuck: not called again
    assert isinstance(second.errors, list)
    assert "still busy" in second.errors[0].message
    assert second.errors[0].message.endswith("during set-up")
    assert hung_nvml.init_calls == 1

    hung_nvml.driver_back.set()  # the driver answers: no restart needed
    for _ in range(500):  # until the workers have had their turn
        snap = collector.collect(sections)
        if snap.gpus is not UNSET:
            break
        time.sleep(0.01)
    assert isinstance(snap.gpus, list)
    assert [g.uuid for g in snap.gpus] == ["GPU-0", "GPU-1"]
    assert snap.errors is UNSET
    stats = {s.name: s for s in collector.reader_stats()}
    assert set(stats) == {"nvidia", "memory"}  # the absent AMD reader is not listed
    assert stats["nvidia"].errors["timeout"] >= 2
    assert stats["nvidia"].last_success_s is not None


def test_a_vendor_found_absent_is_no_longer_called(tmp_path: Path) -> None:
    builds: list[str] = []

    def nothing_here() -> None:
        builds.append("probe")

    reader: DeferredReader[StaticReader] = DeferredReader("amd", Section.GPU, nothing_here)
    collector = Collector([reader], timeout_s=1.0, hostname="h")
    for _ in range(3):
        assert collector.collect({Section.GPU}).gpus == []
    assert builds == ["probe"] and reader.absent
    assert collector.reader_stats() == []


def test_a_failed_set_up_is_tried_again() -> None:
    attempts: list[int] = []

    def build() -> StaticReader:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("sysfs not mounted yet")
        return StaticReader(Section.MEMORY, [make_memory()])

    collector = Collector([DeferredReader("memory", Section.MEMORY, build)], hostname="h")
    first = collector.collect({Section.MEMORY})
    assert isinstance(first.errors, list) and first.errors[0].kind == "error"
    assert collector.collect({Section.MEMORY}).memory == [make_memory()]


def test_the_process_query_waits_for_the_gpu_set_up_in_progress() -> None:
    gate = threading.Event()
    builds: list[int] = []

    def build() -> FakeGpuReader:
        builds.append(1)
        gate.wait()
        return FakeGpuReader()

    gpu = DeferredGpuReader("nvidia", Section.GPU, build)
    processes = StaticProcessesOf(gpu)
    collector = Collector([gpu, processes], timeout_s=SHORT_S, hostname="h")
    first = collector.collect({Section.GPU, Section.PROCESS})
    assert isinstance(first.errors, list)
    assert [(e.section, e.kind) for e in first.errors] == [
        ("gpu", "timeout"),
        ("process", "timeout"),
    ]
    gate.set()
    for _ in range(500):  # until the workers have had their turn
        snap = collector.collect({Section.GPU, Section.PROCESS})
        if snap.errors is UNSET:
            break
        time.sleep(0.01)
    assert snap.gpus == [make_gpu()] and snap.processes == [make_process()]
    assert builds == [1]  # one set-up, whichever worker came first


def test_an_unexpected_exception_is_a_panic_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    collector = Collector([BuggyReader(Section.CPU, name="cpu")], hostname="h")
    with caplog.at_level(logging.ERROR, logger="smicast.collect"):
        snaps = [collector.collect({Section.CPU}) for _ in range(3)]
    for snap in snaps:
        assert isinstance(snap.errors, list)
        assert [(e.kind, e.section) for e in snap.errors] == [("panic", "cpu")]
        assert snap.errors[0].message == "cpu: unexpected KeyError: 'driver said no'"
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "a bug" in caplog.records[0].message
    assert caplog.records[0].exc_info is not None  # the traceback
    [stats] = collector.reader_stats()
    assert stats.errors == {"panic": 3}


def test_a_partial_read_keeps_the_devices_that_answered() -> None:
    class LosesOne:
        name = "nvidia"
        section = Section.GPU

        def read(self) -> Sequence[Item]:
            raise PartialReadError("nvidia: GPU 1 (GPU-1): GPU is lost", [make_gpu("A")])

    collector = Collector([LosesOne()], hostname="h", clock=lambda: 5.0)
    snap = collector.collect({Section.GPU})
    assert snap.gpus == [make_gpu("A")]
    assert isinstance(snap.errors, list)
    assert [(e.kind, e.message) for e in snap.errors] == [
        ("error", "nvidia: GPU 1 (GPU-1): GPU is lost")
    ]
    [stats] = collector.reader_stats()
    assert stats.errors == {"error": 1} and stats.last_success_s == 5.0
