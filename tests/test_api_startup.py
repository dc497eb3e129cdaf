"""`smicast api`'s startup lines: the URLs it serves and what the first frame found."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from smicast.api.startup import SIMULATE_HINT, found_line, url_lines
from smicast.schema import ReaderError, Snapshot
from tests.fakes import make_gpu
from tests.test_api_process import free_port, reap


def test_url_lines_for_every_interface_and_a_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as any_v4:
        any_v4.bind(("0.0.0.0", 0))
        port = any_v4.getsockname()[1]
        lines = url_lines([any_v4], Path("/run/x.sock"), dashboard=True)
    assert lines[0] == f"dashboard: http://localhost:{port}/"
    assert f"metrics:   http://localhost:{port}/metrics" in lines
    assert any(line.startswith("socket:    /run/x.sock") for line in lines)


def test_url_lines_without_dashboard_and_ipv6_literal() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as v6:
        v6.bind(("::1", 0))
        port = v6.getsockname()[1]
        lines = url_lines([v6], None, dashboard=False)
    assert lines == [
        f"metrics:   http://[::1]:{port}/metrics",
        f"json, sse: http://[::1]:{port}/snapshot  http://[::1]:{port}/events",
    ]


def test_found_line_counts_devices_or_says_none_and_how_to_simulate() -> None:
    gpus = [make_gpu("NVIDIA H200", uuid=f"GPU-{i}") for i in range(4)]
    frame = Snapshot(hostname="h", timestamp="2026-01-01T00:00:00Z", gpus=gpus)
    line = found_line(frame, simulated=True)
    assert line == "simulated: 4 accelerators (4 x GPU NVIDIA H200)"
    assert found_line(Snapshot(hostname="h", timestamp="t", gpus=gpus[:1]), simulated=False) == (
        "found: 1 accelerator (1 x GPU NVIDIA H200)"
    )
    empty = Snapshot(hostname="h", timestamp="2026-01-01T00:00:00Z", gpus=[])
    assert found_line(empty, simulated=False) == SIMULATE_HINT
    assert "--simulate nvidia:8" in SIMULATE_HINT
    hung = Snapshot(
        hostname="h",
        timestamp="2026-01-01T00:00:00Z",
        errors=[ReaderError(kind="timeout", message="nvidia: no answer in 5.0 s", section="gpu")],
    )
    assert found_line(hung, simulated=False) == (
        "GPU reader did not answer (timeout: nvidia: no answer in 5.0 s); other sections are served"
    )


def test_api_process_prints_urls_then_what_it_found(tmp_path: Path) -> None:
    port = free_port()
    sock = tmp_path / "s.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smicast",
            "api",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--socket",
            str(sock),
            "--interval",
            "0.2",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "SMICAST_NO_GPU": "1", "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        while not any("no GPU found" in line for line in seen):
            line = proc.stderr.readline()
            assert line, f"server exited: {proc.wait()}: {''.join(seen)}"
            seen.append(line)
    finally:
        reap(proc)
    text = "".join(seen)
    assert f"smicast api: dashboard: http://127.0.0.1:{port}/\n" in text
    assert f"smicast api: metrics:   http://127.0.0.1:{port}/metrics\n" in text
    assert f"smicast api: socket:    {sock} " in text
    assert "try: smicast api --simulate nvidia:8" in text
