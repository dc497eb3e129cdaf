"""Access to the TCP listeners: TLS, authentication, extra headers and the rate limit.

One `AccessControl` holds what `--web-config` and `--auth-token-file` say. It re-reads them
when they change (the config file, the token file, and the certificate, key and CA
files they name), as the exporter-toolkit does, but looks at most once a second and
only by `stat`: a new size, mtime or inode triggers a reload. A file that no longer
parses keeps the previous configuration in force and is logged once per version.

The Unix socket is left open: it is mode 0600, so only its owner and root reach it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from smicast.api.auth import Authenticator, load_tokens
from smicast.api.handlers import json_error
from smicast.api.tls import SwitchingContext, build_context, limitations, peer_names
from smicast.api.webconfig import RateLimit, WebConfig, WebConfigError, load

log = logging.getLogger("smicast.api")

RELOAD_CHECK_S: Final = 1.0
DEFAULT_HSTS: Final = "max-age=31536000"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FileKey = tuple[int, int, int, int] | None


def _file_key(path: Path) -> FileKey:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class RateLimiter:
    """A token bucket: `burst` requests at once, then one per `interval_s` (Go's rate.Limiter)."""

    def __init__(self, limit: RateLimit, monotonic: Callable[[], float]) -> None:
        self._limit = limit
        self._monotonic = monotonic
        self._tokens = float(limit.burst)
        self._at = monotonic()

    def allow(self) -> bool:
        now = self._monotonic()
        refill = (now - self._at) / self._limit.interval_s
        self._tokens = min(float(self._limit.burst), self._tokens + refill)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class _Active:
    config: WebConfig
    context: ssl.SSLContext | None
    auth: Authenticator
    limiter: RateLimiter | None
    files: tuple[Path, ...]
    keys: tuple[FileKey, ...]


class AccessControl:
    def __init__(
        self,
        config_path: Path | None,
        token_path: Path | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_path = config_path
        self.token_path = token_path
        self._monotonic = monotonic
        self._checked_at = monotonic()
        self._refused: tuple[FileKey, ...] | None = None
        self._active = self._build()  # WebConfigError here is a startup error (exit 2)

    # -- what the server asks -------------------------------------------------------------
    @property
    def tls(self) -> bool:
        return self._active.context is not None

    @property
    def authenticates(self) -> bool:
        """Something stands between a network client and the data."""
        tls = self._active.config.tls
        return self._active.auth.required or (
            tls is not None and tls.client_auth_type == "RequireAndVerifyClientCert"
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The listeners' context; each handshake takes the configuration current then."""
        if self._active.context is None:
            return None
        return SwitchingContext(self._context_for_handshake)

    def notes(self) -> list[str]:
        tls = self._active.config.tls
        return limitations(tls) if tls is not None else []

    @property
    def has_credentials(self) -> bool:
        return self._active.auth.required

    def install(self, app: web.Application) -> None:
        """Before CORS and routing, so a 404 or a preflight needs credentials too."""
        app.middlewares.append(self._middleware)
        app.on_response_prepare.append(self._add_headers)

    # -- reloading ------------------------------------------------------------------------
    def _build(self) -> _Active:
        config = load(self.config_path) if self.config_path is not None else WebConfig()
        tokens = load_tokens(self.token_path) if self.token_path is not None else ()
        context = build_context(config.tls) if config.tls is not None else None
        files = tuple(p for p in (self.config_path, self.token_path) if p is not None)
        files += config.tls.files() if config.tls is not None else ()
        return _Active(
            config=config,
            context=context,
            auth=Authenticator(config.users, tokens),
            limiter=RateLimiter(config.rate_limit, self._monotonic) if config.rate_limit else None,
            files=files,
            keys=tuple(_file_key(p) for p in files),
        )

    def maybe_reload(self) -> None:
        now = self._monotonic()
        if now - self._checked_at < RELOAD_CHECK_S:
            return
        self._checked_at = now
        active = self._active
        keys = tuple(_file_key(p) for p in active.files)
        if keys == active.keys or keys == self._refused:
            return
        try:
            fresh = self._build()
            if (fresh.context is None) != (active.context is None):
                raise WebConfigError("TLS cannot be switched on or off without a restart")
        except (ValueError, OSError) as exc:  # WebConfigError, and anything ssl raises
            self._refused = keys
            log.warning("web config not reloaded, the previous one stays in force: %s", exc)
            return
        self._refused = None
        self._active = fresh
        log.info("web config reloaded (%d users)", len(fresh.config.users))

    def _context_for_handshake(self) -> ssl.SSLContext:
        self.maybe_reload()
        context = self._active.context
        assert context is not None  # TLS cannot be switched off by a reload
        return context

    # -- per request ----------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if _on_unix_socket(request):
            return await handler(request)
        self.maybe_reload()
        active = self._active
        if active.limiter is not None and not active.limiter.allow():
            return json_error(429, "rate_limited", "too many requests")
        tls = active.config.tls
        if tls is not None and tls.client_allowed_sans:
            transport = request.transport
            names = peer_names(transport.get_extra_info("peercert") if transport else None)
            if not names.intersection(tls.client_allowed_sans):
                return json_error(
                    403, "forbidden", "client certificate names are not allowed", _CLOSE
                )
        if not await active.auth.allowed(request.headers.get("Authorization")):
            response = json_error(401, "unauthorized", "authentication required")
            for challenge in active.auth.schemes:
                response.headers.add("WWW-Authenticate", challenge)
            return response
        return await handler(request)

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in self._active.config.headers.items():
            response.headers.setdefault(name, value)  # a route's own value wins, as in Go
        if request.secure:
            response.headers.setdefault("Strict-Transport-Security", DEFAULT_HSTS)


_CLOSE: Final = {"Connection": "close"}


def _on_unix_socket(request: web.Request) -> bool:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and sock.family == socket.AF_UNIX


def exposure_warnings(
    sockets: Sequence[socket.socket], access: AccessControl | None, processes: bool
) -> list[str]:
    """What the startup log must say about a listener that the network can reach."""
    exposed = [s for s in sockets if s.family != socket.AF_UNIX and not _loopback(s)]
    if not exposed:
        return []
    out = []
    if processes and (access is None or not access.authenticates):
        out.append(
            "--processes with a listener beyond loopback and no authentication: GPU "
            "processes' command lines and user names are readable by anyone who can reach "
            "this port (use --web-config with basic_auth_users, or --auth-token-file)"
        )
    if access is not None and access.has_credentials and not access.tls:
        out.append(
            "authentication without TLS: passwords and tokens cross the network in clear "
            "text (add tls_server_config to the web config)"
        )
    return out


def _loopback(sock: socket.socket) -> bool:
    host = str(sock.getsockname()[0]).split("%", 1)[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def from_options(web_config: str | None, token_file: str | None) -> AccessControl | None:
    """Access control for `smicast api`'s options, or None when neither is given."""
    if not web_config and not token_file:
        return None
    try:
        return AccessControl(
            Path(web_config) if web_config else None,
            Path(token_file) if token_file else None,
        )
    except WebConfigError:
        raise
    except (ValueError, OSError) as exc:  # from ssl, with no key to name
        raise WebConfigError(f"{web_config or token_file}: {exc}") from exc


def env_web_config(environ: os._Environ[str] | dict[str, str] = os.environ) -> str | None:
    return environ.get("SMICAST_API_WEB_CONFIG", "").strip() or None
