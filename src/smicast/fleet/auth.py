"""Credentials and TLS for talking to agents; nothing here is ever printed.

A bearer token comes from `--auth-token-file`, else `SMICAST_AUTH_TOKEN`, else
all-smi's `ALL_SMI_AUTH_TOKEN` (what all-smi's `view` sends). A host URL's user
info is basic auth for that host and replaces the token there. `--cacert` names
the CA bundle that `https://` agents are verified against (the system's
otherwise); verification is never turned off.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from smicast.envconfig import lookup
from smicast.fsutil import read_capped

MAX_TOKEN_BYTES: Final = 4096


class AuthError(ValueError):
    """A token file or CA bundle that cannot be used; the message names no secret."""


def load_token(path: Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    if path is not None:
        try:
            raw = read_capped(path, MAX_TOKEN_BYTES)
        except OSError as exc:
            raise AuthError(f"{path}: {exc.strerror}") from None
        if len(raw) > MAX_TOKEN_BYTES:
            raise AuthError(f"{path}: a token file holds at most {MAX_TOKEN_BYTES} bytes")
        token = raw.decode("utf-8", "replace").strip()
        if not token:
            raise AuthError(f"{path}: the token file is empty")
        _check_header_safe(token, str(path))
        return token
    env = lookup("AUTH_TOKEN", environ)
    if env is None:
        return None
    _check_header_safe(env.value, env.name)
    return env.value


def _check_header_safe(token: str, where: str) -> None:
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in token) or not token.isascii():
        raise AuthError(f"{where}: the token must be printable ASCII without spaces")


def ssl_context(cacert: Path | None) -> ssl.SSLContext | None:
    if cacert is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(cacert))
    except (OSError, ssl.SSLError) as exc:
        raise AuthError(f"{cacert}: cannot load the CA bundle: {exc}") from None
