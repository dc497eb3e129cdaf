"""The HTTP application, its listeners (TCP and a Unix socket) and an orderly shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiohttp import web

from smicast.api import cors, energy, handlers, sse
from smicast.api.loop import collection_loop, replay_loop
from smicast.api.state import ApiState
from smicast.schema import Snapshot

# Bounded request heads: a request line or header field larger than this is refused (400/431).
MAX_LINE_BYTES: Final = 8190
MAX_FIELD_BYTES: Final = 8190
MAX_HEADERS: Final = 64
SHUTDOWN_GRACE_S: Final = 1.0


class ListenError(OSError):
    """A listener could not be opened; the message names the address."""


def build_app(state: ApiState, policy: cors.CorsPolicy) -> web.Application:
    app = web.Application(client_max_size=1024)  # we take no request bodies
    app[handlers.STATE] = state
    if state.dashboard:
        app.router.add_get("/", handlers.dashboard)
        app.router.add_get("/static/{name}", handlers.static)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/snapshot", handlers.snapshot)
    app.router.add_get("/events", sse.events)
    app.router.add_get("/-/ready", handlers.ready)
    app.router.add_get("/energy", energy.energy)
    cors.install(app, policy)

    async def server_header(_: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = "smicast"  # no library versions to fingerprint

    app.on_response_prepare.append(server_header)

    async def end_streams(_: web.Application) -> None:
        state.bus.close_all()  # open SSE streams end now, not at the grace timeout

    app.on_shutdown.append(end_streams)
    return app


def default_socket_path(run_dir: Path = Path("/run")) -> Path:
    """`/run/smicast.sock` where this process may create files there, else `/tmp/smicast.sock`."""
    if os.access(run_dir, os.W_OK | os.X_OK):
        return run_dir / "smicast.sock"
    return Path("/tmp/smicast.sock")  # noqa: S108  (documented fallback, as all-smi)


def _socket_in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(str(path))
    except OSError:
        return False
    else:
        return True
    finally:
        probe.close()


def open_unix(path: Path) -> socket.socket:
    """Bind a Unix socket with mode 0600, replacing a stale socket file (never anything else)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ListenError(
                errno.EEXIST, f"unix:{path}: exists and is not a socket; refusing to replace it"
            )
        if _socket_in_use(path):
            raise ListenError(errno.EADDRINUSE, f"unix:{path}: another server is listening on it")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # no window in which the socket is reachable by others
    try:
        sock.bind(str(path))
        path.chmod(0o600)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ListenError(exc.errno, f"unix:{path}: {exc.strerror}") from exc
    finally:
        os.umask(old_umask)
    sock.setblocking(False)
    return sock


def open_tcp(host: str | None, port: int) -> list[socket.socket]:
    """Listen on `host:port`; no host means every interface, IPv6 and IPv4."""
    targets: list[tuple[int, str]] = []
    if host is None:
        if socket.has_ipv6 and _ipv6_available():
            targets.append((socket.AF_INET6, "::"))
        else:
            targets.append((socket.AF_INET, "0.0.0.0"))
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise ListenError(errno.EINVAL, f"{host}:{port}: {exc.strerror}") from exc
        targets.extend((fam, str(addr[0])) for fam, *_, addr in infos[:1])
    out = []
    for family, addr in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and host is None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual stack
            sock.bind((addr, port))
            sock.listen(4096)
        except OSError as exc:
            sock.close()
            shown = f"[{addr}]:{port}" if family == socket.AF_INET6 else f"{addr}:{port}"
            raise ListenError(exc.errno, f"cannot listen on {shown}: {exc.strerror}") from exc
        sock.setblocking(False)
        out.append(sock)
    return out


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def describe(sock: socket.socket) -> str:
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        return f"http://[{host}]:{port}"
    return f"http://{host}:{port}"


@dataclass
class Server:
    state: ApiState
    sockets: Sequence[socket.socket]
    unix_path: Path | None = None
    frames: AsyncIterator[Snapshot] | None = None  # a recording instead of the collector
    policy: cors.CorsPolicy = field(default_factory=cors.CorsPolicy)
    announce: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)

    async def run(self, stop: asyncio.Event) -> None:
        app = build_app(self.state, self.policy)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            handler_cancellation=True,  # a client that hangs up frees its slot at once
            shutdown_timeout=SHUTDOWN_GRACE_S,
            access_log=None,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
        )
        await runner.setup()
        producer: asyncio.Task[None] | None = None
        try:
            for sock in self.sockets:
                await web.SockSite(runner, sock).start()
                self.announce(f"smicast api: listening on {describe(sock)}")
            if self.frames is not None:
                producer = asyncio.create_task(replay_loop(self.state, self.frames, stop=stop))
            else:
                producer = asyncio.create_task(
                    collection_loop(self.state, stop=stop, now=self.state.bus.now)
                )
            await stop.wait()
        finally:
            if producer is not None:
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
            await runner.cleanup()
            if self.unix_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.unix_path.unlink()


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
