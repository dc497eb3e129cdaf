"""Which agents a fleet command watches: `--hosts` lists, host files, and safe labels.

all-smi's rules: `http://` is added when a host names no scheme, a host file holds
one host per line, blank lines and lines starting with `#` are skipped, and at most
1,024 hosts are read from a file of at most 10 MB. smicast adds `https://` URLs,
a path prefix (an agent behind a reverse proxy), `unix:PATH` for a local socket,
and basic-auth credentials in the URL's user info.

Credentials never leave a `HostSpec` except in the `Authorization` header: the
`label` a host is shown, logged and recorded under has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

from smicast.fsutil import read_capped

MAX_HOSTS: Final = 1024  # the trace header's bound, so a fleet trace lists every host
MAX_HOSTFILE_BYTES: Final = 10 << 20
MAX_HOST_CHARS: Final = 2048


class HostError(ValueError):
    """A host or host file that cannot be used; the message is what the user sees."""


@dataclass(frozen=True)
class HostSpec:
    label: str  # `host:port[/prefix]` or `unix:PATH`: shown, logged and recorded; no secrets
    base_url: str  # scheme://host:port/prefix, no credentials, no trailing slash
    unix_path: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")


def parse_host(text: str) -> HostSpec:
    """One host as `--hosts` or a host file gives it."""
    raw = text.strip()
    if not raw:
        raise HostError("empty host")
    if len(raw) > MAX_HOST_CHARS:
        raise HostError(f"host longer than {MAX_HOST_CHARS} characters")
    if raw.startswith("unix:"):
        path = raw[len("unix:") :]
        path = path[2:] if path.startswith("//") else path
        if not path:
            raise HostError("unix: needs a socket path, e.g. unix:/run/smicast.sock")
        return HostSpec(label=f"unix:{path}", base_url="http://localhost", unix_path=path)
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    shown = redact(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HostError(f"invalid host {shown!r}: expected HOST[:PORT], http(s)://... or unix:PATH")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise HostError(f"invalid host {shown!r}: bad port") from None
    if parts.query or parts.fragment:
        raise HostError(f"invalid host {shown!r}: a host takes no query or fragment")
    hostport = parts.netloc.rpartition("@")[2]
    prefix = parts.path.rstrip("/")
    for endpoint in ("/events", "/metrics", "/snapshot"):
        if prefix.endswith(endpoint):  # a full endpoint URL names the agent it belongs to
            prefix = prefix[: -len(endpoint)]
    base = urlunsplit((parts.scheme, hostport, prefix, "", ""))
    label = hostport + prefix
    if parts.scheme == "https":
        label = "https://" + label
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return HostSpec(label=label, base_url=base, username=user, password=password)


def parse_hosts_option(values: list[str]) -> list[HostSpec]:
    """`--hosts a,b --hosts c`: comma separated and repeatable."""
    return [parse_host(item) for value in values for item in value.split(",") if item.strip()]


def read_hostfile(path: Path) -> list[HostSpec]:
    """One host per line; `#` comments and blank lines skipped; bounded in size and count."""
    try:
        data = read_capped(path, MAX_HOSTFILE_BYTES)
    except OSError as exc:
        raise HostError(f"{path}: {exc.strerror}") from None
    if len(data) > MAX_HOSTFILE_BYTES:
        raise HostError(f"{path}: host file larger than {MAX_HOSTFILE_BYTES >> 20} MB")
    hosts: list[HostSpec] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            hosts.append(parse_host(text))
        except HostError as exc:
            raise HostError(f"{path}:{number}: {exc}") from None
    return hosts


def dedupe(hosts: list[HostSpec]) -> list[HostSpec]:
    """The first of each label, in order; refuses more than MAX_HOSTS."""
    seen: dict[str, HostSpec] = {}
    for host in hosts:
        seen.setdefault(host.label, host)
    if len(seen) > MAX_HOSTS:
        raise HostError(f"{len(seen)} hosts given; at most {MAX_HOSTS} are watched at once")
    return list(seen.values())


_USERINFO: Final = re.compile(r"(?<=://)[^/@\s]*@")
_BEARER: Final = re.compile(r"(?i)(bearer|basic)\s+\S+")


def redact(text: str) -> str:
    """`text` with URL user info and Authorization values replaced: safe to log or show."""
    return _BEARER.sub(r"\1 ***", _USERINFO.sub("***@", text))
