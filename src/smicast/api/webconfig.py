"""The Prometheus exporter-toolkit `web-config.yml` (node_exporter's `--web.config.file`).

Parsed strictly, as the toolkit does with `yaml.UnmarshalStrict`: an unknown key, a
duplicate key or a value of the wrong kind is an error that names the key. Relative
file paths are taken from the config file's directory. Building the TLS context and
checking credentials live in `tls.py` and `auth.py`; this module only reads the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from smicast.fsutil import read_capped

MAX_CONFIG_BYTES: Final = 1 << 20

CLIENT_AUTH_TYPES: Final = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
# "RequireClientCert" is the toolkit's old spelling of RequireAnyClientCert.
_CLIENT_AUTH_ALIASES: Final = {"": "NoClientCert", "RequireClientCert": "RequireAnyClientCert"}
TLS_VERSIONS: Final = ("TLS10", "TLS11", "TLS12", "TLS13")
# The names Go's tls.CipherSuites() returns, the only ones the toolkit accepts.
CIPHER_SUITES: Final = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
)
CURVES: Final = ("CurveP256", "CurveP384", "CurveP521", "X25519")
# The toolkit's allowlist of extra response headers; None means any value.
EXTRA_HEADERS: Final[Mapping[str, tuple[str, ...] | None]] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
# htpasswd -B writes $2y$, Python's bcrypt $2b$, older tools $2a$.
_BCRYPT_HASH: Final = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNIT_S: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class WebConfigError(ValueError):
    """The file is unreadable or invalid; the message names the key."""


@dataclass(frozen=True)
class TlsSettings:
    cert_file: Path | None = None
    key_file: Path | None = None
    cert: str = ""  # inline PEM
    key: str = ""
    client_ca_file: Path | None = None
    client_ca: str = ""
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    curve_preferences: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True

    def files(self) -> tuple[Path, ...]:
        """The files whose change must reload the configuration (certificate rotation)."""
        return tuple(p for p in (self.cert_file, self.key_file, self.client_ca_file) if p)


@dataclass(frozen=True)
class RateLimit:
    interval_s: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    tls: TlsSettings | None = None  # None: plain HTTP
    users: Mapping[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)
    http2: bool = True  # accepted for compatibility; smicast speaks HTTP/1.1
    rate_limit: RateLimit | None = None


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys, as yaml.UnmarshalStrict does."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise WebConfigError(f"{key}: duplicate key (line {key_node.start_mark.line + 1})")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def load(path: Path) -> WebConfig:
    """Read and check `path`; WebConfigError names the file and the key at fault."""
    try:
        data = read_capped(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise WebConfigError(f"{path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise WebConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return parse(data, base_dir=path.parent)
    except WebConfigError as exc:
        raise WebConfigError(f"{path}: {exc}") from exc


def parse(data: bytes | str, base_dir: Path) -> WebConfig:
    try:
        doc = yaml.load(data, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise WebConfigError(f"not valid YAML: {_one_line(exc)}") from exc
    top = _mapping(doc, "the document")
    _no_unknown(top, {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"})
    http = _mapping(top.get("http_server_config"), "http_server_config")
    _no_unknown(http, {"http2", "headers"}, "http_server_config")
    return WebConfig(
        tls=_tls(_mapping(top.get("tls_server_config"), "tls_server_config"), base_dir),
        users=_users(top.get("basic_auth_users")),
        headers=_headers(http.get("headers")),
        http2=_bool(http.get("http2"), "http_server_config.http2", default=True),
        rate_limit=_rate_limit(top.get("rate_limit")),
    )


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _mapping(value: object, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{key}: expected a mapping, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number"}.get(
        type(value), type(value).__name__
    )


def _no_unknown(section: Mapping[Any, Any], known: set[str], prefix: str = "") -> None:
    for key in section:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise WebConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")


def _str(value: object, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebConfigError(f"{key}: expected a string, got {_kind(value)}")
    return value


def _bool(value: object, key: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise WebConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _choice(value: object, key: str, allowed: tuple[str, ...], default: str) -> str:
    text = _str(value, key) or default
    if text not in allowed:
        raise WebConfigError(
            f"{key}: unknown value {text!r} (expected one of {', '.join(allowed)})"
        )
    return text


def _str_list(value: object, key: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WebConfigError(f"{key}: expected a list, got {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        text = _str(item, f"{key}[{i}]")
        if allowed is not None and text not in allowed:
            raise WebConfigError(f"{key}[{i}]: unknown value {text!r}")
        out.append(text)
    return tuple(out)


def _path(value: object, key: str, base_dir: Path) -> Path | None:
    text = _str(value, key)
    return base_dir / text if text else None


_TLS_KEYS: Final = {
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
}


def _tls(section: dict[str, Any], base_dir: Path) -> TlsSettings | None:
    p = "tls_server_config"
    _no_unknown(section, _TLS_KEYS, p)
    auth = _str(section.get("client_auth_type"), f"{p}.client_auth_type")
    auth = _CLIENT_AUTH_ALIASES.get(auth, auth)
    settings = TlsSettings(
        cert_file=_path(section.get("cert_file"), f"{p}.cert_file", base_dir),
        key_file=_path(section.get("key_file"), f"{p}.key_file", base_dir),
        cert=_str(section.get("cert"), f"{p}.cert"),
        key=_str(section.get("key"), f"{p}.key"),
        client_ca_file=_path(section.get("client_ca_file"), f"{p}.client_ca_file", base_dir),
        client_ca=_str(section.get("client_ca"), f"{p}.client_ca"),
        client_auth_type=_choice(auth, f"{p}.client_auth_type", CLIENT_AUTH_TYPES, "NoClientCert"),
        client_allowed_sans=_str_list(
            section.get("client_allowed_sans"), f"{p}.client_allowed_sans"
        ),
        min_version=_choice(section.get("min_version"), f"{p}.min_version", TLS_VERSIONS, "TLS12"),
        max_version=_choice(section.get("max_version"), f"{p}.max_version", TLS_VERSIONS, "TLS13"),
        cipher_suites=_str_list(section.get("cipher_suites"), f"{p}.cipher_suites", CIPHER_SUITES),
        curve_preferences=_str_list(
            section.get("curve_preferences"), f"{p}.curve_preferences", CURVES
        ),
        prefer_server_cipher_suites=_bool(
            section.get("prefer_server_cipher_suites"),
            f"{p}.prefer_server_cipher_suites",
            default=True,
        ),
    )
    # The toolkit's rule: TLS is on when any certificate, key, CA or client_auth_type is set.
    enabled = any(
        section.get(k)
        for k in ("cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file")
    ) or bool(_str(section.get("client_auth_type"), ""))
    if not enabled:
        return None
    if not (settings.cert_file or settings.cert):
        raise WebConfigError(f"{p}: missing one of cert or cert_file")
    if not (settings.key_file or settings.key):
        raise WebConfigError(f"{p}: missing one of key or key_file")
    has_ca = settings.client_ca_file is not None or bool(settings.client_ca)
    if has_ca and settings.client_auth_type == "NoClientCert":
        raise WebConfigError(
            f"{p}.client_auth_type: client CAs are configured without a client auth policy"
        )
    if TLS_VERSIONS.index(settings.min_version) > TLS_VERSIONS.index(settings.max_version):
        raise WebConfigError(f"{p}.min_version: {settings.min_version} is above max_version")
    if settings.client_allowed_sans and settings.client_auth_type not in (
        "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ):
        raise WebConfigError(
            f"{p}.client_allowed_sans: needs client_auth_type VerifyClientCertIfGiven or "
            "RequireAndVerifyClientCert (smicast checks names only on verified certificates)"
        )
    return settings


def _users(value: object) -> dict[str, bytes]:
    section = _mapping(value, "basic_auth_users")
    users = {}
    for name, hashed in section.items():
        if not isinstance(name, str):
            raise WebConfigError(f"basic_auth_users: user name {name!r} is not a string")
        key = f"basic_auth_users.{name}"
        text = _str(hashed, key)
        match = _BCRYPT_HASH.fullmatch(text)
        if match is None or not 4 <= int(match.group(1)) <= 31:
            raise WebConfigError(
                f"{key}: not a bcrypt hash ($2y$, $2b$ or $2a$, as "
                "`smicast hash-password` or `htpasswd -nBC 10` writes)"
            )
        users[name] = text.encode("ascii")
    return users


def _headers(value: object) -> dict[str, str]:
    section = _mapping(value, "http_server_config.headers")
    out = {}
    for name, raw in section.items():
        key = f"http_server_config.headers.{name}"
        if name not in EXTRA_HEADERS:
            raise WebConfigError(
                f"{key}: this header can not be configured (allowed: {', '.join(EXTRA_HEADERS)})"
            )
        text = _str(raw, key)
        allowed = EXTRA_HEADERS[name]
        if allowed is not None and text not in allowed:
            raise WebConfigError(f"{key}: expected one of {', '.join(allowed)}, got {text!r}")
        if any(c in text for c in "\r\n\0"):
            raise WebConfigError(f"{key}: control characters are not allowed")
        if text:  # the toolkit leaves a blank header unset
            out[name] = text
    return out


def _rate_limit(value: object) -> RateLimit | None:
    section = _mapping(value, "rate_limit")
    _no_unknown(section, {"interval", "burst"}, "rate_limit")
    interval_s = parse_duration(section.get("interval"), "rate_limit.interval")
    burst = section.get("burst", 0)
    if burst is None:
        burst = 0
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise WebConfigError(f"rate_limit.burst: expected a whole number >= 0, got {burst!r}")
    return RateLimit(interval_s, burst) if interval_s > 0 else None


def parse_duration(value: object, key: str) -> float:
    """A Go duration (`1s`, `1m30s`, `250ms`, `0`) in seconds; a bare integer is nanoseconds."""
    if value is None:
        return 0.0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value * 1e-9
    text = _str(value, key)
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            raise WebConfigError(f"{key}: not a duration: {text!r} (examples: 1s, 500ms, 1m30s)")
        total += float(m.group(1)) * _DURATION_UNIT_S[m.group(2)]
        pos = m.end()
    if not text:
        raise WebConfigError(f"{key}: not a duration: {text!r}")
    return total
