"""curl over the Unix socket: `/snapshot` and a streamed `/events`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.support import SmicastServer, require_tool

pytestmark = pytest.mark.integration


def curl(*args: str, timeout_s: float = 20.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require_tool("curl"), "--silent", "--show-error", *args],
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )


def test_snapshot_over_unix_socket(smicast: SmicastServer) -> None:
    done = curl(
        "--fail",
        "--max-time",
        "10",
        "--unix-socket",
        str(smicast.socket_path),
        "http://localhost/snapshot",
    )

    assert done.returncode == 0, done.stderr.decode()
    snapshot = json.loads(done.stdout)
    assert snapshot["schema"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", snapshot["timestamp"])
    assert isinstance(snapshot["hostname"], str) and snapshot["hostname"]
    assert len(snapshot["gpus"]) == 8
    assert [g["name"].startswith("NVIDIA") for g in snapshot["gpus"]] == [True] * 8
    assert {"cpus", "memory", "chassis"} <= snapshot.keys()


def test_snapshot_include_and_pretty_over_unix_socket(smicast: SmicastServer) -> None:
    done = curl(
        "--fail",
        "--max-time",
        "10",
        "--unix-socket",
        str(smicast.socket_path),
        "http://localhost/snapshot?include=gpu&pretty=1",
    )

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.count(b"\n") > 8  # indented, one key a line
    snapshot = json.loads(done.stdout)
    assert len(snapshot["gpus"]) == 8
    assert not {"cpus", "memory", "chassis"} & snapshot.keys()


def test_events_stream_over_unix_socket(smicast: SmicastServer, tmp_path: Path) -> None:
    headers = tmp_path / "headers.txt"
    # -N: no output buffering; --max-time ends the endless stream (curl exit 28).
    done = curl(
        "-N",
        "--max-time",
        "3",
        "--dump-header",
        str(headers),
        "--unix-socket",
        str(smicast.socket_path),
        "http://localhost/events",
    )

    assert done.returncode == 28, done.stderr.decode()
    head = headers.read_text().lower()
    assert head.startswith("http/1.1 200")
    assert "content-type: text/event-stream" in head
    body = done.stdout.decode()
    frames = re.findall(r"event: snapshot\nid: (\d+)\ndata: (\{.*\})\n\n", body)
    assert len(frames) >= 2, body[:2000]
    ids = [int(frame_id) for frame_id, _ in frames]
    assert ids == sorted(set(ids)), "frame ids are increasing sequence numbers"
    for _, data in frames:
        frame = json.loads(data)
        assert frame["schema"] == 1
        assert len(frame["gpus"]) == 8
