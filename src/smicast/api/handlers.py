"""`/snapshot`, `/metrics`, `/-/ready` and the dashboard's files."""

from __future__ import annotations

import asyncio
import functools
from importlib import resources
from typing import Final

import msgspec
from aiohttp import web

from smicast.api.frame import Frame
from smicast.api.state import FRESH_COLLECT_TIMEOUT_S, ApiState, log
from smicast.encode import value_json
from smicast.include import parse_http

STATE: Final = web.AppKey("state", ApiState)
NO_STORE: Final = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
JSON_TYPE: Final = "application/json"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STATIC_TYPES: Final = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_TRUE: Final = frozenset({"1", "true", "yes"})


def json_error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = value_json({"error": error, "message": message, "schema": 1})
    return web.Response(
        status=status, body=body, content_type=JSON_TYPE, headers={**NO_STORE, **(headers or {})}
    )


async def _fresh_frame(state: ApiState) -> Frame:
    """The collection in flight (the loop's, or another request's), else a new one."""
    if state.collector is None:
        raise LookupError("no frame has been replayed yet")
    # shield: a client hanging up must not cancel the collection others wait for
    return await asyncio.wait_for(asyncio.shield(state.collect_frame()), FRESH_COLLECT_TIMEOUT_S)


async def snapshot(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    sections = parse_http(request.query.get("include"))
    pretty = request.query.get("pretty", "").strip().lower() in _TRUE
    frame = state.bus.latest
    if frame is None or state.bus.age_s(frame) > 2 * state.interval_s:
        try:
            frame = await _fresh_frame(state)
        except LookupError as exc:
            if frame is None:
                return json_error(503, "not_ready", str(exc), {"Retry-After": "1"})
        except (TimeoutError, OSError, RuntimeError) as exc:
            log.warning("fresh collection for /snapshot failed: %s", exc)
            if frame is None:
                return json_error(
                    503,
                    "collection_failed",
                    f"fresh collection failed: {exc}",
                    {"Retry-After": "1"},
                )
    body = frame.json(sections)
    if pretty:
        body = msgspec.json.format(body, indent=2)
    return web.Response(body=body + b"\n", content_type=JSON_TYPE, headers=NO_STORE)


async def metrics(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    frame = state.bus.latest
    headers = {"Cache-Control": "no-store"}
    if frame is None:
        body = state.baseline_metrics()
    elif "gzip" in request.headers.get("Accept-Encoding", "").lower():
        body = frame.metrics_gzip()
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    else:
        body = frame.metrics()
        headers["Vary"] = "Accept-Encoding"  # the plain answer depends on it as much
    return web.Response(body=body, content_type="text/plain", charset="utf-8", headers=headers)


async def ready(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not state.ready:
        return web.Response(
            status=503,
            text="smicast is not ready: no collection cycle has completed yet.\n",
            headers={"Cache-Control": "no-store", "Retry-After": "1"},
        )
    return web.Response(text="smicast is ready.\n", headers={"Cache-Control": "no-store"})


# Package data does not change while we run; bounded, since names come from requests.
@functools.lru_cache(maxsize=32)
def _static_file(name: str) -> bytes | None:
    try:
        return (resources.files("smicast.api") / "static" / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


async def dashboard(request: web.Request) -> web.StreamResponse:
    return _serve_static("index.html")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if "/" in name or name.startswith(".") or not any(name.endswith(s) for s in _STATIC_TYPES):
        raise web.HTTPNotFound()
    return _serve_static(name)


def _serve_static(name: str) -> web.Response:
    data = _static_file(name)
    if data is None:
        raise web.HTTPNotFound()
    ctype = _STATIC_TYPES[name[name.rindex(".") :]]
    return web.Response(
        body=data,
        content_type=ctype,
        charset="utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )
