"""Lazy fleet frames: readings now, the Snapshot on demand, the same view as a full decode."""

from __future__ import annotations

import json

import msgspec
import pytest

from smicast.encode import decode_snapshot, snapshot_json
from smicast.energy.meter import EnergyMeter
from smicast.readings import LazyFrame
from smicast.schema import Snapshot
from smicast.view.alerts import AlertConfig
from smicast.view.fleet_summary import FleetView
from smicast.view.model import HostView, SourceEvent, ViewModel
from tests.view_support import T0, simulated_frames


def wire(count: int, n: int, hostname: str) -> list[bytes]:
    return [snapshot_json(s) for s in simulated_frames(count, n, hostname=hostname)]


def both_models(frames: dict[str, list[bytes]]) -> tuple[ViewModel, ViewModel, list, list]:  # type: ignore[type-arg]
    """The frames applied once as typed Snapshots and once as lazy frames."""
    config = AlertConfig(temp_warn_c=60, temp_crit_c=75, util_idle_pct=40, util_idle_warn_mins=0.02)
    full, lazy = ViewModel(config), ViewModel(config)
    full_log, lazy_log = [], []
    n = len(next(iter(frames.values())))
    for i in range(n):
        for host, lines in frames.items():
            full_log += full.apply(SourceEvent(host, decode_snapshot(lines[i])), T0 + i)
            lazy_log += lazy.apply(SourceEvent(host, frame=LazyFrame.decode(lines[i])), T0 + i)
    return full, lazy, full_log, lazy_log


def test_a_lazy_frame_gives_the_view_a_full_decode_gives() -> None:
    frames = {f"node-{h}": wire(4, 40, f"node-{h}") for h in range(3)}
    full, lazy, full_log, lazy_log = both_models(frames)
    assert full_log == lazy_log and full_log  # the same alert transitions
    fleet_full, fleet_lazy = FleetView(full), FleetView(lazy)
    rows_full = [fleet_full.row(h, 0.0, T0 + 40) for h in full]
    rows_lazy = [fleet_lazy.row(h, 0.0, T0 + 40) for h in lazy]
    assert rows_full == rows_lazy
    assert fleet_full.totals(rows_full, 0.0) == fleet_lazy.totals(rows_lazy, 0.0)
    assert fleet_full.gpu_cells() == fleet_lazy.gpu_cells()
    for a, b in zip(full, lazy, strict=True):
        assert (a.hostname, a.frames, a.frame_epoch_s, a.received_s) == (
            b.hostname,
            b.frames,
            b.frame_epoch_s,
            b.received_s,
        )
        for ring in ("cpu", "memory", "power"):
            assert getattr(a, ring).last(100) == getattr(b, ring).last(100)
        assert a.alert_levels() == b.alert_levels()
        assert [g.key for g in a.gpu_list()] == [g.key for g in b.gpu_list()]
        for ga, gb in zip(a.gpu_list(), b.gpu_list(), strict=True):
            assert ga.label == gb.label
            for ring in ("util", "memory", "temperature", "power"):
                assert getattr(ga, ring).last(100) == getattr(gb, ring).last(100)
            assert ga.info == gb.info  # built from the lazy frame on demand
            assert ga.throttle_keys == gb.throttle_keys
        # What only the full frame has (the host tab, the users tab): built when read.
        assert a.snapshot == b.snapshot
        assert a.processes == b.processes and a.cpus == b.cpus and a.memories == b.memories
        assert a.cpu_utilization() == b.cpu_utilization()
    assert fleet_full.users() == fleet_lazy.users()
    assert fleet_full.alerts()[0] == [
        (next(h for h in full if h.key == host.key), gpu, level)
        for host, gpu, level in fleet_lazy.alerts()[0]
    ]


def test_readings_feed_the_energy_meter_as_the_snapshot_does() -> None:
    lines = wire(3, 10, "node-e")
    by_snapshot, by_readings = EnergyMeter(), EnergyMeter()
    for i, line in enumerate(lines):
        by_snapshot.observe(decode_snapshot(line), i * 1.0)
        by_readings.observe(LazyFrame.decode(line).readings, i * 1.0)
    assert by_snapshot.rows() == by_readings.rows() and by_snapshot.rows()


def malformed_outside_the_readings(line: bytes) -> bytes:
    """A frame whose readings are fine but whose first process has a text pid."""
    data = json.loads(line)
    data["processes"][0]["pid"] = "not a number"
    return json.dumps(data).encode()


def test_a_lazy_frame_malformed_outside_its_readings_costs_only_its_details() -> None:
    good, bad = wire(2, 2, "node-m")
    bad = malformed_outside_the_readings(bad)
    with pytest.raises(msgspec.ValidationError):
        decode_snapshot(bad)
    model = ViewModel()
    model.apply(SourceEvent("m", frame=LazyFrame.decode(good)), T0)
    host = model.hosts["m"]
    before = host.snapshot  # the host tab showed it
    assert before == decode_snapshot(good)
    model.apply(SourceEvent("m", frame=LazyFrame.decode(bad)), T0 + 1)
    fleet = FleetView(model)
    fleet.row(host, 0.0, T0 + 1)
    fleet.totals([fleet.row(host, 0.0, T0 + 1)], 0.0)
    assert host.frames == 2 and host.source_error is None  # nothing built the frame yet
    assert len(host.gpu_list()[0].util) == 2  # its readings went into the history
    assert host.snapshot is before  # the last frame built stays
    assert host.source_error is not None and "invalid frame" in host.source_error
    # The GPUs show the bad frame's readings; what only the full record has is left empty.
    reading = LazyFrame.decode(bad).readings
    assert reading.gpus
    gpu = host.gpu_list()[0]
    assert gpu.info.utilization == reading.gpus[0].utilization
    assert gpu.info.name == reading.gpus[0].name and gpu.info.detail == {}


def test_a_lazy_frame_is_built_once_and_a_full_frame_replaces_it() -> None:
    lines = wire(2, 3, "node-o")
    frame = LazyFrame.decode(lines[0])
    first = frame.snapshot()
    assert isinstance(first, Snapshot) and frame.snapshot() is first
    model = ViewModel()
    model.apply(SourceEvent("o", frame=LazyFrame.decode(lines[1])), T0)
    model.apply(SourceEvent("o", decode_snapshot(lines[2])), T0 + 1)  # a /metrics answer
    host: HostView = model.hosts["o"]
    assert host.snapshot == decode_snapshot(lines[2])
    assert host.gpu_list()[0].info is host.snapshot.gpus[0]  # type: ignore[index, union-attr]


@pytest.mark.parametrize(
    "line",
    [b"{", b'{"hostname": "x", "timestamp": "t", "gpus": [{"name": 1}]}', b"[]"],
)
def test_broken_json_or_readings_fail_at_once(line: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        LazyFrame.decode(line)


def test_every_reading_field_is_the_schema_field_of_that_name() -> None:
    """The reading types repeat a few schema declarations on purpose (a smaller decode);
    this holds them to the schema: same names, types and defaults."""
    import msgspec

    from smicast import readings, schema

    pairs = [
        (readings.GpuReading, schema.GpuInfo),
        (readings.CpuReading, schema.CpuInfo),
        (readings.MemoryReading, schema.MemoryInfo),
        (readings.ChassisReading, schema.ChassisInfo),
    ]
    for reading, full in pairs:
        declared = {f.name: f for f in msgspec.structs.fields(full)}
        for field in msgspec.structs.fields(reading):
            match = declared[field.name]
            assert (field.type, field.default) == (match.type, match.default), (
                reading.__name__,
                field.name,
            )
