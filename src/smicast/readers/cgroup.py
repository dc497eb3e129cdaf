"""The memory limit and usage of the cgroup this process runs in, as a container sees it.

Inside a container `/sys/fs/cgroup` is the container's own cgroup (cgroup v2 with a
cgroup namespace, or v1 with the memory controller at `memory/`). On a host it is the
root cgroup, which has no `memory.max`, and whose v1 limit is the "unlimited" sentinel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, NamedTuple

from smicast.readers.kernelfs import read_text

# cgroup v1 writes "no limit" as the largest page-aligned signed 64-bit value; anything
# this large is treated as unlimited, as all-smi does.
V1_UNLIMITED: Final = 9_223_372_036_854_771_712


class CgroupMemory(NamedTuple):
    limit_bytes: int
    usage_bytes: int


def _number(path: Path) -> int | None:
    try:
        text = read_text(str(path)).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max" (v2 unlimited) is not a number


def cgroup_memory(cgroup_root: Path) -> CgroupMemory | None:
    """Limit and usage, v2 first then v1; None when there is no limit or no usage figure."""
    limit = _number(cgroup_root / "memory.max")
    if limit is None:
        v1_limit = _number(cgroup_root / "memory" / "memory.limit_in_bytes")
        limit = v1_limit if v1_limit is not None and v1_limit < V1_UNLIMITED else None
    if not limit:
        return None
    usage = _number(cgroup_root / "memory.current")
    if usage is None:
        usage = _number(cgroup_root / "memory" / "memory.usage_in_bytes")
    return CgroupMemory(limit, usage) if usage is not None else None
