"""A real smicast API server on 127.0.0.1 (port 0) in a background thread, and raw clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from smicast.api.cors import CorsPolicy
from smicast.api.server import Server, open_tcp, open_unix
from smicast.api.state import ApiState
from smicast.schema import Snapshot

T = TypeVar("T")


async def _never() -> AsyncIterator[Snapshot]:
    await asyncio.Event().wait()
    yield  # type: ignore[misc]  # pragma: no cover


class RunningServer:
    """Runs `Server.run` on its own loop; `publish` hands frames in from the test thread."""

    def __init__(
        self,
        state: ApiState,
        *,
        manual: bool = True,
        unix_path: Path | None = None,
        policy: CorsPolicy | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
        **options: Any,  # more Server fields (limits, shutdown_grace_s)
    ) -> None:
        self.state = state
        self._loop_factory = loop_factory
        sockets = open_tcp("127.0.0.1", 0)
        self.port = sockets[0].getsockname()[1]
        if unix_path is not None:
            sockets.append(open_unix(unix_path))
        self.unix_path = unix_path
        self._server = Server(
            state,
            sockets,
            unix_path=unix_path,
            frames=_never() if manual else None,
            policy=policy or CorsPolicy(),
            announce=lambda line: None,
            **options,
        )
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "server did not start"

    def _main(self) -> None:
        loop = self._loop_factory()
        self.loop = loop
        self._stop = asyncio.Event()
        loop.call_soon(self._ready.set)
        loop.run_until_complete(self._server.run(self._stop))
        loop.close()

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run `fn` on the server's loop thread and return its result."""
        done = threading.Event()
        box: list[Any] = []

        def run() -> None:
            try:
                box.append((True, fn()))
            except BaseException as exc:  # re-raised in the test thread
                box.append((False, exc))
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(timeout), "server loop did not answer"
        ok, value = box[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def publish(self, snapshot: Snapshot) -> int:
        return self.call(lambda: self.state.publish(snapshot).seq)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.call(predicate):
            assert time.monotonic() < deadline, "condition not reached in time"
            time.sleep(0.01)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(5)


@contextlib.contextmanager
def running(state: ApiState, **kwargs: Any) -> Iterator[RunningServer]:
    server = RunningServer(state, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def raw_request(
    port: int,
    target: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    rcvbuf: int | None = None,
    timeout: float = 5.0,
) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


class SseReader:
    """Reads an SSE response from a raw socket: status, headers, then de-chunked events."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.body = b""
        self.eof = False
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if h)
        }

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise EOFError
        self.buf += data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _next_chunk(self) -> bytes:
        size = int(self._read_until(b"\r\n"), 16)
        while len(self.buf) < size + 2:
            self._fill()
        chunk, self.buf = self.buf[:size], self.buf[size + 2 :]
        if size == 0:
            self.eof = True
            raise EOFError
        return chunk

    def next_event(self) -> dict[str, str]:
        """The next event (fields joined per SSE rules); comments come back as {'comment': ...}."""
        while b"\n\n" not in self.body:
            self.body += self._next_chunk()
        block, self.body = self.body.split(b"\n\n", 1)
        event: dict[str, str] = {}
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                event["comment"] = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = event[name] + "\n" + value if name in event else value
        return event

    def events(self, count: int, kind: str | None = "snapshot") -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        while len(out) < count:
            ev = self.next_event()
            if kind is None or ev.get("event") == kind:
                out.append(ev)
        return out

    def close(self) -> None:
        self.sock.close()
