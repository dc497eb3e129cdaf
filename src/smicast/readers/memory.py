"""System memory on Linux, from /proc/meminfo (values there are in kB).

Inside a container whose cgroup memory limit is below the host's memory, the
container's limit and usage are reported instead, as all-smi does: total is the
limit, used is the cgroup's usage (which counts its page cache), available and
free are what is left, and buffers, cached and swap are 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, ReadError, default_hostname
from smicast.readers.cgroup import cgroup_memory
from smicast.schema import MemoryInfo, local_time_text

_FIELDS: Final = frozenset(
    {"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal", "SwapFree"}
)


def parse_meminfo(text: str) -> dict[str, int]:
    """The fields this reader uses, in bytes."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in _FIELDS:
            values[key] = int(rest.split()[0]) * 1024
    return values


class MemoryReader:
    name = "memory"
    section = Section.MEMORY

    def __init__(
        self,
        procfs: Path = Path("/proc"),
        *,
        sysfs: Path = Path("/sys"),
        hostname: str | None = None,
        clock: Clock = WALL_CLOCK,
    ) -> None:
        self._meminfo = procfs / "meminfo"
        self._cgroup = sysfs / "fs" / "cgroup"
        self._host = hostname or default_hostname()
        self._clock = clock

    def read(self) -> list[MemoryInfo]:
        try:
            m = parse_meminfo(self._meminfo.read_text())
        except (OSError, ValueError, IndexError) as exc:
            raise ReadError(f"cannot read {self._meminfo}: {exc}") from exc
        if "MemTotal" not in m:
            raise ReadError(f"{self._meminfo} has no MemTotal")
        cgroup = cgroup_memory(self._cgroup)
        if cgroup is not None and cgroup.limit_bytes < m["MemTotal"]:
            return [self._container(cgroup.limit_bytes, cgroup.usage_bytes)]
        total, free = m["MemTotal"], m.get("MemFree", 0)
        buffers, cached = m.get("Buffers", 0), m.get("Cached", 0)
        # Kernels before 3.14 lack MemAvailable; free + reclaimable caches is the old estimate.
        available = m.get("MemAvailable", free + buffers + cached)
        # Used = total - available, as all-smi and recent procps `free` compute it: page
        # cache the kernel can drop on demand is not memory anyone is holding.
        used = max(0, total - available)
        swap_total, swap_free = m.get("SwapTotal", 0), m.get("SwapFree", 0)
        return [
            MemoryInfo(
                host_id=self._host,
                hostname=self._host,
                instance=self._host,
                total_bytes=total,
                used_bytes=used,
                available_bytes=available,
                free_bytes=free,
                buffers_bytes=buffers,
                cached_bytes=cached,
                swap_total_bytes=swap_total,
                swap_used_bytes=max(0, swap_total - swap_free),
                swap_free_bytes=swap_free,
                utilization=used * 100.0 / total if total > 0 else 0.0,
                time=local_time_text(self._clock()),
            )
        ]

    def _container(self, limit: int, usage: int) -> MemoryInfo:
        used = min(usage, limit)  # v1 usage can pass the limit for a moment
        return MemoryInfo(
            host_id=self._host,
            hostname=self._host,
            instance=self._host,
            total_bytes=limit,
            used_bytes=used,
            available_bytes=limit - used,
            free_bytes=limit - used,
            buffers_bytes=0,
            cached_bytes=0,
            swap_total_bytes=0,
            swap_used_bytes=0,
            swap_free_bytes=0,
            utilization=used * 100.0 / limit,
            time=local_time_text(self._clock()),
        )
