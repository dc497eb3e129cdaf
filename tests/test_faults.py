"""`--fault SPEC`: the grammar, and each scenario's effect on the simulator, on a fake clock."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from msgspec import UNSET

from smicast.cli import main
from smicast.include import Section
from smicast.prometheus import render_metrics
from smicast.readers import PartialReadError, ReadError
from smicast.readers.fault_spec import (
    MAX_FAULTS,
    SCENARIOS,
    UNSUPPORTED_FIELDS,
    FaultSpec,
    check_faults,
    parse_fault,
)
from smicast.readers.faults import GPU_IS_LOST, FaultyGpuReader, SimulatedBug
from smicast.readers.processes import ProcessReader
from smicast.readers.simulated import PID_MAX, SimulatedReader
from smicast.schema import GPU_METRIC_UNAVAILABLE, GpuInfo, Snapshot
from tests.reader_contract import check_reader

START_S = 1_776_686_400.0


class FakeTime:
    """`monotonic` and `sleep` for the fault layer: sleeping moves the clock, instantly."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.slept_s = 0.0

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now_s += seconds
        self.slept_s += seconds


def faulty(*specs: str, count: int = 4) -> tuple[FaultyGpuReader, FakeTime]:
    time = FakeTime()
    inner = SimulatedReader("nvidia", count, seed=1, hostname="node-1", clock=lambda: START_S)
    reader = FaultyGpuReader(
        inner, [parse_fault(s) for s in specs], monotonic=time.monotonic, sleep=time.sleep
    )
    return reader, time


