"""`record --from`: the snapshot frames of another agent's `/events` stream.

Works with smicast and all-smi agents alike (`event: snapshot`, `lag`, `error`,
`: keep-alive`). On a dropped connection it reconnects with backoff and sends
`Last-Event-ID`; an agent that keeps history resumes there, all-smi ignores it
and carries on with its next live frame. An answer that can never succeed (a
4xx, not an event stream, another schema) stops the recording instead.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec

from smicast.encode import decode_snapshot, select
from smicast.include import Section, ordered
from smicast.record.sse import SseParser
from smicast.schema import SCHEMA_VERSION, Snapshot

if TYPE_CHECKING:
    import aiohttp

CONNECT_TIMEOUT_S: Final = 10.0
IDLE_TIMEOUT_S: Final = 90.0  # three missed 30 s keep-alives: the connection is dead
HEARTBEAT_S: Final = 15  # asked of the agent, so a quiet stream still proves it is alive
MIN_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 30.0
_READ_BYTES: Final = 64 << 10


class SourceError(Exception):
    """The source cannot be recorded from; the message is what the user sees."""


@dataclass(frozen=True)
class SourceUrl:
    """Where the `/events` stream is: an http(s) URL, or a Unix socket path."""

    url: str  # what is requested (for a Unix socket, the path on that socket)
    unix_path: str | None = None

    @property
    def label(self) -> str:
        """What the trace header lists as the host."""
        return f"unix:{self.unix_path}" if self.unix_path else self.url


def parse_source(text: str) -> SourceUrl:
    """`http://host:9090`, `https://host/prefix/events` or `unix:/run/smicast.sock`."""
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        path = path[2:] if path.startswith("//") else path
        if not path:
            raise ValueError(
                "invalid --from: unix: needs a socket path, e.g. unix:/run/smicast.sock"
            )
        return SourceUrl("http://localhost/events", unix_path=path)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"invalid --from {text!r}: expected http://HOST[:PORT], https://... or unix:PATH"
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ValueError(f"invalid --from {text!r}: {exc}") from None
    path = parts.path.rstrip("/")
    if not path.endswith("/events"):
        path += "/events"
    netloc = parts.netloc.rpartition("@")[2]  # never write credentials into a trace header
    return SourceUrl(urlunsplit((parts.scheme, netloc, path, "", "")))


def _stream_url(source: SourceUrl, sections: frozenset[Section]) -> str:
    query = urlencode(
        {"include": ",".join(s.value for s in ordered(sections)), "heartbeat": HEARTBEAT_S}
    )
    return f"{source.url}?{query}"


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return min(seconds, MAX_BACKOFF_S) if seconds >= 0 else None


async def sse_frames(
    source: SourceUrl,
    sections: frozenset[Section],
    *,
    warn: Callable[[str], None],
    sleep: Callable[[float], Any] = asyncio.sleep,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[Snapshot]:
    """Frames as they arrive, forever (the caller stops by cancelling)."""
    import aiohttp

    own = session is None
    if session is None:
        connector: aiohttp.BaseConnector = (
            aiohttp.UnixConnector(path=source.unix_path)
            if source.unix_path
            else aiohttp.TCPConnector()
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=CONNECT_TIMEOUT_S, sock_read=IDLE_TIMEOUT_S
        )
        session = aiohttp.ClientSession(connector=connector, timeout=timeout)
    url = _stream_url(source, sections)
    last_id: str | None = None
    backoff = MIN_BACKOFF_S
    try:
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            wait_s = backoff
            try:
                async with session.get(url, headers=headers, allow_redirects=False) as resp:
                    retry = _check_response(resp, source)
                    if retry is not None:
                        wait_s = retry
                        warn(f"{source.label}: HTTP {resp.status}; retrying in {wait_s:g} s")
                    else:
                        parser = SseParser()
                        async for chunk in resp.content.iter_chunked(_READ_BYTES):
                            for event in parser.feed(chunk):
                                last_id = event.id if event.id is not None else last_id
                                frame = _frame(event.event, event.data, sections, warn)
                                if frame is not None:
                                    backoff = MIN_BACKOFF_S
                                    yield frame
                        if parser.retry_ms is not None:
                            backoff = min(max(parser.retry_ms / 1000, 0.0), MAX_BACKOFF_S)
                        wait_s = backoff
                        warn(f"{source.label}: stream ended; reconnecting in {wait_s:g} s")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                warn(f"{source.label}: {exc or type(exc).__name__}; retrying in {wait_s:g} s")
            await sleep(wait_s)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
    finally:
        if own:
            await session.close()


def _check_response(resp: aiohttp.ClientResponse, source: SourceUrl) -> float | None:
    """None when this is an event stream; seconds to wait for a passing failure; raises otherwise."""
    if resp.status in (408, 429) or resp.status >= 500:
        return _retry_after(resp.headers.get("Retry-After")) or MIN_BACKOFF_S
    if resp.status != 200:
        raise SourceError(f"{source.label}: HTTP {resp.status} {resp.reason or ''}".rstrip())
    if resp.content_type != "text/event-stream":
        raise SourceError(
            f"{source.label}: not an event stream (Content-Type {resp.content_type}); "
            "is this a smicast or all-smi agent?"
        )
    return None


def _frame(
    event: str, data: bytes, sections: frozenset[Section], warn: Callable[[str], None]
) -> Snapshot | None:
    if event == "lag":
        warn(f"the source dropped frames before sending them: {data.decode('utf-8', 'replace')}")
        return None
    if event == "error":
        warn(f"the source reported: {data.decode('utf-8', 'replace')}")
        return None
    if event != "snapshot":
        return None
    try:
        snap = decode_snapshot(data)
    except msgspec.DecodeError as exc:
        version = _schema_of(data)
        if version is None or version == SCHEMA_VERSION:
            warn(f"skipped a frame that is not a schema-{SCHEMA_VERSION} snapshot: {exc}")
            return None
        snap_schema = version
    else:
        snap_schema = snap.schema
        if snap_schema == SCHEMA_VERSION:
            return select(snap, sections)
    raise SourceError(
        f"the source sends schema {snap_schema}; this smicast records schema {SCHEMA_VERSION}"
    )


class _Versioned(msgspec.Struct):
    schema: Any = None


def _schema_of(data: bytes) -> int | None:
    try:
        version = msgspec.json.decode(data, type=_Versioned).schema
    except msgspec.DecodeError:
        return None
    return version if type(version) is int else None
