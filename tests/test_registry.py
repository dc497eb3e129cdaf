"""Which readers run: `--simulate` parsing, sections to readers, GPU detection switched off."""

from __future__ import annotations

import pytest

from smicast.include import ALL_SECTIONS, Section
from smicast.readers import GpuReader, Reader
from smicast.readers.chassis import ChassisReader
from smicast.readers.cpu import CpuReader
from smicast.readers.memory import MemoryReader
from smicast.readers.processes import ProcessReader
from smicast.readers.registry import (
    MAX_SIMULATED_DEVICES,
    SIMULATED_PLATFORMS,
    SimulateSpec,
    build_readers,
    detect_gpu_readers,
    parse_simulate,
)
from smicast.readers.setup import DeferredReader
from smicast.readers.simulated import SimulatedReader
from smicast.readers.storage import StorageReader


def built(reader: Reader) -> Reader:
    """The reader a deferred one sets up on its first read (the read runs the set-up)."""
    if isinstance(reader, DeferredReader):
        reader.read()
        assert reader.reader is not None
        return reader.reader
    return reader


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMICAST_NO_GPU", "1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nvidia", SimulateSpec("nvidia", 8)),
        ("nvidia:8", SimulateSpec("nvidia", 8)),
        ("amd:4", SimulateSpec("amd", 4)),
        ("gaudi:1", SimulateSpec("gaudi", 1)),
        ("tenstorrent:2", SimulateSpec("tenstorrent", 2)),
        (" NVIDIA:2 ", SimulateSpec("nvidia", 2)),
        (f"amd:{MAX_SIMULATED_DEVICES}", SimulateSpec("amd", MAX_SIMULATED_DEVICES)),
        ("nvidia:008", SimulateSpec("nvidia", 8)),
    ],
)
def test_parse_simulate_accepts(text: str, expected: SimulateSpec) -> None:
    assert parse_simulate(text) == expected


def test_every_listed_platform_is_simulated() -> None:
    assert set(SIMULATED_PLATFORMS) >= {"nvidia", "amd", "gaudi", "tenstorrent"}
    for platform in SIMULATED_PLATFORMS:
        assert parse_simulate(platform).platform == platform


@pytest.mark.parametrize("text", ["intel", "nvidia-h100", "", ":4", "apple:2", "nvidia 2"])
def test_parse_simulate_rejects_unknown_platforms(text: str) -> None:
    with pytest.raises(ValueError, match="expected PLATFORM\\[:N\\]") as info:
        parse_simulate(text)
    assert "nvidia, amd, gaudi, tenstorrent" in str(info.value)


@pytest.mark.parametrize("text", ["nvidia:x", "nvidia:", "nvidia:-1", "nvidia:2.5", "amd:4:4"])
def test_parse_simulate_rejects_bad_counts(text: str) -> None:
    with pytest.raises(ValueError, match="invalid --simulate"):
        parse_simulate(text)


@pytest.mark.parametrize("count", [0, MAX_SIMULATED_DEVICES + 1, 10**9])
def test_parse_simulate_rejects_counts_out_of_range(count: int) -> None:
    with pytest.raises(ValueError, match=f"invalid --simulate count {count}: expected 1..256"):
        parse_simulate(f"nvidia:{count}")


@pytest.mark.parametrize(
    ("section", "reader_type"),
    [
        (Section.GPU, SimulatedReader),
        (Section.CPU, CpuReader),
        (Section.MEMORY, MemoryReader),
        (Section.CHASSIS, ChassisReader),
        (Section.PROCESS, ProcessReader),
        (Section.STORAGE, StorageReader),
    ],
)
def test_each_section_gets_its_reader(section: Section, reader_type: type) -> None:
    readers = build_readers(frozenset({section}), simulate=SimulateSpec("nvidia", 2))
    assert [type(built(r)) for r in readers] == [reader_type]
    assert readers[0].section is section and built(readers[0]).section is section
    assert readers[0].name == built(readers[0]).name
    assert isinstance(readers[0], Reader)


def test_all_sections_in_wire_order_with_hostname_passed_down() -> None:
    readers = build_readers(ALL_SECTIONS, simulate=SimulateSpec("amd", 3), hostname="node-7")
    assert [r.section for r in readers] == list(Section)
    gpu = readers[0]
    assert isinstance(gpu, SimulatedReader) and gpu.name == "simulated-amd"
    items = gpu.read()
    assert len(items) == 3
    assert {g.hostname for g in items} == {"node-7"}


def test_the_process_reader_follows_the_same_gpu_reader() -> None:
    readers = build_readers(
        frozenset({Section.GPU, Section.PROCESS}), simulate=SimulateSpec("nvidia", 8), seed=3
    )
    gpu, deferred = readers
    procs = built(deferred)
    assert isinstance(gpu, SimulatedReader) and isinstance(procs, ProcessReader)
    for _ in range(300):  # enough reads for the simulated process sets to change
        gpus = gpu.read()
    assert {(p.pid, p.device_uuid) for p in procs.read()} == {
        (p.pid, p.device_uuid) for p in gpu.read_processes()
    }
    assert {p.device_uuid for p in procs.read()} <= {g.uuid for g in gpus}


def test_seed_makes_simulation_reproducible() -> None:
    def first_read(seed: int) -> list[float | None]:
        [reader] = build_readers(
            frozenset({Section.GPU}), simulate=SimulateSpec("nvidia", 4), seed=seed
        )
        return [g.utilization for g in reader.read()]  # type: ignore[union-attr]

    assert first_read(5) == first_read(5)
    assert first_read(5) != first_read(6)


@pytest.mark.usefixtures("no_gpu")
def test_no_gpu_env_means_no_gpu_readers() -> None:
    assert build_readers(frozenset({Section.GPU})) == []
    readers = build_readers(frozenset({Section.GPU, Section.PROCESS, Section.MEMORY}))
    assert [type(built(r)) for r in readers] == [MemoryReader, ProcessReader]
    procs = readers[1]
    assert procs.read() == []
    assert not any(isinstance(r, GpuReader) for r in readers)


@pytest.mark.parametrize("value", ["1", "true", "YES", " yes "])
def test_no_gpu_env_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SMICAST_NO_GPU", value)
    assert detect_gpu_readers(hostname="h", clock=lambda: 0.0) == []


@pytest.mark.usefixtures("no_gpu")
def test_simulate_wins_over_no_gpu() -> None:
    # --simulate is an explicit request; the switch only turns detection off.
    readers = build_readers(frozenset({Section.GPU}), simulate=SimulateSpec("gaudi", 2))
    assert [type(r) for r in readers] == [SimulatedReader]


def test_building_the_readers_sets_none_of_them_up() -> None:
    # Constructors read /proc, /sys and DMI; they run on the first read, under the timeout.
    readers = build_readers(ALL_SECTIONS, simulate=SimulateSpec("nvidia", 2))
    deferred = [r for r in readers if isinstance(r, DeferredReader)]
    assert [r.section for r in deferred] == [s for s in Section if s is not Section.GPU]
    assert all(r.reader is None and not r.ready for r in deferred)
