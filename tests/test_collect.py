"""The collector: concurrent readers, timeouts, stuck readers, errors, backfill, caps.

Hanging readers are always released at the end of a test, so no worker thread
outlives it; timeouts are tens of milliseconds, so no test waits long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from msgspec import UNSET

from smicast.collect import Collector, backfill_chassis_power
from smicast.include import ALL_SECTIONS, Section
from smicast.readers import Item, ReadError
from smicast.schema import ChassisInfo, ReaderError
from tests.fakes import (
    FailingReader,
    HangingReader,
    StaticReader,
    make_cpu,
    make_gpu,
    make_memory,
    make_process,
)

EPOCH_S = 1_776_686_400.0  # 2026-04-20T12:00:00Z
SHORT_S = 0.05  # how long a test lets a hanging reader hang


def fixed_clock() -> float:
    return EPOCH_S


def make_chassis(total_power_watts: float | None = None) -> ChassisInfo:
    return ChassisInfo(
        host_id="mockhost",
        hostname="mockhost",
        instance="mockhost",
        total_power_watts=total_power_watts,
        time="2026-04-20 12:00:00",
    )


@pytest.fixture
def hanging() -> Iterator[HangingReader]:
    reader = HangingReader(Section.GPU)
    yield reader
    reader.release.set()


class BarrierReader:
    """Reads only return once every reader sharing the barrier is inside `read()` at once."""

    def __init__(self, section: Section, items: Sequence[Item], barrier: threading.Barrier) -> None:
        self.section = section
        self.name = f"barrier-{section.value}"
        self._items = list(items)
        self._barrier = barrier

    def read(self) -> Sequence[Item]:
        self._barrier.wait(timeout=2.0)  # raises BrokenBarrierError if run one after the other
        return self._items


def test_collects_requested_sections_in_a_snapshot() -> None:
    gpu, cpu, mem = (
        StaticReader(Section.GPU, [make_gpu()]),
        StaticReader(Section.CPU, [make_cpu()]),
        StaticReader(Section.MEMORY, [make_memory()]),
    )
    collector = Collector([gpu, cpu, mem], clock=fixed_clock, hostname="mockhost")
    snap = collector.collect({Section.GPU, Section.MEMORY})
    assert snap.timestamp == "2026-04-20T12:00:00Z"
    assert snap.hostname == "mockhost" and snap.schema == 1
    assert snap.gpus == [make_gpu()] and snap.memory == [make_memory()]
    assert snap.cpus is UNSET and snap.errors is UNSET
    assert cpu.calls == 0  # a reader of an unrequested section is not called
    assert collector.readers == [gpu, cpu, mem]


def test_requested_section_without_readers_is_an_empty_list() -> None:
    collector = Collector([StaticReader(Section.CPU, [make_cpu()])], hostname="h")
    snap = collector.collect({Section.GPU, Section.CPU, Section.STORAGE})
    assert snap.gpus == [] and snap.storage == []
    assert snap.chassis is UNSET and snap.errors is UNSET


def test_readers_run_concurrently() -> None:
    barrier = threading.Barrier(2)
    readers = [
        BarrierReader(Section.GPU, [make_gpu()], barrier),
        BarrierReader(Section.CPU, [make_cpu()], barrier),
    ]
    collector = Collector(readers, timeout_s=5.0, hostname="h")
    snap = collector.collect({Section.GPU, Section.CPU})
    assert snap.errors is UNSET, snap.errors
    assert snap.gpus == [make_gpu()] and snap.cpus == [make_cpu()]
    assert not barrier.broken


def test_a_hanging_reader_times_out_and_the_others_still_report(hanging: HangingReader) -> None:
    cpu = StaticReader(Section.CPU, [make_cpu()])
    collector = Collector([hanging, cpu], timeout_s=SHORT_S, hostname="h")
    snap = collector.collect({Section.GPU, Section.CPU})
    assert snap.gpus is UNSET
    assert snap.cpus == [make_cpu()]
    assert snap.errors == [
        ReaderError(kind="timeout", message="reader exceeded timeout of 50 ms", section="gpu")
    ]
    assert hanging.calls == 1


def test_a_stuck_reader_is_not_called_again_until_it_returns(hanging: HangingReader) -> None:
    cpu = StaticReader(Section.CPU, [make_cpu()])
    collector = Collector([hanging, cpu], timeout_s=SHORT_S, hostname="h")
    collector.collect({Section.GPU, Section.CPU})
    second = collector.collect({Section.GPU, Section.CPU})
    assert hanging.calls == 1  # still inside its first call: not entered again
    assert cpu.calls == 2
    assert second.gpus is UNSET and second.cpus == [make_cpu()]
    assert isinstance(second.errors, list) and len(second.errors) == 1
    assert second.errors[0].kind == "timeout" and second.errors[0].section == "gpu"
    assert "still busy" in second.errors[0].message

    hanging.release.set()
    deadline = time.monotonic() + 2.0
    snap = collector.collect({Section.GPU})
    while hanging.calls < 2 and time.monotonic() < deadline:
        time.sleep(0.005)  # the released call may still be finishing in its thread
        snap = collector.collect({Section.GPU})
    assert hanging.calls == 2
    assert snap.gpus == [] and snap.errors is UNSET


def test_a_stuck_reader_costs_one_thread_however_often_it_is_polled(
    hanging: HangingReader,
) -> None:
    collector = Collector([hanging], timeout_s=0.01, hostname="h")
    before = threading.active_count()
    for _ in range(5):
        collector.collect({Section.GPU})
    assert hanging.calls == 1
    assert threading.active_count() <= before + 1


def test_timeout_message_names_the_configured_milliseconds(hanging: HangingReader) -> None:
    # `--timeout-ms 1001` is handed over as 1.001 s; the message must still say 1001 ms.
    collector = Collector([hanging], timeout_s=1001 / 1000, hostname="h")
    snap = collector.collect({Section.GPU})
    assert snap.errors == [
        ReaderError(kind="timeout", message="reader exceeded timeout of 1001 ms", section="gpu")
    ]


def test_a_raising_reader_gives_an_error_entry() -> None:
    collector = Collector(
        [FailingReader(Section.MEMORY), StaticReader(Section.CPU, [make_cpu()])], hostname="h"
    )
    snap = collector.collect({Section.MEMORY, Section.CPU})
    assert snap.memory is UNSET and snap.cpus == [make_cpu()]
    assert isinstance(snap.errors, list) and len(snap.errors) == 1
    err = snap.errors[0]
    assert err.kind == "error" and err.section == "memory"
    assert "driver said no" in err.message


def test_a_read_error_is_reported_the_same_way() -> None:
    class Broken:
        name = "broken-storage"
        section = Section.STORAGE

        def read(self) -> Sequence[Item]:
            raise ReadError("cannot read /proc/self/mountinfo")

    snap = Collector([Broken()], hostname="h").collect({Section.STORAGE})
    assert snap.storage is UNSET
    assert isinstance(snap.errors, list)
    assert snap.errors[0].kind == "error"
    assert "cannot read /proc/self/mountinfo" in snap.errors[0].message


def test_errors_are_listed_in_section_order(hanging: HangingReader) -> None:
    readers = [
        FailingReader(Section.STORAGE, name="s"),
        FailingReader(Section.CPU, name="c"),
        hanging,
    ]
    snap = Collector(readers, timeout_s=SHORT_S, hostname="h").collect(ALL_SECTIONS)
    assert isinstance(snap.errors, list)
    assert [(e.section, e.kind) for e in snap.errors] == [
        ("gpu", "timeout"),
        ("cpu", "error"),
        ("storage", "error"),
    ]
    assert snap.memory == [] and snap.chassis == [] and snap.processes == []


def test_a_failing_gpu_vendor_does_not_hide_a_healthy_one() -> None:
    healthy = StaticReader(Section.GPU, [make_gpu("A100")], name="nvidia")
    broken = FailingReader(Section.GPU, message="amdgpu sysfs vanished", name="amd")
    snap = Collector([healthy, broken], hostname="h").collect({Section.GPU})
    assert snap.gpus == [make_gpu("A100")]
    assert isinstance(snap.errors, list) and [e.section for e in snap.errors] == ["gpu"]
    assert snap.errors[0].kind == "error" and "amdgpu sysfs vanished" in snap.errors[0].message


def test_two_gpu_vendors_are_concatenated() -> None:
    a = StaticReader(Section.GPU, [make_gpu("A100")], name="nvidia")
    b = StaticReader(Section.GPU, [make_gpu("MI300X")], name="amd")
    snap = Collector([a, b], hostname="h").collect({Section.GPU})
    assert snap.gpus == [make_gpu("A100"), make_gpu("MI300X")]


@pytest.mark.parametrize(
    ("chassis_watts", "gpu_watts", "expected"),
    [
        (None, [250.0, 300.0], 550.0),  # null + GPUs drawing power -> their sum
        (None, [250.0, -1.0], 250.0),  # the unavailable sentinel does not count
        (None, [250.0, None], 250.0),  # nor does a NaN written as null
        (1200.0, [250.0, 300.0], 1200.0),  # a real reading is kept
        (None, [-1.0, -1.0], None),  # no valid GPU power: stays null
        (None, [0.0, 0.0], None),  # a sum of zero is not a reading
        (None, [], None),
    ],
)
def test_chassis_power_backfill(
    chassis_watts: float | None, gpu_watts: list[float | None], expected: float | None
) -> None:
    gpus = [make_gpu(f"G{i}", power_consumption=w) for i, w in enumerate(gpu_watts)]
    [result] = backfill_chassis_power([make_chassis(chassis_watts)], gpus)
    assert result.total_power_watts == expected

    collector = Collector(
        [
            StaticReader(Section.GPU, gpus),
            StaticReader(Section.CHASSIS, [make_chassis(chassis_watts)]),
        ],
        hostname="h",
    )
    snap = collector.collect({Section.GPU, Section.CHASSIS})
    assert isinstance(snap.chassis, list)
    assert snap.chassis[0].total_power_watts == expected


def test_process_caps_are_applied() -> None:
    procs = [make_process(command="python " + "a" * 400, process_name="p" * 200, user="u" * 129)]
    snap = Collector([StaticReader(Section.PROCESS, procs)], hostname="h").collect(
        {Section.PROCESS}
    )
    assert isinstance(snap.processes, list)
    proc = snap.processes[0]
    assert proc.command == ("python " + "a" * 400)[:256] + "...(151 bytes truncated)"
    assert proc.process_name == "p" * 128 + "...(72 bytes truncated)"
    assert proc.user == "u" * 128 + "...(1 bytes truncated)"


def test_reader_stats_count_errors_by_kind_and_last_success(hanging: HangingReader) -> None:
    good = StaticReader(Section.CPU, [make_cpu()])
    bad = FailingReader(Section.MEMORY)
    collector = Collector([good, bad, hanging], timeout_s=SHORT_S, clock=fixed_clock, hostname="h")
    for _ in range(3):
        collector.collect({Section.GPU, Section.CPU, Section.MEMORY})
    stats = {s.name: s for s in collector.reader_stats()}
    assert stats["static-cpu"].last_success_s == EPOCH_S
    assert stats["static-cpu"].errors == {}
    assert stats["static-cpu"].section is Section.CPU
    duration = stats["static-cpu"].last_duration_s
    assert duration is not None and duration >= 0
    assert stats["failing"].last_success_s is None
    assert stats["failing"].errors == {"error": 3}
    assert stats["hanging"].errors == {"timeout": 3}
    assert stats["hanging"].last_success_s is None
    assert collector.last_duration_s is not None and collector.last_duration_s >= 0


def test_timestamp_comes_from_the_clock() -> None:
    ticks = iter([EPOCH_S, EPOCH_S + 61.0])

    def clock() -> float:
        return next(ticks, EPOCH_S + 61.0)

    collector = Collector([], clock=clock, hostname="h")
    assert collector.collect({Section.GPU}).timestamp == "2026-04-20T12:00:00Z"
    assert collector.collect({Section.GPU}).timestamp == "2026-04-20T12:01:01Z"
