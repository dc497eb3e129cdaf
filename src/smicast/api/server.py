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
from typing import Any, Final

from aiohttp import web

from smicast.api import cors, energy, handlers, sse
from smicast.api.access import AccessControl
from smicast.api.connections import ConnectionGuard, ConnectionLimits, serve
from smicast.api.loop import collection_loop, replay_loop
from smicast.api.state import ApiState, log
from smicast.schema import Snapshot

# Bounded request heads: a request line or header field larger than this is refused (400/431).
MAX_LINE_BYTES: Final = 8190
MAX_FIELD_BYTES: Final = 8190
MAX_HEADERS: Final = 64
SHUTDOWN_GRACE_S: Final = 1.0


class ListenError(OSError):
    """A listener could not be opened; the message names the address."""


def build_app(
    state: ApiState,
    policy: cors.CorsPolicy,
    guard: ConnectionGuard | None = None,
    access: AccessControl | None = None,
) -> web.Application:
    app = web.Application(client_max_size=1024)  # we take no request bodies
    app[handlers.STATE] = state
    if guard is not None:
        app.middlewares.append(guard.middleware())  # first: a request in hand is never evicted
    if access is not None:
        access.install(app)  # TLS, credentials, web-config headers
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
        if guard is not None:
            guard.close_waiting()

    app.on_shutdown.append(end_streams)
    return app


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


def open_tcp(
    host: str | None, port: int, resolve: Callable[..., list[Any]] = socket.getaddrinfo
) -> list[socket.socket]:
    """Listen on `host:port`: on every address `host` resolves to (`localhost`: ::1 and
    127.0.0.1), all on the same port; no host means every interface, IPv6 and IPv4."""
    targets: list[tuple[int, tuple[Any, ...]]] = []
    if host is None:
        if socket.has_ipv6 and _ipv6_available():
            targets.append((socket.AF_INET6, ("::", port)))
        else:
            targets.append((socket.AF_INET, ("0.0.0.0", port)))
    else:
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise ListenError(errno.EINVAL, f"{host}:{port}: {exc.strerror}") from exc
        for fam, *_, addr in infos:
            if fam in (socket.AF_INET, socket.AF_INET6) and (fam, tuple(addr)) not in targets:
                targets.append((fam, tuple(addr)))
    # Port 0 on several addresses: the first bind picks the port and the others take it,
    # which another program may hold on one of them; then start again with a new port.
    attempts = _EPHEMERAL_ATTEMPTS if port == 0 and len(targets) > 1 else 1
    for attempt in range(attempts):
        try:
            out = _listen_all(targets, port, dual_stack=host is None)
        except ListenError as exc:
            if exc.errno == errno.EADDRINUSE and attempt + 1 < attempts:
                continue
            raise
        if not out:
            raise ListenError(errno.EADDRNOTAVAIL, f"cannot listen on any address of {host}:{port}")
        return out
    raise AssertionError("unreachable")


_EPHEMERAL_ATTEMPTS: Final = 8


def _listen_all(
    targets: list[tuple[int, tuple[Any, ...]]], port: int, *, dual_stack: bool
) -> list[socket.socket]:
    out: list[socket.socket] = []
    try:
        for family, addr in targets:
            sock = _listen(
                family, (addr[0], port, *addr[2:]), dual_stack=dual_stack, some=len(targets) > 1
            )
            if sock is None:
                continue
            out.append(sock)
            port = port or sock.getsockname()[1]  # port 0: the others take the first one's
    except ListenError:
        for sock in out:
            sock.close()
        raise
    return out


def _listen(
    family: int, addr: tuple[Any, ...], *, dual_stack: bool, some: bool
) -> socket.socket | None:
    """A listening socket; None for an address this host lacks (::1 without IPv6) when it
    is `some` of several."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # `::` serves IPv4 too; a named address only itself
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind(addr)
        sock.listen(4096)
    except OSError as exc:
        sock.close()
        shown = f"[{addr[0]}]:{addr[1]}" if family == socket.AF_INET6 else f"{addr[0]}:{addr[1]}"
        if some and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            log.warning("not listening on %s: %s", shown, exc.strerror)
            return None
        raise ListenError(exc.errno, f"cannot listen on {shown}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def describe(sock: socket.socket, tls: bool = False) -> str:
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{host}]:{port}"
    return f"{scheme}://{host}:{port}"


@dataclass
class Server:
    state: ApiState
    sockets: Sequence[socket.socket]
    unix_path: Path | None = None
    frames: AsyncIterator[Snapshot] | None = None  # a recording instead of the collector
    policy: cors.CorsPolicy = field(default_factory=cors.CorsPolicy)
    announce: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    shutdown_grace_s: float = SHUTDOWN_GRACE_S
    access: AccessControl | None = None  # --web-config / --auth-token-file
    guard: ConnectionGuard | None = field(default=None, init=False)
    web_server: web.Server | None = field(default=None, init=False)  # aiohttp's, while running

    async def run(self, stop: asyncio.Event) -> None:
        limits = self.limits.resolve()
        self.guard = self.state.connections = guard = ConnectionGuard(limits)
        app = build_app(self.state, self.policy, guard, self.access)
        tls = self.access.ssl_context() if self.access is not None else None
        runner = web.AppRunner(
            app,
            handle_signals=False,
            handler_cancellation=True,  # a client that hangs up frees its slot at once
            # a backstop only: the guard's head and idle deadlines always come first
            keepalive_timeout=limits.idle_timeout_s + limits.head_timeout_s,
            # aiohttp waits this long twice (for handlers, then for their cancellation)
            shutdown_timeout=self.shutdown_grace_s / 2,
            access_log=None,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
        )
        await runner.setup()
        producer: asyncio.Task[None] | None = None
        listeners: list[asyncio.AbstractServer] = []
        assert runner.server is not None
        self.web_server = runner.server
        try:
            for sock in self.sockets:
                ssl = tls if sock.family != socket.AF_UNIX else None
                listeners.append(await serve(guard, runner.server, sock, ssl=ssl))
                self.announce(f"smicast api: listening on {describe(sock, tls=ssl is not None)}")
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
            for listener in listeners:
                listener.close()
            await runner.cleanup()
            if self.unix_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.unix_path.unlink()


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
