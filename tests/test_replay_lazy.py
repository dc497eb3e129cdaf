"""Frame lines are checked cheaply; the typed Snapshot is built only where it is needed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from smicast.encode import snapshot_json
from smicast.record.reader import TraceStats, iter_frames, iter_trace_frames
from smicast.record.replay import play
from tests.fakes import make_snapshot

GOOD = snapshot_json(make_snapshot(hostname="node-a"))
# Valid JSON, schema 1, a timestamp and a host name, but `gpus` is not a list of GPUs.
ODD = b'{"gpus":"not a list","hostname":"node-a","schema":1,"timestamp":"2026-04-20T12:00:01Z"}'


def write(tmp_path: Path) -> Path:
    path = tmp_path / "t.ndjson"
    path.write_bytes(b"\n".join([GOOD, ODD, b'{"schema":1,"timestamp":"2026-', GOOD]) + b"\n")
    return path


def test_trace_frames_keep_the_recorded_bytes(tmp_path: Path) -> None:
    stats = TraceStats()
    frames = list(iter_trace_frames([write(tmp_path)], stats))
    assert [bytes(f.line) for f in frames] == [GOOD, ODD, GOOD]
    assert [f.hostname for f in frames] == ["node-a"] * 3
    assert stats.frames == 3 and stats.corrupt == 1  # the torn line


def test_typed_reading_counts_a_malformed_section_as_corrupt(tmp_path: Path) -> None:
    stats = TraceStats()
    snaps = list(iter_frames([write(tmp_path)], stats))
    assert len(snaps) == 2 and all(s.hostname == "node-a" for s in snaps)
    assert (stats.frames, stats.corrupt) == (2, 2)


def test_api_play_skips_what_does_not_validate(tmp_path: Path) -> None:
    async def collect() -> list[str]:
        return [s.hostname async for s in play([write(tmp_path)], speed=1000.0)]

    assert asyncio.run(collect()) == ["node-a", "node-a"]


def test_replay_ndjson_passes_lines_through_and_csv_skips_bad_ones(tmp_path: Path) -> None:
    path = write(tmp_path)
    ndjson = subprocess.run(
        [sys.executable, "-m", "smicast", "replay", str(path)], capture_output=True, timeout=30
    )
    assert ndjson.returncode == 0
    assert ndjson.stdout.splitlines() == [GOOD, ODD, GOOD]
    assert b"skipped 1 corrupt" in ndjson.stderr
    csv = subprocess.run(
        [
            sys.executable,
            "-m",
            "smicast",
            "replay",
            "--format",
            "csv",
            "--query",
            "name",
            str(path),
        ],
        capture_output=True,
        timeout=30,
    )
    assert csv.returncode == 0
    assert csv.stdout.decode().splitlines()[0] == "timestamp,name"
    assert b"skipped 2 corrupt" in csv.stderr
