"""web-config `tls_server_config` -> an `ssl.SSLContext`, and a context that can be swapped.

Go's names map onto OpenSSL's; where Python's ssl module cannot do what Go does, the
nearest stricter behaviour is chosen and `limitations()` says so for the startup log:

- `cipher_suites` restricts TLS 1.2 and older; TLS 1.3 suites are not configurable (as in Go).
- `curve_preferences`: the stdlib sets one group only, so the first listed curve is used.
- `RequestClientCert` / `RequireAnyClientCert`: a presented client certificate is always
  verified (against `client_ca_file`, else the system roots); Go accepts it unverified.
- `prefer_server_cipher_suites` toggles OpenSSL's server preference (Go ignores it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from smicast.api.webconfig import TlsSettings, WebConfigError
from smicast.fsutil import create_new, write_all

OPENSSL_CIPHERS: Final = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
OPENSSL_CURVES: Final = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
_VERSIONS: Final = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_VERIFY_MODES: Final = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


def build_context(settings: TlsSettings) -> ssl.SSLContext:
    """A server context for `settings`; WebConfigError names the key that failed."""
    p = "tls_server_config"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS10/TLS11 are deprecated
        ctx.minimum_version = _VERSIONS[settings.min_version]
        ctx.maximum_version = _VERSIONS[settings.max_version]
    _load_cert(ctx, settings)
    tls12 = [OPENSSL_CIPHERS[n] for n in settings.cipher_suites if n in OPENSSL_CIPHERS]
    if tls12:
        try:
            ctx.set_ciphers(":".join(tls12))
        except ssl.SSLError as exc:
            raise WebConfigError(f"{p}.cipher_suites: OpenSSL refuses them: {exc}") from exc
    if settings.curve_preferences:
        ctx.set_ecdh_curve(OPENSSL_CURVES[settings.curve_preferences[0]])
    if not settings.prefer_server_cipher_suites:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.verify_mode = _VERIFY_MODES[settings.client_auth_type]
    if ctx.verify_mode != ssl.CERT_NONE:
        try:
            if settings.client_ca_file is not None:
                ctx.load_verify_locations(cafile=str(settings.client_ca_file))
            elif settings.client_ca:
                ctx.load_verify_locations(cadata=settings.client_ca)
            else:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)  # Go: system roots
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"{p}.client_ca_file: {_reason(exc)}") from exc
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _load_cert(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    p = "tls_server_config"
    if settings.cert_file is not None and settings.key_file is not None:
        try:
            ctx.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"{p}.cert_file/key_file: cannot load {settings.cert_file} with "
                f"{settings.key_file}: {_reason(exc)}"
            ) from exc
        return
    # Inline PEM (or one inline, one file): OpenSSL reads keys from files only.
    with tempfile.TemporaryDirectory(prefix="smicast-tls-") as tmp:
        cert_path = settings.cert_file or _write_private(Path(tmp) / "cert.pem", settings.cert)
        key_path = settings.key_file or _write_private(Path(tmp) / "key.pem", settings.key)
        try:
            ctx.load_cert_chain(str(cert_path), str(key_path))
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"{p}.cert/key: cannot load them: {_reason(exc)}") from exc


def _write_private(path: Path, text: str) -> Path:
    fd = create_new(path)
    try:
        write_all(fd, text.encode(), path)
    finally:
        os.close(fd)
    return path


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def limitations(settings: TlsSettings) -> list[str]:
    """What this configuration asks for that Python's ssl module does differently."""
    notes = []
    if len(settings.curve_preferences) > 1:
        notes.append(
            f"curve_preferences: only {settings.curve_preferences[0]} is used "
            "(Python's ssl module sets a single curve)"
        )
    if settings.client_auth_type in ("RequestClientCert", "RequireAnyClientCert"):
        notes.append(
            f"client_auth_type {settings.client_auth_type}: a client certificate that is "
            "presented is verified (Python's ssl module cannot accept unverified ones)"
        )
    if settings.min_version in ("TLS10", "TLS11"):
        notes.append(
            f"min_version {settings.min_version}: OpenSSL's security level may still refuse it"
        )
    return notes


def peer_names(peercert: dict[str, Any] | None) -> set[str]:
    """The subject alternative names of a verified peer certificate, as Go writes them."""
    names: set[str] = set()
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        text = str(value).strip()
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                text = str(ipaddress.ip_address(text))
        names.add(text)
    return names


class SwitchingContext(ssl.SSLContext):
    """Gives every new connection the context `current()` returns at that moment.

    asyncio and uvloop call `wrap_bio` once per accepted connection, so a reloaded
    certificate or policy applies from the next handshake on, without a restart:
    what the toolkit's `GetConfigForClient` does in Go.
    """

    _current: Callable[[], ssl.SSLContext]

    def __new__(cls, current: Callable[[], ssl.SSLContext]) -> SwitchingContext:
        self = super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)
        self._current = current
        return self

    def __init__(self, current: Callable[[], ssl.SSLContext]) -> None:
        pass  # set up in __new__; SSLContext has no __init__ arguments

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return self._current().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
