"""One agent, watched: `/events` pushed, else `/snapshot` polled, else `/metrics` polled.

The transport is found once per host: an `/events` answer that is not an event
stream (404, 405, another Content-Type) moves the host to `/snapshot`, and one
of those that is not JSON moves it to `/metrics` (all-smi before its streaming
API). 401 and 403 never move it: they are a wrong token, said in the tile.

Resuming: every reconnect sends `Last-Event-ID`, so a smicast agent replays the
frames the viewer missed (the last 64). A restarted agent counts from 1 again,
so after nothing listened on its address (connection refused) the viewer asks
for `Last-Event-ID: 0`: every frame the new process still holds. A restart the
viewer did not see (the first frame after a reconnect has an id no greater than
the last one) is caught the same way with one more reconnect. So "no gap" means every frame an agent
published while the viewer watched or could resume arrives, in order; frames a
stopped agent never collected are not a gap.

Bounded per host: one SSE event or poll answer of at most `max_frame_bytes`
(an endless line or a huge frame ends that connection with an error, after
reading no more than the bound), one frame handed on at a time, one error
string of 200 characters. Connects in flight are bounded by a semaphore shared
by every host.

A stream that ends is probed with one plain TCP (or Unix socket) connect: a
refusal shows the host offline at once, while the stream itself reconnects
after the agent's `retry:` hint plus jitter.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import msgspec

from smicast.fleet.link import HostLink, HostState, Transport
from smicast.fleet.metrics_text import parse_metrics
from smicast.readings import LazyFrame
from smicast.record.sse import SseParser
from smicast.schema import SCHEMA_VERSION, Snapshot

if TYPE_CHECKING:
    import aiohttp

MAX_FRAME_BYTES: Final = 4 << 20
CONNECT_TIMEOUT_S: Final = 5.0
HEARTBEAT_S: Final = 5  # asked of the agent: a silent socket for 3 of these is dead
MIN_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 10.0
FAST_REFUSED_RETRIES: Final = 20  # then a host that keeps refusing backs off like any other
_READ_BYTES: Final = 64 << 10
INCLUDE: Final = "gpu,cpu,memory,chassis,process"


class _FallBack(Exception):
    """This endpoint is not what the transport needs; try the next one."""


class _Failure(Exception):
    """This attempt failed; the message is what the tile shows."""


@dataclass(frozen=True)
class ClientOptions:
    poll_interval_s: float = 3.0
    max_frame_bytes: int = MAX_FRAME_BYTES
    min_backoff_s: float = MIN_BACKOFF_S
    max_backoff_s: float = MAX_BACKOFF_S
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    token: str | None = None
    ssl_context: ssl.SSLContext | None = None
    include: str = INCLUDE


# A pushed or /snapshot frame comes as a LazyFrame (its readings decoded, the rest when a
# view asks); a /metrics answer is parsed into a Snapshot.
Emit = Callable[[HostLink, Snapshot | LazyFrame], None]
Notify = Callable[[HostLink], None]


class HostClient:
    def __init__(
        self,
        link: HostLink,
        session: aiohttp.ClientSession,
        connects: asyncio.Semaphore,
        emit: Emit,
        options: ClientOptions,
        *,
        notify: Notify = lambda link: None,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.link = link
        self.session = session
        self.connects = connects
        self.emit = emit
        self.notify = notify
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._retry_s: float | None = None
        self._failures = 0
        # Nothing listened on the agent's address: whatever answers next is a new process.
        self._process_gone = False
        self._sequential = False  # this agent's ids went up by one at least once

    # -- the loop ---------------------------------------------------------------
    async def run(self) -> None:
        import aiohttp

        link = self.link
        order = [Transport.SSE, Transport.SNAPSHOT, Transport.METRICS]
        while True:
            transport = link.transport or Transport.SSE
            try:
                if transport is Transport.SSE:
                    await self._stream()
                else:
                    await self._poll(transport)
            except _FallBack as exc:
                following = order.index(transport) + 1
                if following < len(order):
                    link.transport = order[following]
                    continue
                link.transport = None
                self._fail(f"no /events, /snapshot or /metrics: {exc}", HostState.OFFLINE)
            except _Failure as exc:
                self._fail(str(exc), HostState.OFFLINE)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if _refused(exc):
                    self._process_gone = True
                self._fail(_describe(exc), HostState.OFFLINE)
            await self.sleep(self._delay())

    def _fail(self, message: str, state: HostState) -> None:
        self._failures += 1
        self.link.fail(message, state)
        self.notify(self.link)

    def _delay(self) -> float:
        """Seconds before the next attempt, jittered by up to a quarter.

        After a clean end, the agent's `retry:`. While nothing listens on the agent's
        address (refused: the machine is up, the agent is restarting), the shortest
        backoff for the first FAST_REFUSED_RETRIES tries: a refusal costs one round trip, and reconnecting before the new
        process has published more than the catch-up it sends back keeps every frame.
        Other failures (timeouts, errors) back off exponentially.
        """
        opts = self.options
        base = self._retry_s if self._retry_s is not None else opts.min_backoff_s
        if self._process_gone and self._failures <= FAST_REFUSED_RETRIES:
            base = opts.min_backoff_s
        elif self._failures > 1:
            base = max(base, opts.min_backoff_s * 2 ** min(self._failures - 1, 16))
        base = min(base, opts.max_backoff_s)
        return base + self.rng.uniform(0, base / 4)

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        spec = self.link.spec
        if spec.username is not None:
            pair = f"{spec.username}:{spec.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif self.options.token is not None:
            headers["Authorization"] = f"Bearer {self.options.token}"
        return headers

    async def _open(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.options.connect_timeout_s, sock_read=HEARTBEAT_S * 3
        )
        async with self.connects:
            self.link.connects += 1
            return await self.session.get(
                url,
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
                ssl=self.options.ssl_context or True,
            )

    # -- /events ----------------------------------------------------------------
    async def _stream(self) -> None:
        link, opts = self.link, self.options
        url = link.spec.url(f"/events?include={opts.include}&heartbeat={HEARTBEAT_S}")
        headers = self._headers("text/event-stream")
        if self._process_gone and link.last_event_id is not None:
            link.last_event_id = "0"  # a new process counts from 1: ask for all it holds
            link.restarts += 1
        # The first connect sends none: the view waits up to one interval for a live frame,
        # but the agent does no catch-up work (with 1,000 viewers' hosts connecting at once,
        # a catch-up per connect made the first complete view six times slower).
        if link.last_event_id is not None:
            headers["Last-Event-ID"] = link.last_event_id
        first_connect = link.last_event_id is None
        resp = await self._open(url, headers)
        try:
            _check(resp, "text/event-stream")
            self._process_gone = False
            link.transport = Transport.SSE
            link.opened(self.clock())
            await self._read_stream(resp, first_connect)
        finally:
            resp.release()
        # The stream ended: the agent stopped, restarted, or a proxy cut it.
        self._failures = 0
        link.fail("stream ended", HostState.RECONNECTING)
        self.notify(link)
        if not await self._reachable():
            self._process_gone = True
            link.fail("connection refused", HostState.OFFLINE)
            self.notify(link)

    async def _read_stream(self, resp: aiohttp.ClientResponse, first_connect: bool) -> None:
        link = self.link
        parser = SseParser(self.options.max_frame_bytes)
        resumed_from = _as_int(link.last_event_id or "0")
        gap_base = None if first_connect else resumed_from  # the id the next one should follow
        first = True
        async for chunk in resp.content.iter_chunked(_READ_BYTES):
            for event in parser.feed(chunk):
                if event.event == "lag":
                    if not first_connect:
                        link.lost += _dropped(event.data)
                    gap_base = None  # the agent has counted that gap itself
                    continue
                if event.event == "error":
                    link.problem("agent: " + event.data[:200].decode("utf-8", "replace"))
                    self.notify(link)
                    continue
                if event.event != "snapshot":
                    continue
                seq = _as_int(event.id)
                if first and seq is not None and resumed_from is not None and seq <= resumed_from:
                    # The agent counts from 1 again: it was restarted. Fetch what it has.
                    link.restarts += 1
                    link.last_event_id = "0"
                    self._retry_s = 0.0
                    return
                first = False
                frame = self._decode(event.data)
                if frame is None:
                    continue
                if seq is not None and gap_base is not None:
                    # Only an agent that numbers frames 1, 2, 3... can show a gap (all-smi's
                    # ids are timestamps in seconds).
                    if seq == gap_base + 1:
                        self._sequential = True
                    elif seq > gap_base + 1 and self._sequential:
                        link.lost += seq - gap_base - 1
                gap_base = seq
                link.last_event_id = event.id
                link.frame(self.clock())
                self._failures = 0
                self.emit(link, frame)
            if parser.oversized:
                link.invalid += 1
                raise _Failure(
                    f"an event over {self.options.max_frame_bytes >> 20} MiB; connection closed"
                )
        if parser.retry_ms is not None:
            self._retry_s = min(parser.retry_ms / 1000, self.options.max_backoff_s)

    def _decode(self, data: bytes) -> LazyFrame | None:
        try:
            frame = LazyFrame.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.link.invalid += 1
            self.link.problem(f"invalid frame: {str(exc)[:120]}")
            self.notify(self.link)
            return None
        schema = frame.readings.schema
        if schema != SCHEMA_VERSION:
            self.link.invalid += 1
            self.link.problem(f"schema {schema} frame; this viewer reads {SCHEMA_VERSION}")
            self.notify(self.link)
            return None
        return frame

    async def _reachable(self) -> bool:
        spec = self.link.spec
        try:
            if spec.unix_path is not None:
                opened = asyncio.open_unix_connection(spec.unix_path)
            else:
                parts = urlsplit(spec.base_url)
                default = 443 if parts.scheme == "https" else 80
                opened = asyncio.open_connection(parts.hostname, parts.port or default)
            _, writer = await asyncio.wait_for(opened, self.options.connect_timeout_s)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    # -- /snapshot and /metrics -------------------------------------------------
    async def _poll(self, transport: Transport) -> None:
        link, every = self.link, self.options.poll_interval_s
        started = self.clock()
        while True:
            snap = await self._fetch(transport)
            link.transport = transport
            link.frame(self.clock(), polled_every_s=every)
            self._failures = 0
            self.emit(link, snap)
            started += every
            wait = started - self.clock()
            if wait < 0:  # an overrun: start again from now rather than bunching polls
                started, wait = self.clock(), 0.0
            await self.sleep(wait)

    async def _fetch(self, transport: Transport) -> Snapshot | LazyFrame:
        if transport is Transport.SNAPSHOT:
            url = self.link.spec.url(f"/snapshot?include={self.options.include}")
            resp = await self._open(url, self._headers("application/json"))
            try:
                _check(resp, "application/json")
                body = await _read_bounded(resp, self.options.max_frame_bytes)
            finally:
                resp.release()
            frame = self._decode(body)
            if frame is None:
                raise _Failure(self.link.error or "invalid /snapshot answer")
            return frame
        resp = await self._open(self.link.spec.url("/metrics"), self._headers("text/plain"))
        try:
            _check(resp, "text/plain")
            body = await _read_bounded(resp, self.options.max_frame_bytes)
        finally:
            resp.release()
        return parse_metrics(body.decode("utf-8", "replace"), self.link.label, _wall())


def _wall() -> float:
    import time

    return time.time()


def _check(resp: aiohttp.ClientResponse, content_type: str) -> None:
    if resp.status in (401, 403):
        raise _Failure(f"HTTP {resp.status}: the agent refused the credentials")
    if resp.status in (404, 405, 406, 501) or (
        resp.status == 200 and resp.content_type != content_type
    ):
        raise _FallBack(f"HTTP {resp.status} {resp.content_type}")
    if resp.status != 200:
        raise _Failure(f"HTTP {resp.status}")


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise _Failure(f"answer of {resp.content_length} bytes is over the {limit >> 20} MiB bound")
    out = bytearray()
    async for chunk in resp.content.iter_chunked(_READ_BYTES):
        out += chunk
        if len(out) > limit:
            raise _Failure(f"answer over the {limit >> 20} MiB bound")
    return bytes(out)


def _as_int(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    return int(text)


def _dropped(data: bytes) -> int:
    try:
        value = msgspec.json.decode(data).get("dropped", 0)
    except (msgspec.DecodeError, AttributeError):
        return 0
    return value if type(value) is int and 0 <= value < 1 << 40 else 0


def _refused(exc: BaseException) -> bool:
    import aiohttp

    return isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.errno in (
        errno.ECONNREFUSED,
        errno.ENOENT,
    )


def _describe(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error.strerror or "cannot connect"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the connection broke mid-frame"
    text = str(exc) or type(exc).__name__
    return text
