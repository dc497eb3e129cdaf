"""Bounds on untrusted strings that reach the wire.

Process command lines can carry secrets (`--token=...`) and can be huge; every
surface (JSON, SSE, Prometheus, traces) gets the same caps as all-smi:
command 256, process_name 128, user 128 bytes, with a `...(N bytes truncated)` marker.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from smicast.schema import ProcessInfo

MAX_COMMAND_BYTES: Final = 256
MAX_NAME_BYTES: Final = 128
MAX_USER_BYTES: Final = 128

# The marker this module writes: a count without leading zeros, at most 20 digits
# (any byte count fits). An unbounded count would let a forged marker carry any
# length through the cap.
_MARKER = re.compile(r"\.\.\.\(([1-9]\d{0,19}) bytes truncated\)\Z")
MAX_MARKER_BYTES: Final = len("...( bytes truncated)") + 20


def truncate_label(value: str, max_bytes: int) -> str:
    """Cut to at most `max_bytes` UTF-8 bytes on a character boundary and say how much went.

    Idempotent: a value this function already cut is returned unchanged, so a
    trace recorded with caps can be served again without a second marker.
    """
    if len(value) <= max_bytes // 4:  # fast path: cannot exceed max_bytes in UTF-8
        return value
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return value
    marker = _MARKER.search(value)
    if (
        marker is not None
        and len(value[: marker.start()].encode("utf-8", "surrogatepass")) <= max_bytes
    ):
        return value
    kept = raw[:max_bytes].decode("utf-8", "ignore")
    dropped = len(raw) - len(kept.encode("utf-8", "surrogatepass"))
    return f"{kept}...({dropped} bytes truncated)"


def limit_process(proc: ProcessInfo) -> ProcessInfo:
    command = truncate_label(proc.command, MAX_COMMAND_BYTES)
    name = truncate_label(proc.process_name, MAX_NAME_BYTES)
    user = truncate_label(proc.user, MAX_USER_BYTES)
    if command is proc.command and name is proc.process_name and user is proc.user:
        return proc
    return msgspec.structs.replace(proc, command=command, process_name=name, user=user)
