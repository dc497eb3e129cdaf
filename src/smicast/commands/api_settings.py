"""`smicast api` settings: command line, then `SMICAST_API_*`, then `ALL_SMI_API_*`, then defaults.

The command line leaves a setting `None` when the user did not give it; `resolve` fills
it from the environment or the default and records where each value came from, so the
startup log can say which name supplied it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Final

from smicast.envconfig import all_smi_flag, lookup, parse_bool

DEFAULT_PORT: Final = 9090
DEFAULT_INTERVAL_S: Final = 3.0
MAX_INTERVAL_S: Final = 86_400.0
DEFAULT_SOCKET: Final = "default"  # `--socket` without a path


class SettingError(ValueError):
    """A setting from the environment is malformed; the message names the variable."""


def _port(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingError(f"{name}={text[:64]!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise SettingError(f"{name} must be 0..65535, got {value}")
    return value


def _interval(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingError(f"{name}={text[:64]!r} is not a number of seconds") from None
    if not 0 < value <= MAX_INTERVAL_S:
        raise SettingError(f"{name} must be > 0 and at most {MAX_INTERVAL_S:g}, got {text[:64]}")
    return value


def _socket(text: str) -> str | None:
    """all-smi's `ALL_SMI_API_SOCKET`: false/0 off, true/1 the default path, else a path."""
    lowered = text.lower()
    if lowered in {"false", "0"}:
        return None
    if lowered in {"true", "1"}:
        return DEFAULT_SOCKET
    return text


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> list[str]:
    """Fill port, interval, socket and processes on `args`; return 'name=value (source)' lines."""
    sources: list[str] = []

    def note(setting: str, value: object, source: str) -> None:
        sources.append(f"{setting}={value} ({source})")

    if args.port is not None:
        note("port", args.port, "--port")
    elif (env := lookup("API_PORT", environ)) is not None:
        args.port = _port(env.value, env.name)
        note("port", args.port, env.name)
    else:
        args.port = DEFAULT_PORT

    if args.interval is not None:
        note("interval", f"{args.interval:g}s", "--interval")
    elif (env := lookup("API_INTERVAL_SECS", environ)) is not None:
        args.interval = _interval(env.value, env.name)
        note("interval", f"{args.interval:g}s", env.name)
    else:
        args.interval = DEFAULT_INTERVAL_S

    if args.socket is not None:
        note("socket", args.socket, "--socket")
    elif (env := lookup("API_SOCKET", environ)) is not None:
        args.socket = _socket(env.value)
        note("socket", args.socket or "off", env.name)

    if args.processes is not None:
        note("processes", str(args.processes).lower(), "--processes")
    elif (env := lookup("API_PROCESSES", environ)) is not None:
        if env.name.startswith("ALL_SMI_"):
            args.processes = all_smi_flag(env.value)
        else:
            try:
                args.processes = parse_bool(env.value)
            except ValueError as exc:
                raise SettingError(f"{env.name}: {exc}") from None
        note("processes", str(args.processes).lower(), env.name)
    else:
        args.processes = False

    for key, setting in (
        ("API_CORS_ALLOWED_ORIGINS", "cors"),
        ("API_MAX_SSE_SUBSCRIBERS", "max_sse_subscribers"),
    ):
        if (env := lookup(key, environ)) is not None:
            note(setting, "set", env.name)
    return sources
