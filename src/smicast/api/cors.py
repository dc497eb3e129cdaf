"""Deny-by-default CORS from `SMICAST_API_CORS_ALLOWED_ORIGINS` (or all-smi's `ALL_SMI_*` name).

Unset or blank: no CORS header is ever sent, so browsers keep telemetry same-origin.
`*`: any origin (logged loudly). Otherwise a comma-separated exact allowlist.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from smicast.envconfig import lookup

log = logging.getLogger("smicast.api")

ALLOW_METHODS: Final = "GET, OPTIONS"
ALLOW_HEADERS: Final = "accept, content-type, last-event-id"
_MAX_ORIGIN_BYTES: Final = 512


@dataclass(frozen=True)
class CorsPolicy:
    any_origin: bool = False
    origins: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str] = os.environ) -> CorsPolicy:
        env = lookup("API_CORS_ALLOWED_ORIGINS", environ)  # all-smi's name is the fallback
        if env is None:
            return cls()
        raw = env.value
        if raw == "*":
            log.warning(
                "%s=*: any web page can read this host's telemetry "
                "(process names, users, host name); prefer an explicit origin list",
                env.name,
            )
            return cls(any_origin=True)
        origins = set()
        for entry in raw.split(","):
            origin = entry.strip().rstrip("/")
            if not origin:
                continue
            if (
                not origin.isascii()
                or any(c in origin for c in "\r\n\0 ")
                or len(origin) > _MAX_ORIGIN_BYTES
            ):
                log.warning("ignoring invalid CORS origin %r", origin[:64])
                continue
            origins.add(origin)
        return cls(origins=frozenset(origins))

    @property
    def enabled(self) -> bool:
        return self.any_origin or bool(self.origins)

    def allow_origin(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None


def add_vary(response: web.StreamResponse, name: str) -> None:
    """Add `name` to the response's Vary list, keeping what is there."""
    present = response.headers.get("Vary", "")
    if name.lower() in (v.strip().lower() for v in present.split(",")):
        return
    response.headers["Vary"] = f"{present}, {name}" if present.strip() else name


def install(app: web.Application, policy: CorsPolicy) -> None:
    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        if not policy.enabled:
            return
        # With CORS on, whether the headers below are sent depends on Origin, so every
        # answer varies by it, including one to a request without an allowed Origin.
        add_vary(response, "Origin")
        allowed = policy.allow_origin(request.headers.get("Origin"))
        if allowed is None:
            return
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS

    @web.middleware
    async def preflight(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "OPTIONS":
            # An unknown path is 404 for OPTIONS too; a known one answers the preflight.
            route_error = getattr(request.match_info, "http_exception", None)
            if isinstance(route_error, web.HTTPNotFound):
                raise route_error
            return web.Response(status=204, headers={"Allow": "GET, HEAD, OPTIONS"})
        return await handler(request)

    app.middlewares.append(preflight)
    app.on_response_prepare.append(add_headers)
