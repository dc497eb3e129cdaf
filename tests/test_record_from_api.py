"""`record --from` against a real `smicast api` process on loopback, including its restart."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from smicast.record.reader import TraceStats, iter_frames


def free_port() -> int:
    # `smicast api --port 0` means "no TCP" (as in all-smi), so pick a free port here.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def api(*args: str) -> Iterator[str]:
    """A `smicast api` process; yields the address it announced."""
    cmd = [sys.executable, "-m", "smicast", "api", "--simulate", "nvidia:2", "--interval", "0.2"]
    with subprocess.Popen(
        [*cmd, "--no-dashboard", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stderr is not None
        announced: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode(errors="replace").strip()
                if line.startswith("smicast api: listening on "):
                    announced.append(line.rsplit(" ", 1)[1])
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert ready.wait(20), "smicast api did not announce its address"
            yield announced[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            reader.join(5)


def frames_in(path: Path) -> int:
    with contextlib.suppress(Exception):
        return sum(1 for _ in iter_frames([path]))
    return 0


def wait_until(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def record(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "smicast", "record", "--flush-every", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_records_a_real_agent_over_tcp(tmp_path: Path) -> None:
    out = tmp_path / "remote.ndjson.zst"
    with api("--bind", "127.0.0.1", "--port", str(free_port())) as address:
        assert address.startswith("http://127.0.0.1:")
        with record("-o", str(out), "--from", address, "--include", "gpu,cpu") as proc:
            wait_until(lambda: frames_in(out) >= 3)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 0, err
    stats = TraceStats()
    frames = list(iter_frames([out], stats))
    assert len(frames) >= 3
    assert all(len(f.gpus) == 2 for f in frames)  # type: ignore[arg-type]
    assert all(f.memory is msgspec_unset() for f in frames)  # only what was asked for
    assert stats.header is not None
    assert stats.header.hosts == [f"{address}/events"] and stats.header.interval_ms == 0
    assert (stats.corrupt, stats.oversized) == (0, 0)


def test_records_over_a_unix_socket_across_an_agent_restart(tmp_path: Path) -> None:
    sock = tmp_path / "agent.sock"
    out = tmp_path / "remote.ndjson"
    with contextlib.ExitStack() as cleanup:
        with api("--port", "0", "--socket", str(sock)) as address:
            assert address == f"unix:{sock}"
            proc = cleanup.enter_context(record("-o", str(out), "--from", address))
            cleanup.callback(lambda: proc.poll() is None and proc.kill())
            wait_until(lambda: frames_in(out) >= 2)
        before = frames_in(out)
        with api("--port", "0", "--socket", str(sock)):
            wait_until(lambda: frames_in(out) >= before + 2)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert b"reconnecting" in err or b"retrying" in err
    assert frames_in(out) >= before + 2


def msgspec_unset() -> object:
    from msgspec import UNSET

    return UNSET
