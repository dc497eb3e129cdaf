"""`record --hosts`: one trace of a fleet that smicast's reader and all-smi's replay rules read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import zstandard

from smicast.cli import main
from smicast.fleet.trace import FLEET_HOSTNAME, fleet_frame, split_fleet_frame
from smicast.include import Section
from smicast.record.reader import iter_frames
from tests.fakes import make_gpu, make_memory, make_process, make_snapshot
from tests.fleet_harness import Agent

# all-smi's GpuInfo fields that are not Option<...> (a null there makes the frame unreadable).
ALL_SMI_GPU_REQUIRED_NUMBERS = ("utilization", "temperature", "used_memory", "total_memory")


def all_smi_replay(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """all-smi's replay rules (reference §3.4): header hosts, then frames with every field it needs."""
    with path.open("rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
        raw = reader.read()
    header: dict[str, Any] | None = None
    frames: list[dict[str, Any]] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        obj = json.loads(line)
        assert obj["schema"] == 1, "any other schema is a hard error"
        if obj.get("header") is True:
            header = header or obj
            continue
        if obj.get("index") is True:
            continue
        assert isinstance(obj["timestamp"], str) and isinstance(obj["hostname"], str)
        for gpu in obj.get("gpus") or []:
            for name in ALL_SMI_GPU_REQUIRED_NUMBERS:
                assert isinstance(gpu[name], int | float), name
            assert gpu["host_id"]
        frames.append(obj)
    assert header is not None
    return header["hosts"][:1024], frames


def test_record_hosts_writes_one_fleet_trace(tmp_path: Path) -> None:
    agents = [Agent(f"node-{i}").start() for i in range(2)]
    out = tmp_path / "fleet.ndjson.zst"
    try:
        hosts = ",".join(a.url for a in agents)
        argv = ["record", "--hosts", hosts, "-o", str(out), "--interval", "0.3"]
        assert main([*argv, "--duration", "1.6", "--include", "gpu,memory,process"]) == 0
    finally:
        for agent in agents:
            agent.stop()
    labels = [a.url for a in agents]
    header_hosts, frames = all_smi_replay(out)
    assert header_hosts == labels
    assert len(frames) >= 3
    last = frames[-1]
    assert last["hostname"] == FLEET_HOSTNAME
    # all-smi's replay makes one tab per GPU host_id: the fleet's hosts.
    assert {g["host_id"] for g in last["gpus"]} == set(labels)
    assert "cpus" not in last and "processes" in last
    snaps = list(iter_frames([out]))  # smicast's reader
    assert len(snaps) == len(frames)
    parts = dict(split_fleet_frame(snaps[-1]))
    assert set(parts) == set(labels)
    assert {s.hostname for s in parts.values()} == {"node-0", "node-1"}


def test_fleet_frame_round_trip() -> None:
    a = make_snapshot(
        hostname="a",
        gpus=[make_gpu("A", uuid="GPU-a")],
        memory=[make_memory(hostname="a")],
        processes=[make_process(device_uuid="GPU-a", pid=7)],
    )
    b = make_snapshot(hostname="b", gpus=[make_gpu("B", uuid="GPU-b", hostname="b")], memory=[])
    sections = frozenset({Section.GPU, Section.MEMORY, Section.PROCESS})
    frame = fleet_frame({"a:1": a, "b:2": b}, sections, 1_780_000_000)
    assert frame.hostname == "remote" and [g.host_id for g in frame.gpus] == ["a:1", "b:2"]  # type: ignore[union-attr]
    parts = dict(split_fleet_frame(frame))
    assert [p.pid for p in parts["a:1"].processes] == [7]  # type: ignore[union-attr]
    assert parts["b:2"].processes == []
    assert parts["a:1"].memory[0].host_id == "a:1"  # type: ignore[index]


def test_hosts_cannot_be_mixed_with_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["record", "--hosts", "a:1", "--from", "http://b:2", "-o", str(tmp_path / "x.ndjson")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "--hosts" in capsys.readouterr().err
