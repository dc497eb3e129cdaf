"""Shared helpers for the benchmarks: servers in subprocesses, ports, percentiles, sampling.

Everything here targets 127.0.0.1 only and is bounded in time: a server that does
not come up within its timeout is killed and reported, never waited on forever.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


# -- ports and limits -----------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def raise_nofile(wanted: int | None = None) -> int:
    """Raise this process's RLIMIT_NOFILE soft limit (up to the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if wanted is None else min(max(wanted, soft), hard)
    if hard == resource.RLIM_INFINITY and wanted is None:
        target = max(soft, 1 << 20)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_hard_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


# -- statistics -----------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default) of already sorted `values`."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    k = (len(values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return float(values[lo] + (values[hi] - values[lo]) * (k - lo))


def summarize(values: Iterable[float]) -> dict[str, float]:
    """p50/p99/max of `values` (nan when empty)."""
    data = sorted(values)
    return {
        "p50": percentile(data, 50),
        "p99": percentile(data, 99),
        "max": float(data[-1]) if data else float("nan"),
        "n": float(len(data)),
    }


def median(values: Iterable[float]) -> float:
    data = [v for v in values if v == v]  # drop NaN
    return float(statistics.median(data)) if data else float("nan")


# -- a server in a subprocess ---------------------------------------------------
@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_tail: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    # https and credentials for wait_ready when the server runs with a web config
    scheme: str = "http"
    opener: urllib.request.OpenerDirector | None = None
    _ready_line: threading.Event = field(default_factory=threading.Event)
    _drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    def _drain_output(self, stream: Iterable[bytes], marker: bytes | None) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log_tail.append(line)
            if marker is None or marker in raw:
                self._ready_line.set()

    def start_drain(self, marker: bytes | None) -> None:
        assert self.proc.stderr is not None
        self._drain = threading.Thread(
            target=self._drain_output, args=(self.proc.stderr, marker), daemon=True
        )
        self._drain.start()

    def wait_ready(self, path: str, timeout_s: float) -> None:
        """Until `path` answers 200 (and the listening line was printed, if any)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n" + "\n".join(self.log_tail)
                )
            if self._ready_line.is_set() or self._drain is None:
                try:
                    open_url = self.opener.open if self.opener else urllib.request.urlopen
                    with open_url(self.base_url + path, timeout=2) as resp:
                        if resp.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} not ready within {timeout_s:.0f} s:\n" + "\n".join(self.log_tail)
        )

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout_s)
        if self._drain is not None:
            self._drain.join(1.0)
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_smicast(
    *,
    port: int | None = None,
    interval_s: float = 1.0,
    simulate: str = "nvidia:8",
    processes: bool = False,
    env: dict[str, str] | None = None,
    extra: Sequence[str] = (),
    ready_timeout_s: float = 30.0,
    scheme: str = "http",
    opener: urllib.request.OpenerDirector | None = None,
) -> ServerProcess:
    """`smicast api --simulate ... --bind 127.0.0.1 --port P`, ready (first frame published)."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "smicast",
        "api",
        "--simulate",
        simulate,
        "--interval",
        str(interval_s),
        "--port",
        str(port),
        "--bind",
        HOST,
        "--no-dashboard",
        *(["--processes"] if processes else []),
        *extra,
    ]
    raise_nofile()  # the child inherits it: 10,000 streams need 10,000 descriptors
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=str(REPO),
    )
    server = ServerProcess("smicast api", proc, port, scheme=scheme, opener=opener)
    server.start_drain(b"smicast api: listening on")
    server.wait_ready("/-/ready", ready_timeout_s)
    return server


def start_node_exporter(
    *,
    port: int | None = None,
    extra: Sequence[str] = (),
    ready_timeout_s: float = 20.0,
    scheme: str = "http",
    opener: urllib.request.OpenerDirector | None = None,
) -> ServerProcess:
    """Debian's prometheus-node-exporter on 127.0.0.1 with its default collectors."""
    if not Path(NODE_EXPORTER).exists():
        raise FileNotFoundError(
            f"{NODE_EXPORTER} not found (apt-get install prometheus-node-exporter)"
        )
    port = port or free_port()
    cmd = [
        NODE_EXPORTER,
        f"--web.listen-address={HOST}:{port}",
        # Its default (40 parallel scrapes) would answer 503 to part of a 50-connection load;
        # lift it so every request is served and the comparison is about throughput.
        "--web.max-requests=0",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = ServerProcess("node_exporter", proc, port, scheme=scheme, opener=opener)
    server.start_drain(None)
    server.wait_ready("/metrics", ready_timeout_s)
    return server


# -- sampling a process's CPU and memory -----------------------------------------
class ProcSampler:
    """Samples RSS of a process (and its children) in a thread; CPU by cpu_times deltas."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.proc = psutil.Process(pid)
        self.every_s = every_s
        self.max_rss = 0
        self.last_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._window_rss_max = 0

    def _rss(self) -> int:
        try:
            return int(self.proc.memory_info().rss)
        except psutil.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._rss()
            self.last_rss = rss
            self.max_rss = max(self.max_rss, rss)
            self._window_rss_max = max(self._window_rss_max, rss)
            self._stop.wait(self.every_s)

    def start(self) -> ProcSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process so far (all its threads)."""
        try:
            t = self.proc.cpu_times()
        except psutil.Error:
            return float("nan")
        return float(t.user + t.system)

    def run_queue_wait_s(self) -> float:
        """Seconds the main thread (the event loop) spent runnable but not running.

        From /proc/PID/schedstat (Linux): time waiting for a CPU, i.e. preempted or
        not yet scheduled; NaN where the kernel does not provide it.
        """
        try:
            fields = Path(f"/proc/{self.proc.pid}/schedstat").read_text().split()
            return int(fields[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return float("nan")

    def window(self) -> CpuWindow:
        self._window_rss_max = self._rss()
        return CpuWindow(self, time.monotonic(), self.cpu_seconds(), self.run_queue_wait_s())

    def window_rss_max(self) -> int:
        return self._window_rss_max


@dataclass
class CpuWindow:
    sampler: ProcSampler
    wall0: float
    cpu0: float
    wait0: float

    def cpu_percent(self) -> float:
        """CPU over the window, in % of one core."""
        wall = time.monotonic() - self.wall0
        return 100.0 * (self.sampler.cpu_seconds() - self.cpu0) / wall if wall > 0 else float("nan")

    def wait_percent(self) -> float:
        """Run-queue wait of the event loop thread over the window, in % of wall time."""
        wall = time.monotonic() - self.wall0
        return (
            100.0 * (self.sampler.run_queue_wait_s() - self.wait0) / wall
            if wall > 0
            else float("nan")
        )


def cpu_seconds_of(pids: Iterable[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def machine_note() -> str:
    load = os.getloadavg()
    return (
        f"host: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"python {sys.version.split()[0]}"
    )


def mib(n_bytes: float) -> float:
    return n_bytes / (1024 * 1024)
