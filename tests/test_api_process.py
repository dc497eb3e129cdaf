"""`smicast api` as a real process: listeners, socket file, signals, exit statuses."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_harness import SseReader

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "SMICAST_NO_GPU": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smicast", "api", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )


def wait_listening(proc: subprocess.Popen[str], count: int) -> list[str]:
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 15
    while len(lines) < count:
        assert time.monotonic() < deadline, "server did not start"
        line = proc.stderr.readline()
        assert line, f"server exited: {proc.wait()}"
        if "listening on" in line:
            lines.append(line.strip())
    return lines


def reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def unix_sse(path: Path, target: str = "/events") -> SseReader:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    return SseReader(sock)


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "smicast.sock"


def test_tcp_and_socket_together_mode_0600_and_sigterm_ends_streams(sock_path: Path) -> None:
    port = free_port()
    proc = start_api(
        "--simulate",
        "nvidia:2",
        "--interval",
        "0.2",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--socket",
        str(sock_path),
    )
    try:
        lines = wait_listening(proc, 2)
        assert f"http://127.0.0.1:{port}" in lines[0] and f"unix:{sock_path}" in lines[1]
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
        tcp = socket.create_connection(("127.0.0.1", port), timeout=10)
        tcp.sendall(b"GET /events?include=gpu HTTP/1.1\r\nHost: x\r\n\r\n")
        streams = [SseReader(tcp), unix_sse(sock_path)]
        for s in streams:
            assert s.status == 200 and s.events(1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        for s in streams:  # each stream ends cleanly (terminating chunk), promptly
            with pytest.raises(EOFError):
                s.events(1000)
            s.close()
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 3
        assert not sock_path.exists()
    finally:
        reap(proc)


def test_stale_socket_file_is_replaced_but_other_files_are_not(tmp_path: Path) -> None:
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # bound, never listening: a leftover from a crashed server
    proc = start_api("--simulate", "nvidia:1", "--port", "0", "--socket", str(stale))
    try:
        wait_listening(proc, 1)
        sse = unix_sse(stale, "/-/ready")
        assert sse.status in (200, 503)
        sse.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        reap(proc)
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    result = subprocess.run(
        [sys.executable, "-m", "smicast", "api", "--port", "0", "--socket", str(regular)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert result.returncode == 1
    assert str(regular) in result.stderr and "not a socket" in result.stderr
    assert regular.read_text() == "keep me"


def test_no_listener_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smicast", "api", "--port", "0"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no listeners configured" in result.stderr


def test_bind_failure_names_the_address_and_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "smicast", "api", "--port", str(port), "--bind", "127.0.0.1"],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--interval", "0"], ["--interval", "abc"], ["--port", "70000"], ["--simulate", "bogus"]],
)
def test_bad_options_exit_2(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smicast", "api", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr


def test_default_bind_answers_on_ipv4_and_ipv6_loopback() -> None:
    port = free_port()
    proc = start_api("--simulate", "nvidia:1", "--interval", "0.2", "--port", str(port))
    try:
        wait_listening(proc, 1)
        targets = [(socket.AF_INET, "127.0.0.1")]
        if socket.has_ipv6:
            try:
                with socket.socket(socket.AF_INET6) as probe:
                    probe.bind(("::1", 0))
                targets.append((socket.AF_INET6, "::1"))
            except OSError:
                pass  # no IPv6 loopback in this sandbox
        for family, host in targets:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect((host, port))
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert s.recv(64).startswith(b"HTTP/1.1 200"), host
    finally:
        reap(proc)
