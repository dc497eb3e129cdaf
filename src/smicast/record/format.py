"""The trace format: header and index lines, codecs, rotated names, and option grammars.

A trace is NDJSON compatible with all-smi's `record`: a header line, one schema-1
snapshot per line, and an index line after every 1000th data frame. The codec
comes from the final extension (`.zst`, `.gz`, anything else is plain text).
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from smicast import __version__
from smicast.encode import value_json
from smicast.schema import SCHEMA_VERSION

INDEX_EVERY_N_FRAMES: Final = 1000
MAX_LINE_BYTES: Final = 16 << 20  # all-smi's replay cap; a longer line is drained and skipped
MAX_HEADER_HOSTS: Final = 1024
ZSTD_LEVEL: Final = 3
ZSTD_MAX_WINDOW_BYTES: Final = 1 << 27  # refuse frames that would need more than 128 MiB


class Codec(StrEnum):
    ZSTD = "zstd"
    GZIP = "gzip"
    NONE = "none"


_EXTENSIONS: Final = {".zst": Codec.ZSTD, ".gz": Codec.GZIP}


def codec_for_path(path: Path) -> Codec:
    """The codec the final extension names, case-insensitively; plain otherwise."""
    return _EXTENSIONS.get(path.suffix.lower(), Codec.NONE)


class TraceHeader(msgspec.Struct, kw_only=True, frozen=True):
    """The first line of a segment; `interval_ms` 0 means the source set the pace."""

    hosts: list[str]
    interval_ms: int
    schema: int = SCHEMA_VERSION
    header: bool = True
    smicast_version: str = __version__


def header_line(hosts: list[str], interval_ms: int) -> bytes:
    return value_json(TraceHeader(hosts=hosts[:MAX_HEADER_HOSTS], interval_ms=interval_ms)) + b"\n"


def index_line(seq: int, byte_offset: int) -> bytes:
    """Checkpoint after data frame `seq`; `byte_offset` counts uncompressed segment bytes."""
    return (
        value_json(
            {"byte_offset": byte_offset, "index": True, "schema": SCHEMA_VERSION, "seq": seq}
        )
        + b"\n"
    )


def rotated_path(path: Path, n: int) -> Path:
    """`out.ndjson.zst` -> `out.0001.ndjson.zst`: the number goes after the first dot."""
    name = path.name
    dot = name.find(".", 1)  # a leading dot belongs to the stem (hidden files)
    stem, rest = (name, "") if dot < 0 else (name[:dot], name[dot:])
    return path.with_name(f"{stem}.{n:04d}{rest}")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_DURATION_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^(\d+)(?:([kmg])(?:i?b)?|b?)$")
_SIZE_UNITS: Final = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MAX_DURATION_S: Final = 366 * 86400
MAX_SIZE_BYTES: Final = 1 << 40


def parse_duration(text: str) -> float:
    """`30`, `30s`, `5m`, `1h`, `1d`, `1.5h` -> seconds; `0` means no limit."""
    m = _DURATION.match(text.strip().lower()) if len(text) <= 40 else None
    if m is None:
        raise ValueError(f"invalid duration {text[:40]!r}: expected N, Ns, Nm, Nh or Nd")
    seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds > MAX_DURATION_S:
        raise ValueError(f"duration {text!r} is longer than 366d")
    return seconds


def parse_size(text: str) -> int:
    """`100M`, `512k`, `2G`, `1048576` -> bytes (1024-based); `0` turns rotation off."""
    m = _SIZE.match(text.strip().lower()) if len(text) <= 40 else None
    if m is None:
        raise ValueError(
            f"invalid size {text[:40]!r}: expected bytes or N with K, M or G (1024-based)"
        )
    size = int(m.group(1)) * _SIZE_UNITS[m.group(2) or ""]
    if size > MAX_SIZE_BYTES:
        raise ValueError(f"size {text!r} is larger than 1024G")
    return size


def parse_timecode(text: str) -> float:
    """`SS`, `MM:SS` or `HH:MM:SS` -> seconds; the fields after the first are below 60."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"invalid time {text!r}: expected HH:MM:SS, MM:SS or SS")
    if len(parts[0]) > 7:  # ~115 days of seconds; more is a typo
        raise ValueError(f"invalid time {text[:40]!r}: too far into a trace")
    values = [int(p) for p in parts]
    if any(v >= 60 for v in values[1:]):
        raise ValueError(f"invalid time {text!r}: minutes and seconds must be below 60")
    seconds = 0
    for v in values:
        seconds = seconds * 60 + v
    return float(seconds)


def format_clock(seconds: float) -> str:
    """Seconds as `HH:MM:SS` for progress lines (whole seconds, days roll into hours)."""
    s = max(0, math.floor(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
