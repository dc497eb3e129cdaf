"""`GET /events`: Server-Sent Events, one `event: snapshot` per frame.

The handler admits the client (cap counted exactly), sends headers, the `retry:`
hint and any frames it missed (`Last-Event-ID`), registers the transport with the
bus and then only waits: the publisher writes frames, a timer writes heartbeats.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Final

from aiohttp import web

from smicast.api.bus import KEEPALIVE_CHUNK, Subscriber
from smicast.api.handlers import NO_STORE, STATE, json_error
from smicast.api.state import ApiState, log
from smicast.include import parse_http

MAX_WINDOW_S: Final = 86_400.0
DEFAULT_HEARTBEAT_S: Final = 30.0
RETRY_MS: Final = 3000
MAX_LOGGED_ID_BYTES: Final = 256


class BadQuery(ValueError):
    pass


def _seconds(raw: str | None, name: str) -> float | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a number of seconds, got {raw[:32]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BadQuery(f"{name} must be a finite number of seconds >= 0, got {raw[:32]!r}")
    return value


def resolve_throttle(raw: str | None, interval_s: float) -> float:
    """Seconds between emitted frames: at least the interval, at most a day."""
    floor = min(interval_s, MAX_WINDOW_S)
    value = _seconds(raw, "throttle")
    if not value:
        return floor
    return min(max(value, floor), MAX_WINDOW_S)


def resolve_heartbeat(raw: str | None) -> float:
    value = _seconds(raw, "heartbeat")
    if not value:
        return DEFAULT_HEARTBEAT_S
    return min(max(value, 1.0), MAX_WINDOW_S)


def parse_last_event_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    shown = raw.encode("utf-8", "replace")[:MAX_LOGGED_ID_BYTES].decode("utf-8", "ignore")
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        log.debug("ignoring Last-Event-ID %r", shown)
        return None
    log.debug("resuming after Last-Event-ID %s", shown)
    return int(text)


def _min_gap(throttle_s: float, interval_s: float) -> float:
    # Frames arrive every interval with some jitter; a frame a little early must not be
    # dropped, or a throttle equal to a multiple of the interval would double the gap.
    return 0.0 if throttle_s <= interval_s else throttle_s - interval_s / 2


async def events(request: web.Request) -> web.StreamResponse:
    state: ApiState = request.app[STATE]
    try:
        sections = parse_http(request.query.get("include"))
        throttle_s = resolve_throttle(request.query.get("throttle"), state.interval_s)
        heartbeat_s = resolve_heartbeat(request.query.get("heartbeat"))
    except BadQuery as exc:
        return json_error(400, "bad_request", str(exc))
    last_id = parse_last_event_id(request.headers.get("Last-Event-ID"))

    bus = state.bus
    if not bus.try_reserve(state.max_subscribers):
        return json_error(
            503,
            "subscriber_cap_exceeded",
            f"SSE subscriber cap {state.max_subscribers} reached; retry later or raise "
            "SMICAST_API_MAX_SSE_SUBSCRIBERS",
            {"Retry-After": "5"},
        )
    try:
        resp = web.StreamResponse(
            headers={**NO_STORE, "Content-Type": "text/event-stream", "Connection": "keep-alive"}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        # Through aiohttp's writer once, so the headers are on the wire before our own chunks.
        await resp.write(b"retry: %d\n\n" % RETRY_MS)
        transport = request.transport
        if transport is None or transport.is_closing():
            return resp
        loop = asyncio.get_running_loop()
        now = bus.now()
        sub = Subscriber(
            transport, sections, _min_gap(throttle_s, state.interval_s), loop.create_future(), now
        )
        if last_id is not None and last_id < bus.seq:
            gone, held = bus.frames_after(last_id)
            sub.catch_up(held, gone, now)
        bus.add(sub)
        timer = _Heartbeat(sub, heartbeat_s, bus.now, loop)
        try:
            await sub.done
        finally:
            timer.cancel()
            bus.remove(sub)
        return resp
    finally:
        bus.release()


class _Heartbeat:
    """Writes `: keep-alive` when a stream has been quiet for `every_s`."""

    def __init__(
        self,
        sub: Subscriber,
        every_s: float,
        now: Callable[[], float],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._sub, self._every, self._now, self._loop = sub, every_s, now, loop
        self._handle = loop.call_later(every_s, self._fire)

    def _fire(self) -> None:
        sub, now = self._sub, self._now()
        if sub.done.done():
            return
        due = sub.last_write + self._every
        if now >= due:
            if not sub.write(KEEPALIVE_CHUNK, now):
                return
            due = now + self._every
        self._handle = self._loop.call_later(due - now, self._fire)

    def cancel(self) -> None:
        self._handle.cancel()
