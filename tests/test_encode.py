"""The one encoder: compact or pretty, sorted, NaN as null, sections as requested."""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from msgspec import UNSET

from smicast.encode import (
    decode_snapshot,
    select,
    snapshot_json,
    snapshots_json,
    value_json,
    with_process_limits,
)
from smicast.include import ALL_SECTIONS, Section
from smicast.schema import ReaderError
from tests.fakes import make_gpu, make_memory, make_process, make_snapshot


def test_compact_has_no_whitespace_and_no_trailing_newline() -> None:
    data = snapshot_json(make_snapshot())
    assert data.startswith(b'{"chassis":[],"cpus":[')
    assert b'": ' not in data and b", " not in data and b"\n" not in data
    assert not data.endswith(b"\n")


def test_pretty_is_two_space_key_colon_space_value() -> None:
    snap = make_snapshot(gpus=[make_gpu()], cpus=UNSET, chassis=[])
    lines = snapshot_json(snap, pretty=True).decode().splitlines()
    assert lines[0] == "{"
    assert lines[1] == '  "chassis": [],'
    assert lines[2] == '  "gpus": ['
    assert lines[3] == "    {"
    assert '      "ane_utilization": 0.0,' in lines
    assert '      "detail": {},' in lines
    assert '      "nvlink_remote_devices": [],' in lines
    assert lines[-1] == "}"
    assert json.loads("\n".join(lines)) == json.loads(snapshot_json(snap))


def test_keys_sorted_at_every_level() -> None:
    gpu = make_gpu(detail={"zeta": "1", "Alpha": "2", "beta": "3"})
    data = snapshot_json(make_snapshot(gpus=[gpu], errors=[]))
    orders: list[list[str]] = []

    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        orders.append([k for k, _ in pairs])
        return dict(pairs)

    json.loads(data, object_pairs_hook=hook)
    assert ["Alpha", "beta", "zeta"] in orders  # byte order, as serde's BTreeMap
    assert all(keys == sorted(keys) for keys in orders)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_become_null_and_decode_as_none(value: float) -> None:
    gpu = make_gpu(
        "A100", utilization=value, power_consumption=value, ane_utilization=value
    )  # reference §6.2 #10
    snap = make_snapshot(gpus=[gpu], memory=[make_memory(utilization=value)])
    data = snapshot_json(snap)
    obj = json.loads(data)
    assert obj["gpus"][0]["utilization"] is None
    assert obj["gpus"][0]["power_consumption"] is None
    assert obj["gpus"][0]["ane_utilization"] is None
    assert obj["gpus"][0]["name"] == "A100"
    assert obj["memory"][0]["utilization"] is None
    assert b"NaN" not in data and b"Infinity" not in data
    back = decode_snapshot(data)
    assert isinstance(back.gpus, list) and isinstance(back.memory, list)
    assert back.gpus[0].utilization is None
    assert back.gpus[0].power_consumption is None
    assert back.memory[0].utilization is None
    assert back.gpus[0].temperature == 65


def test_non_finite_in_pretty_and_arrays_too() -> None:
    snap = make_snapshot(gpus=[make_gpu(utilization=math.nan)])
    assert '"utilization": null' in snapshot_json(snap, pretty=True).decode()
    assert b'"utilization":null' in snapshots_json([snap, snap])
    assert value_json(make_process(cpu_percent=math.inf)).count(b'"cpu_percent":null') == 1


def test_errors_omitted_when_absent_and_written_when_present() -> None:
    assert b'"errors"' not in snapshot_json(make_snapshot())
    err = ReaderError(kind="error", message="boom", section="cpu")
    obj = json.loads(snapshot_json(make_snapshot(errors=[err])))
    assert obj["errors"] == [{"kind": "error", "message": "boom", "section": "cpu"}]


def test_unrequested_sections_absent_and_requested_empty_is_empty_list() -> None:
    snap = make_snapshot(gpus=[], cpus=UNSET, memory=UNSET, chassis=UNSET, storage=[])
    obj = json.loads(snapshot_json(snap))
    assert obj == {
        "gpus": [],
        "hostname": "mockhost",
        "schema": 1,
        "storage": [],
        "timestamp": "2026-04-20T12:00:00Z",
    }


def test_select_keeps_identity_and_errors() -> None:
    err = ReaderError(kind="timeout", message="slow", section="gpu")
    snap = make_snapshot(processes=[make_process()], storage=[], errors=[err])
    only_memory = select(snap, [Section.MEMORY])
    obj = json.loads(snapshot_json(only_memory))
    assert set(obj) == {"schema", "timestamp", "hostname", "memory", "errors"}
    assert obj["errors"][0]["message"] == "slow"
    assert only_memory.memory == snap.memory


def test_select_never_adds_a_section_and_returns_same_object_when_nothing_drops() -> None:
    snap = make_snapshot()  # gpus, cpus, memory, chassis
    assert select(snap, ALL_SECTIONS) is snap
    chosen = select(snap, [Section.GPU, Section.STORAGE])
    assert chosen.storage is UNSET and chosen.cpus is UNSET
    assert chosen.gpus == snap.gpus


def test_snapshots_json_is_an_array_of_frames() -> None:
    a = make_snapshot(timestamp="2026-04-20T12:00:00Z")
    b = make_snapshot(timestamp="2026-04-20T12:00:01Z")
    data = snapshots_json([a, b])
    assert data.startswith(b'[{"chassis"')
    frames = msgspec.json.decode(data, type=list[msgspec.Raw])
    assert [bytes(f) for f in frames] == [snapshot_json(a), snapshot_json(b)]
    pretty = snapshots_json([a], pretty=True).decode()
    assert pretty.startswith('[\n  {\n    "chassis": [],')


def test_value_json_uses_the_same_rules() -> None:
    assert (
        value_json({"b": 1.0, "a": [math.nan], "é": "ü"}) == '{"a":[null],"b":1.0,"é":"ü"}'.encode()
    )


def test_with_process_limits_caps_strings_and_keeps_identity_when_short() -> None:
    short = make_snapshot(processes=[make_process()])
    assert with_process_limits(short) is short
    unset = make_snapshot()
    assert with_process_limits(unset) is unset
    long = make_snapshot(processes=[make_process(command="x" * 300, user="u" * 200)])
    limited = with_process_limits(long)
    assert isinstance(limited.processes, list)
    proc = limited.processes[0]
    assert proc.command == "x" * 256 + "...(44 bytes truncated)"
    assert proc.user == "u" * 128 + "...(72 bytes truncated)"
    assert proc.process_name == "python"
    assert with_process_limits(limited) is limited  # idempotent
