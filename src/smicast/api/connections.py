"""Connections that do not behave: a head deadline, an idle timeout and a ceiling.

Every accepted connection is wrapped in a thin protocol that forwards to aiohttp's
own and tells the `ConnectionGuard` where the connection stands:

- FRESH: accepted, no complete request head yet. Closed when its head deadline
  (counted from the accept, never extended by a trickle of bytes) passes.
- IDLE: a keep-alive connection between requests. Closed after the idle timeout.
- HEAD: a keep-alive connection that has started its next request head; it gets a
  new head deadline from its first byte.
- BUSY: a complete head has arrived (seen in the bytes, before aiohttp's handler may
  get to it) or a request is being handled, an SSE stream included. Never timed out
  here, never evicted.

At the ceiling a new connection evicts the oldest FRESH one, else the oldest IDLE or
HEAD one; when every connection is busy the newcomer gets a 503 and is closed. Each
state is a dict in entry order, so its front holds the earliest deadline: the sweep
and the eviction only ever look at fronts.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import resource
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Final, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("smicast.api")

DEFAULT_HEAD_TIMEOUT_S: Final = 10.0
DEFAULT_IDLE_TIMEOUT_S: Final = 75.0
MAX_DEFAULT_CONNECTIONS: Final = 65_536  # each costs memory too, whatever the descriptor limit
MIN_CONNECTIONS: Final = 16
MAX_CONNECTIONS: Final = 1_000_000
HEAD_TIMEOUT_BOUNDS_S: Final = (1.0, 300.0)
IDLE_TIMEOUT_BOUNDS_S: Final = (1.0, 3600.0)
MAX_EARLY_BYTES: Final = 16 * 1024  # held before aiohttp sees them; its own limits apply after
_REJECT: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n"
    b"Retry-After: 1\r\n\r\n"
)


def head_ends(data: bytes) -> bool:
    """An empty line: CRLF CRLF, or the bare LF that lenient parsers (aiohttp's too) take."""
    return b"\n\r\n" in data or b"\n\n" in data


def raise_nofile_soft_limit() -> int:
    """Lift RLIMIT_NOFILE's soft limit to the hard limit where allowed; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def descriptor_ceiling(soft_limit: int) -> int:
    """Connections that fit under `soft_limit` descriptors, leaving room for files and readers."""
    reserve = min(max(soft_limit // 10, 64), 1024)
    return max(MIN_CONNECTIONS, soft_limit - reserve)


@dataclass(frozen=True)
class ConnectionLimits:
    head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    max_connections: int | None = None  # None: derived from RLIMIT_NOFILE

    def resolve(self, soft_limit: int | None = None) -> ConnectionLimits:
        """Fix the ceiling: at most what the descriptor limit allows (raised first)."""
        fits = descriptor_ceiling(raise_nofile_soft_limit() if soft_limit is None else soft_limit)
        wanted = self.max_connections
        if wanted is None:
            ceiling = min(fits, MAX_DEFAULT_CONNECTIONS)
        elif wanted > fits:
            log.warning(
                "--max-connections %d does not fit the descriptor limit; using %d", wanted, fits
            )
            ceiling = fits
        else:
            ceiling = wanted
        return ConnectionLimits(self.head_timeout_s, self.idle_timeout_s, ceiling)


class State(enum.Enum):
    FRESH = "fresh"
    HEAD = "head"
    IDLE = "idle"
    BUSY = "busy"


class GuardedProtocol(asyncio.Protocol):
    """One connection: holds its bytes until the first request head is complete, then
    hands the connection to aiohttp's handler and forwards everything to it.

    Until then a connection costs this object and at most `MAX_EARLY_BYTES`: no aiohttp
    handler, no task, no parser; so a crowd of half-open connections is cheap to hold
    and cheap to accept.
    """

    __slots__ = ("bucket", "early", "guard", "inner", "make_handler", "state", "tail", "transport")

    def __init__(self, guard: ConnectionGuard, make_handler: Callable[[], RequestHandler]) -> None:
        self.guard = guard
        self.make_handler = make_handler
        self.inner: RequestHandler | None = None  # aiohttp's, once the first head is in
        self.early = b""  # what arrived before that
        self.state: State | None = None  # None: not tracked (refused, closed by the guard)
        self.bucket: OrderedDict[GuardedProtocol, float] | None = None  # the guard's, waiting
        self.transport: asyncio.Transport | None = None
        self.tail = b""  # the last bytes of a later unfinished head (keep-alive)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (TCP, TLS) are Transports in all but their class
        self.transport = stream = cast(asyncio.Transport, transport)
        if not self.guard.admit(self):
            stream.write(_REJECT)
            stream.close()

    def data_received(self, data: bytes) -> None:
        inner = self.inner
        if inner is None:
            if self.state is not None:
                self._before_handler(data)
            return
        if self.state is State.IDLE:
            self.guard.move(self, State.HEAD)
        if self.state is State.HEAD:
            # A complete head is a request in hand from now on, even while the loop is
            # too busy to start its handler: the deadline is for the client's bytes.
            if head_ends(self.tail + data):
                self.tail = b""
                self.guard.move(self, State.BUSY)
            else:
                self.tail = (self.tail + data)[-3:]
        inner.data_received(data)

    def _before_handler(self, data: bytes) -> None:
        early = self.early + data
        complete = head_ends(early[max(0, len(self.early) - 3) :])
        if not complete and len(early) <= MAX_EARLY_BYTES:
            self.early = early
            return
        # Complete, or too long for any head aiohttp would take: let it answer.
        self.early = b""
        self.guard.move(self, State.BUSY)
        transport = self.transport
        assert transport is not None
        inner = self.inner = self.make_handler()
        self.guard.handed_over(self)
        inner.connection_made(transport)
        if self.inner is not None:  # (connection_made may have closed it)
            inner.data_received(early)

    def eof_received(self) -> None:
        if self.inner is not None:
            self.inner.eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.state is not None:
            self.guard.forget(self)
        inner, self.inner = self.inner, None
        if inner is not None:  # closed by the guard too: aiohttp must let go of its handler
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def close(self) -> None:
        if self.inner is not None:
            self.inner.force_close()
        elif self.transport is not None:
            self.transport.close()


class ConnectionGuard:
    """Tracks every connection of one server; touched only on the event loop thread."""

    def __init__(self, limits: ConnectionLimits, *, now: Callable[[], float] | None = None) -> None:
        assert limits.max_connections is not None, "resolve() the limits first"
        self.limits = limits
        self.ceiling = limits.max_connections
        self._now = now
        # {connection: deadline} per waiting state, in entry order (so in deadline order);
        # a connection keeps a reference to its own (no enum hashing per event). Ordered
        # dicts: a plain dict emptied from the front scans its deleted slots on every look
        # at the front, and the front is all the sweep and the eviction look at.
        self._fresh: OrderedDict[GuardedProtocol, float] = OrderedDict()
        self._head: OrderedDict[GuardedProtocol, float] = OrderedDict()
        self._idle: OrderedDict[GuardedProtocol, float] = OrderedDict()
        self._waiting = {State.FRESH: self._fresh, State.HEAD: self._head, State.IDLE: self._idle}
        self._busy: set[GuardedProtocol] = set()
        self._open = 0
        self._by_handler: dict[RequestHandler, GuardedProtocol] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = {"head_timeout": 0, "idle_timeout": 0, "evicted": 0, "rejected": 0}

    # -- wiring ------------------------------------------------------------------
    def factory(self, make_handler: Callable[[], RequestHandler]) -> Callable[[], GuardedProtocol]:
        """A protocol factory for `loop.create_server` around aiohttp's own."""
        return lambda: GuardedProtocol(self, make_handler)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def mark_busy(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            conn = self._by_handler.get(request.protocol)
            if conn is not None and conn.state is not None:
                self.move(conn, State.BUSY)
            try:
                return await handler(request)
            finally:
                if conn is not None and conn.state is State.BUSY:
                    self.move(conn, State.IDLE)

        return mark_busy

    # -- bookkeeping -------------------------------------------------------------
    @property
    def count(self) -> int:
        return self._open

    def counts(self) -> dict[str, int]:
        out = {s.value: len(d) for s, d in self._waiting.items()}
        out[State.BUSY.value] = len(self._busy)
        return out

    def metrics_text(self) -> str:
        """Self-metrics: connections by state, closed by reason, the ceiling."""
        out = [
            "# HELP smicast_http_connections Open HTTP connections by state (fresh: no complete "
            "request yet; head: keep-alive, next request started; idle: keep-alive; busy: "
            "request or stream in hand).",
            "# TYPE smicast_http_connections gauge",
        ]
        out += [f'smicast_http_connections{{state="{k}"}} {v}' for k, v in self.counts().items()]
        out += [
            "# HELP smicast_http_connections_max The connection ceiling.",
            "# TYPE smicast_http_connections_max gauge",
            f"smicast_http_connections_max {self.ceiling}",
            "# HELP smicast_http_connections_closed_total Connections the server closed, by reason.",
            "# TYPE smicast_http_connections_closed_total counter",
        ]
        out += [
            f'smicast_http_connections_closed_total{{reason="{k}"}} {v}'
            for k, v in self.closed.items()
        ]
        return "\n".join(out) + "\n"

    def _time(self) -> float:
        if self._now is None:
            self._now = asyncio.get_running_loop().time
        return self._now()

    def admit(self, conn: GuardedProtocol) -> bool:
        if self._open >= self.ceiling and not self._evict_one():
            self.closed["rejected"] += 1
            return False
        self._open += 1
        self.move(conn, State.FRESH)
        self._arm()
        return True

    def move(self, conn: GuardedProtocol, state: State) -> None:
        self._leave(conn)
        conn.state = state
        if state is State.BUSY:
            self._busy.add(conn)
            return
        if state is State.FRESH:
            bucket, wait_s = self._fresh, self.limits.head_timeout_s
        elif state is State.IDLE:
            bucket, wait_s = self._idle, self.limits.idle_timeout_s
        else:
            bucket, wait_s = self._head, self.limits.head_timeout_s
        bucket[conn] = self._time() + wait_s
        conn.bucket = bucket

    def handed_over(self, conn: GuardedProtocol) -> None:
        """`conn` now has aiohttp's handler (its requests find their way back here)."""
        assert conn.inner is not None
        self._by_handler[conn.inner] = conn

    def forget(self, conn: GuardedProtocol) -> None:
        if conn.state is not None:
            self._open -= 1
        self._leave(conn)
        conn.state = None
        if conn.inner is not None:
            self._by_handler.pop(conn.inner, None)

    def _leave(self, conn: GuardedProtocol) -> None:
        if conn.state is State.BUSY:
            self._busy.discard(conn)
        elif conn.bucket is not None:
            conn.bucket.pop(conn, None)
            conn.bucket = None

    def _evict_one(self) -> bool:
        """Close the oldest connection without a request in hand; False if there is none."""
        for waiting in (self._fresh, self._idle, self._head):
            if waiting:
                self._drop(next(iter(waiting)))
                self.closed["evicted"] += 1
                return True
        return False

    def _drop(self, conn: GuardedProtocol) -> None:
        self.forget(conn)
        conn.close()

    # -- deadlines ---------------------------------------------------------------
    def _arm(self) -> None:
        if self._sweeper is None:
            period = min(1.0, self.limits.head_timeout_s / 4, self.limits.idle_timeout_s / 4)
            self._sweeper = asyncio.get_running_loop().call_later(period, self._sweep, period)

    def _sweep(self, period: float) -> None:
        self._sweeper = None
        self.expire()
        if self._open:
            self._sweeper = asyncio.get_running_loop().call_later(period, self._sweep, period)

    def expire(self) -> None:
        """Close every connection whose head deadline or idle timeout has passed."""
        now = self._time()
        for state, waiting in self._waiting.items():
            reason = "idle_timeout" if state is State.IDLE else "head_timeout"
            while waiting:
                conn, deadline = next(iter(waiting.items()))
                if deadline > now:
                    break
                self._drop(conn)
                self.closed[reason] += 1

    def close_waiting(self) -> None:
        """Shutdown: connections without a request in hand go at once."""
        for waiting in self._waiting.values():
            for conn in list(waiting):
                self._drop(conn)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


async def serve(
    guard: ConnectionGuard,
    make_handler: Callable[[], RequestHandler],
    sock: socket.socket,
    *,
    ssl: SSLContext | None = None,
    backlog: int = 4096,
) -> asyncio.AbstractServer:
    """Accept on `sock` with every connection under `guard`."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        guard.factory(make_handler), sock=sock, ssl=ssl, backlog=backlog
    )
