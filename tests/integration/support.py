"""Helpers for the integration suite: find external tools, start processes, read HTTP and SSE.

Every process a test starts listens on 127.0.0.1 or a Unix socket under the test's
temporary directory, and every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 10.0

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(name: str, *known_paths: str) -> str:
    """The path of an external program the test drives.

    Missing locally: the test is skipped. Missing under CI: the test fails, because
    CI installs every tool (scripts/install-system-deps.sh) and a gap is a broken setup.
    `known_paths` covers Debian locations outside a non-root PATH, such as /usr/sbin/nginx.
    """
    found = shutil.which(name)
    if found is None:
        found = next((p for p in known_paths if os.access(p, os.X_OK)), None)
    if found is not None:
        return found
    message = f"{name} is not installed (scripts/install-system-deps.sh installs it)"
    if in_ci():
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for tools that need a number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None],
    timeout_s: float,
    what: str,
    log_path: Path | None = None,
    interval_s: float = 0.1,
) -> T:
    """Call `probe` until it returns something other than None; fail after `timeout_s`.

    On failure the message names what was awaited and ends with `log_path`'s tail.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            tail = log_path.read_text(errors="replace")[-4000:] if log_path else ""
            pytest.fail(
                f"timed out after {timeout_s:g} s waiting for {what}"
                + (f"; {log_path.name}:\n{tail}" if log_path else ""),
                pytrace=False,
            )
        time.sleep(interval_s)


def wait_for_port(port: int, timeout_s: float, what: str, log_path: Path | None = None) -> None:
    def accepting() -> bool | None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return None

    wait_until(accepting, timeout_s, what, log_path)


@dataclass
class HttpResult:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(url: str, headers: Mapping[str, str] | None = None) -> HttpResult:
    """GET over TCP; any status comes back as a result instead of an exception."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
            return HttpResult(
                resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpResult(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def running(
    argv: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a program with stdout and stderr in `log_path`; stop it on the way out."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield proc
    finally:
        stop_process(proc)


# -- smicast ---------------------------------------------------------------------------

_TCP_LINE = re.compile(r"smicast api: listening on http://127\.0\.0\.1:(\d+)")
_UNIX_LINE = re.compile(r"smicast api: listening on unix:(\S+)")


@dataclass
class SmicastServer:
    process: subprocess.Popen[bytes]
    port: int
    socket_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def smicast_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "smicast", "api", *args]


@contextlib.contextmanager
def smicast_server(
    directory: Path,
    *args: str,
    port: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[SmicastServer]:
    """`smicast api` on 127.0.0.1 (a free port unless `port`) and `directory/s.sock`, ready.

    `args` pick the source (`--simulate nvidia:8`, `--replay FILE`) and any extra options;
    `port` reuses a known port (a restart), else a free one is picked; `environ` adds
    environment variables (the server's SMICAST_* settings are otherwise unset).
    Yields once `/-/ready` answers 200, i.e. after the first collection cycle.
    """
    sock = directory / "s.sock"
    log_path = directory / "smicast.log"
    # An explicit free port: `--port 0` means "no TCP listener", as in all-smi.
    port = port or free_port()
    argv = smicast_argv(
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--socket",
        str(sock),
        "--interval",
        "1",
        *args,
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SMICAST_API_CORS_ALLOWED_ORIGINS", None)
    env.pop("SMICAST_API_MAX_SSE_SUBSCRIBERS", None)
    env.update(environ or {})
    with running(argv, log_path, env) as proc:

        def listening() -> bool | None:
            text = log_path.read_text(errors="replace")
            if proc.poll() is not None:
                pytest.fail(
                    f"smicast api exited with {proc.returncode} before listening:\n{text}",
                    pytrace=False,
                )
            tcp, unix = _TCP_LINE.search(text), _UNIX_LINE.search(text)
            if tcp and unix:
                assert int(tcp.group(1)) == port, text
                assert unix.group(1) == str(sock), text
                return True
            return None

        wait_until(listening, STARTUP_TIMEOUT_S, "smicast api to listen", log_path)
        server = SmicastServer(proc, port, sock, log_path)
        wait_until(
            lambda: True if http_get(f"{server.url}/-/ready").status == 200 else None,
            STARTUP_TIMEOUT_S,
            "smicast api to become ready",
            log_path,
        )
        yield server


# -- Server-Sent Events ------------------------------------------------------------------


@dataclass
class SseMessage:
    """One SSE event, or one comment line (a heartbeat), with its arrival time."""

    arrived_at: float
    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


class SseStream:
    """A plain HTTP/1.1 client for `text/event-stream`.

    A reader thread parses the stream and stamps each message as it arrives, so two
    streams read side by side get comparable arrival times. Reads from the queue are
    bounded by the caller; the socket's own timeout bounds the thread.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        socket_timeout_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.opened_at = time.monotonic()
        self.conn = http.client.HTTPConnection(host, port, timeout=socket_timeout_s)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.ended_at: float | None = None
        self.error: BaseException | None = None
        self._queue: queue.Queue[SseMessage | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, name="sse-reader", daemon=True)
        self._thread.start()

    def __enter__(self) -> SseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread
        self._thread.join(STOP_TIMEOUT_S)
        self.response.close()
        self.conn.close()

    def _pump(self) -> None:
        try:
            while (message := self._parse_one()) is not None:
                self._queue.put(message)
        except Exception as exc:  # a timeout or reset ends the stream; the test sees why
            self.error = exc
        self.ended_at = time.monotonic()
        self._queue.put(None)

    def _line(self) -> str | None:
        try:
            raw = self.response.readline(1 << 20)
        except http.client.IncompleteRead:
            raw = b""  # the peer hung up inside the chunked body
        return raw.decode("utf-8").rstrip("\r\n") if raw else None

    def _parse_one(self) -> SseMessage | None:
        fields: dict[str, str] = {}
        data: list[str] = []
        while (line := self._line()) is not None:
            if line.startswith(":"):
                if not fields and not data:
                    return SseMessage(time.monotonic(), comment=line[1:].strip())
            elif line == "":
                if fields or data:
                    return SseMessage(
                        time.monotonic(),
                        event=fields.get("event", "message"),
                        id=fields.get("id"),
                        data="\n".join(data),
                        fields=fields,
                    )
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value
        return None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def read_for(self, seconds: float) -> list[SseMessage]:
        """Every message that arrives within `seconds`; returns early when the stream ends."""
        out: list[SseMessage] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if message is None:
                self._queue.put(None)  # keep the end visible to later reads
                break
            out.append(message)
        return out

    def events(self, name: str, count: int, timeout_s: float) -> list[SseMessage]:
        """The next `count` events called `name`; fails after `timeout_s`."""
        found: list[SseMessage] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < count:
            left = deadline - time.monotonic()
            try:
                message = self._queue.get(timeout=left) if left > 0 else None
            except queue.Empty:
                message = None
            if message is None:
                if self.ended:
                    self._queue.put(None)
                pytest.fail(
                    f"got {len(found)} of {count} {name!r} events "
                    f"({'stream ended' if self.ended else 'timed out'}; error: {self.error!r})",
                    pytrace=False,
                )
            if message.event == name:
                found.append(message)
        return found


@contextlib.contextmanager
def serve_http(
    handler: Callable[..., http.server.BaseHTTPRequestHandler],
    done: threading.Event | None = None,
) -> Iterator[str]:
    """An HTTP origin on 127.0.0.1 for the browser; `done` releases held streams."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="scripted-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        if done is not None:
            done.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
