"""`smicast api --replay`: a recording served through /events, /snapshot and /metrics."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
from pathlib import Path

from smicast.encode import snapshot_json, value_json
from tests.api_harness import SseReader, raw_request
from tests.fakes import make_gpu, make_snapshot
from tests.test_api_process import ENV, free_port, reap, start_api, wait_listening


def write_trace(path: Path, frames: int) -> None:
    lines = [value_json({"header": True, "hosts": ["node-a"], "interval_ms": 1000, "schema": 1})]
    for i in range(frames):
        snap = make_snapshot(
            timestamp=f"1970-01-12T13:46:{40 + i:02d}Z",
            hostname="node-a",
            gpus=[make_gpu("A100", utilization=float(i))],
        )
        lines.append(snapshot_json(snap))
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_recording_served_as_live_data(tmp_path: Path) -> None:
    trace = tmp_path / "t.ndjson"
    write_trace(trace, 6)
    port = free_port()
    proc = start_api(
        "--replay", str(trace), "--speed", "5", "--port", str(port), "--bind", "127.0.0.1"
    )
    try:
        wait_listening(proc, 1)
        sse = SseReader(raw_request(port, "/events?include=gpu"))
        utils = [json.loads(e["data"])["gpus"][0]["utilization"] for e in sse.events(3)]
        assert utils == sorted(utils) and len(set(utils)) == 3  # in recorded order, paced
        sse.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/snapshot")
        data = json.loads(conn.getresponse().read())
        assert data["hostname"] == "node-a" and data["timestamp"].startswith("1970-01-12T13:46:")
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        assert 'all_smi_up{instance="node-a", hostname="node-a"} 1' in text
        assert "all_smi_gpu_utilization{" in text
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        reap(proc)


def test_a_trace_of_another_schema_is_refused_before_listening(tmp_path: Path) -> None:
    trace = tmp_path / "v2.ndjson"
    trace.write_text('{"schema":2,"timestamp":"2026-01-01T00:00:00Z","hostname":"x"}\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "smicast",
            "api",
            "--replay",
            str(trace),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert result.returncode == 1
    assert "unsupported schema version 2" in result.stderr