# -- the grammar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("init-hang", FaultSpec("init-hang")),
        ("read-hang@10s+30s", FaultSpec("read-hang", 10.0, 30.0)),
        ("read-hang+500ms", FaultSpec("read-hang", 0.0, 0.5)),
        ("gpu-lost", FaultSpec("gpu-lost", device=0)),
        ("gpu-lost:3@5s+20s", FaultSpec("gpu-lost", 5.0, 20.0, device=3)),
        ("unsupported:temperature", FaultSpec("unsupported", field="temperature")),
        ("churn@1m", FaultSpec("churn", 60.0)),
        (" PROC-HIDDEN@0.5+1.5 ", FaultSpec("proc-hidden", 0.5, 1.5)),
        ("exception@2s+1h", FaultSpec("exception", 2.0, 3600.0)),
    ],
)
def test_parse_fault_accepts(text: str, expected: FaultSpec) -> None:
    assert parse_fault(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "NAME one of init-hang, read-hang, gpu-lost"),
        ("melt", "NAME one of"),
        ("read-hang@", "START '' must be a duration"),
        ("read-hang@-1s", "START '-1s' must be a duration"),
        ("read-hang@31d", "at most 30 days"),
        ("read-hang+0s", "DURATION must be more than 0"),
        ("read-hang+x", "DURATION 'x' must be a duration"),
        ("read-hang+nan", "DURATION 'nan' must be a duration"),
        ("churn:fast", "churn takes no argument"),
        ("gpu-lost:-1", "gpu-lost takes a device index 0..255"),
        ("gpu-lost:256", "gpu-lost takes a device index 0..255"),
        ("gpu-lost:x", "gpu-lost takes a device index"),
        ("unsupported", "unsupported needs a FIELD, one of utilization, temperature"),
        ("unsupported:voltage", "unsupported needs a FIELD"),
    ],
)
def test_parse_fault_rejects_with_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid --fault") as info:
        parse_fault(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_check_faults_needs_a_simulator_and_real_device_indexes() -> None:
    check_faults([], None)
    check_faults([parse_fault("gpu-lost:7")], 8)
    with pytest.raises(ValueError, match="--fault needs --simulate"):
        check_faults([parse_fault("churn")], None)
    with pytest.raises(ValueError, match=r"--simulate has devices 0\.\.7"):
        check_faults([parse_fault("gpu-lost:8")], 8)
    with pytest.raises(ValueError, match=f"at most {MAX_FAULTS}"):
        check_faults([parse_fault("churn")] * (MAX_FAULTS + 1), 8)


def test_windows() -> None:
    spec = parse_fault("read-hang@2s+3s")
    assert [spec.active(t) for t in (1.9, 2.0, 4.9, 5.0)] == [False, True, True, False]
    assert parse_fault("read-hang").end_s == math.inf


# -- the scenarios ----------------------------------------------------------------------


def test_without_an_active_fault_the_simulator_is_unchanged() -> None:
    reader, _ = faulty("exception@1h")
    plain = SimulatedReader("nvidia", 4, seed=1, hostname="node-1", clock=lambda: START_S)
    assert reader.read() == plain.read()
    assert reader.read_processes() == plain.read_processes()
    assert reader.name == plain.name and reader.section is Section.GPU
    check_reader(reader)


def test_init_hang_blocks_set_up_until_the_fault_clears() -> None:
    reader, time = faulty("init-hang+30s")
    assert not reader.ready
    assert len(reader.read()) == 4  # blocked for the fault's 30 s, then answered
    assert time.slept_s == pytest.approx(30.0)
    assert reader.ready
    reader.read()
    reader.read_processes()
    assert time.slept_s == pytest.approx(30.0)  # set up: no second hang


def test_a_process_query_first_sets_up_too() -> None:
    reader, time = faulty("init-hang+30s")
    reader.read_processes()
    assert time.slept_s == pytest.approx(30.0) and reader.ready


def test_a_later_init_hang_is_a_driver_reload() -> None:
    reader, time = faulty("init-hang@10s+5s")
    reader.read()
    assert time.slept_s == 0 and reader.ready
    time.now_s = 11.0
    reader.read()  # set-up again, blocked until 15 s
    assert time.now_s == pytest.approx(15.0)
    assert reader.ready


def test_init_hang_without_duration_never_ends() -> None:
    reader, time = faulty("init-hang")

    naps: list[float] = []

    def give_up_after_a_while(seconds: float) -> None:
        naps.append(seconds)
        time.now_s += 3600.0  # an hour a nap: still hung
        if len(naps) == 100:
            raise TimeoutError("still hung")

    reader._sleep = give_up_after_a_while
    with pytest.raises(TimeoutError):
        reader.read()
    assert not reader.ready


def test_read_hang_blocks_reads_and_process_queries_then_recovers() -> None:
    reader, time = faulty("read-hang@5s+10s")
    reader.read()
    time.now_s = 6.0
    assert len(reader.read()) == 4
    assert time.now_s == pytest.approx(15.0)
    time.now_s = 7.0  # another call inside the window (clock moved back for the test)
    reader.read_processes()
    assert time.now_s == pytest.approx(15.0)
    time.slept_s = 0.0
    reader.read()
    assert time.slept_s == 0.0


def test_gpu_lost_reports_the_others_and_names_the_lost_one() -> None:
    reader, time = faulty("gpu-lost:2@1s+2s")
    before = reader.read()
    time.now_s = 1.5
    with pytest.raises(PartialReadError) as info:
        reader.read()
    kept = info.value.items
    assert [g.uuid for g in kept] == [before[i].uuid for i in (0, 1, 3)]  # type: ignore[union-attr]
    assert str(info.value) == f"simulated-nvidia: GPU 2 ({before[2].uuid}): {GPU_IS_LOST}"
    assert {p.device_id for p in reader.read_processes()} <= {0, 1, 3}
    time.now_s = 3.0
    assert [g.uuid for g in reader.read()] == [g.uuid for g in before]


@pytest.mark.parametrize("field", UNSUPPORTED_FIELDS)
def test_unsupported_sensor_reads_as_unknown(field: str) -> None:
    reader, _ = faulty(f"unsupported:{field}")
    clean, _ = faulty()
    for gpu, before in zip(reader.read(), clean.read(), strict=True):
        expected_missing = {
            "utilization": gpu.utilization == GPU_METRIC_UNAVAILABLE,
            "temperature": gpu.temperature == 0,
            "power": gpu.power_consumption == GPU_METRIC_UNAVAILABLE,
            "frequency": gpu.frequency == 0,
            "fan": gpu.fan_speed_rpm is None,
            "performance-state": gpu.performance_state is None,
            "pcie": gpu.pcie_link_generation is UNSET and gpu.pcie_link_width is UNSET,
        }
        assert expected_missing[field]
        assert gpu.detail == before.detail  # identity is never a live reading


def test_churn_flips_pstates_steps_fans_and_trains_the_link_down() -> None:
    reader, _ = faulty("churn")
    reads = [reader.read()[0] for _ in range(4)]

    def seen(get: object) -> set[object]:
        return {get(g) for g in reads}  # type: ignore[operator]

    assert seen(lambda g: g.performance_state) == {0, 8}
    assert len(seen(lambda g: g.fan_speed_rpm)) == 4
    assert seen(lambda g: g.pcie_link_generation) == {1, 5}
    assert seen(lambda g: g.pcie_link_width) == {8, 16}
    # Churn lives in typed fields and gauges; the info series keeps one label set.
    assert len(seen(lambda g: tuple(sorted(g.detail.items())))) == 1
    info = {
        line.split(" ")[0]
        for g in reads
        for line in render_metrics(
            Snapshot(hostname="h", timestamp="2026-01-01T00:00:00Z", gpus=[g]), ready=True
        ).splitlines()
        if line.startswith("all_smi_gpu_info{")
    }
    assert len(info) == 1


def test_proc_hidden_goes_through_the_process_readers_unreadable_path(tmp_path: Path) -> None:
    reader, _ = faulty("proc-hidden")
    reader.read()
    procfs = tmp_path / "proc"
    procfs.mkdir()
    (procfs / "meminfo").write_text("MemTotal: 1000 kB\n")
    (procfs / "stat").write_text("cpu 1 1 1 1\nbtime 1700000000\n")
    listed = reader.read_processes()
    assert listed and all(p.info is None and p.pid >= PID_MAX for p in listed)
    described = ProcessReader([reader], procfs, users=lambda uid: "u").read()
    assert [(p.pid, p.device_uuid) for p in described] == [(p.pid, p.device_uuid) for p in listed]
    assert all(p.process_name == "" and p.command == "" and p.user == "" for p in described)
    assert all(p.used_memory > 0 for p in described)


def test_exception_raises_something_no_reader_expects() -> None:
    reader, time = faulty("exception@1s+1s")
    reader.read()
    time.now_s = 1.0
    with pytest.raises(SimulatedBug) as info:
        reader.read()
    assert not isinstance(info.value, ReadError)
    assert reader.read_processes()  # another code path: not the buggy one
    time.now_s = 2.0
    assert len(reader.read()) == 4


def test_faults_combine() -> None:
    reader, _ = faulty("churn", "unsupported:fan", "gpu-lost:0")
    with pytest.raises(PartialReadError) as info:
        reader.read()
    kept = info.value.items
    assert len(kept) == 3
    assert all(isinstance(g, GpuInfo) and g.fan_speed_rpm is None for g in kept)


def test_every_scenario_is_covered_here() -> None:
    assert set(SCENARIOS) == {
        "init-hang",
        "read-hang",
        "gpu-lost",
        "unsupported",
        "churn",
        "proc-hidden",
        "exception",
    }


@pytest.mark.parametrize("command", ["snapshot", "record", "api"])
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--simulate", "nvidia:2", "--fault", "melt"], "invalid --fault 'melt'"),
        (["--fault", "churn"], "--fault needs --simulate"),
        (["--simulate", "nvidia:2", "--fault", "gpu-lost:2"], "--simulate has devices 0..1"),
    ],
)
def test_every_command_refuses_a_bad_fault_with_one_line(
    command: str,
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = ["-o", str(tmp_path / "t.ndjson")] if command == "record" else []
    with pytest.raises(SystemExit) as caught:
        main([command, *extra, *argv])
    assert caught.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "t.ndjson").exists()
