"""The hung-driver reproduction: a stand-in `pynvml` on PYTHONPATH whose nvmlInit() sleeps.

Before set-up ran under the collector's timeout, `snapshot --timeout-ms 500` hung for
the hour, `api` never opened its port and `record` wrote nothing. Each command runs
here as a real child process against that module.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smicast.record.reader import iter_frames
from tests.api_harness import SseReader

REPO = Path(__file__).resolve().parent.parent
STANDIN = '''"""pynvml stand-in: nvmlInit() blocks for STANDIN_NVML_INIT_S seconds, then FakeNvml."""
import os
import time

from tests.fake_nvml import FakeDevice, FakeNvml

_nvml = FakeNvml([FakeDevice(uuid="GPU-0"), FakeDevice(uuid="GPU-1")])


def nvmlInit():
    time.sleep(float(os.environ.get("STANDIN_NVML_INIT_S", "3600")))
    _nvml.nvmlInit()


def __getattr__(name):
    return getattr(_nvml, name)
'''


def env_with_standin(tmp_path: Path, init_s: float = 3600.0) -> dict[str, str]:
    (tmp_path / "pynvml.py").write_text(STANDIN)
    env = {k: v for k, v in os.environ.items() if k != "SMICAST_NO_GPU"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)])
    env["STANDIN_NVML_INIT_S"] = str(init_s)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def smicast(*args: str) -> list[str]:
    return [sys.executable, "-m", "smicast", *args]


def startup_s(env: dict[str, str]) -> float:
    """What a snapshot without GPUs costs here: interpreter, imports, the memory reader."""
    began = time.monotonic()
    subprocess.run(
        smicast("snapshot", "--include", "memory"),
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return time.monotonic() - began


def gpu_errors(frame: dict[str, object]) -> list[dict[str, str]]:
    errors = frame.get("errors") or []
    assert isinstance(errors, list)
    return [e for e in errors if e["section"] == "gpu"]


def test_snapshot_answers_within_the_timeout(tmp_path: Path) -> None:
    env = env_with_standin(tmp_path)
    baseline_s = startup_s(env)
    began = time.monotonic()
    done = subprocess.run(
        smicast("snapshot", "--timeout-ms", "500", "--include", "gpu,memory", "--no-pretty"),
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    took_s = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    frame = json.loads(done.stdout)
    assert frame["memory"]
    assert gpu_errors(frame) == [
        {
            "kind": "timeout",
            "message": "reader exceeded timeout of 500 ms during set-up",
            "section": "gpu",
        }
    ]
    assert b"gpu reader timeout" in done.stderr
    # --timeout-ms plus one second past the same snapshot without GPUs (with room for a
    # loaded machine), against an hour before.
    assert took_s < 1.5 * baseline_s + 1.5, (took_s, baseline_s)


def test_snapshot_gets_the_gpus_once_the_driver_answers(tmp_path: Path) -> None:
    env = env_with_standin(tmp_path, init_s=1.0)
    done = subprocess.run(
        smicast(
            "snapshot",
            "--timeout-ms",
            "200",
            "--include",
            "gpu,memory",
            "--samples",
            "8",
            "--interval",
            "0.3",
            "--no-pretty",
        ),
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    frames = json.loads(done.stdout)
    assert gpu_errors(frames[0])[0]["kind"] == "timeout"
    assert all(f["memory"] for f in frames)
    last = frames[-1]
    assert "errors" not in last
    assert [g["uuid"] for g in last["gpus"]] == ["GPU-0", "GPU-1"]


def up(metrics: str) -> str:
    """The value of the `all_smi_up` sample."""
    [line] = [x for x in metrics.splitlines() if x.startswith("all_smi_up")]
    return line.rsplit(" ", 1)[1]


def unix_get(path: Path, target: str) -> tuple[int, bytes]:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(5)
            self.sock.connect(str(path))

    conn = UnixConnection("localhost", timeout=5)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start_api(env: dict[str, str], sock: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        smicast(
            "api",
            "--port",
            "0",
            "--socket",
            str(sock),
            "--interval",
            "3",
            "--timeout-ms",
            "2000",
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def first_answer(proc: subprocess.Popen[bytes], sock: Path) -> tuple[int, float]:
    """The first /-/ready status, and how long after the start it came."""
    began = time.monotonic()
    while True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - began < 30, "no answer on the socket"
        try:
            status, _ = unix_get(sock, "/-/ready")
        except OSError:
            time.sleep(0.02)
            continue
        return status, time.monotonic() - began


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, float]]:
    env = env_with_standin(tmp_path)
    # The same server without GPU detection: what starting it costs on this machine.
    plain = start_api({**env, "SMICAST_NO_GPU": "1"}, tmp_path / "plain.sock")
    try:
        _, baseline_s = first_answer(plain, tmp_path / "plain.sock")
    finally:
        stop(plain)
    sock = tmp_path / "s.sock"
    proc = start_api(env, sock)
    try:
        yield proc, sock, baseline_s
    finally:
        stop(proc)


def test_api_listens_at_once_and_reports_the_hung_reader(
    api: tuple[subprocess.Popen[bytes], Path, float],
) -> None:
    proc, sock, baseline_s = api
    status, took_s = first_answer(proc, sock)
    # Served while nvmlInit hangs, before the first cycle's 2 s timeout is up, and within
    # a second of when the same server without GPUs answers (room for a loaded machine).
    assert status == 503
    assert took_s < 1.5 * baseline_s + 1.0, (took_s, baseline_s)
    metrics_status, metrics = unix_get(sock, "/metrics")
    assert metrics_status == 200 and up(metrics.decode()) == "0"
    while status != 200:  # the first cycle ends after one timeout
        time.sleep(0.05)
        status, _ = unix_get(sock, "/-/ready")
    status, metrics = unix_get(sock, "/metrics")
    assert status == 200
    text = metrics.decode()
    assert up(text) == "1"
    assert 'smicast_reader_errors_total{reader="nvidia",section="gpu",kind="timeout"}' in text
    assert "all_smi_memory_total_bytes" in text
    status, body = unix_get(sock, "/snapshot")
    frame = json.loads(body)
    assert frame["memory"] and gpu_errors(frame)[0]["kind"] == "timeout"

    events = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    events.settimeout(10)
    events.connect(str(sock))
    events.sendall(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
    sse = SseReader(events)
    try:
        assert sse.status == 200
        frame = json.loads(sse.events(1)[0]["data"])
    finally:
        sse.close()
    assert frame["memory"] and gpu_errors(frame)[0]["kind"] == "timeout"


def test_record_keeps_recording_the_other_sections(tmp_path: Path) -> None:
    out = tmp_path / "t.ndjson"
    done = subprocess.run(
        smicast(
            "record",
            "-o",
            str(out),
            "--interval",
            "0.3",
            "--duration",
            "1.5",
            "--timeout-ms",
            "200",
            "--include",
            "gpu,memory",
        ),
        env=env_with_standin(tmp_path),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    frames = list(iter_frames([out]))
    assert len(frames) >= 4
    assert all(f.memory for f in frames)
    assert all(
        isinstance(f.errors, list) and [e.kind for e in f.errors] == ["timeout"] for f in frames
    )
