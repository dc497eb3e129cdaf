"""Which readers run on this machine: detection of real GPUs, or simulated ones on request."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, GpuReader, Reader, default_hostname

SIMULATED_PLATFORMS: Final = ("nvidia", "amd", "gaudi", "tenstorrent")
MAX_SIMULATED_DEVICES: Final = 256
_SPEC = re.compile(r"^([a-z]+)(?::(\d+))?$")


@dataclass(frozen=True)
class SimulateSpec:
    platform: str
    count: int = 8


def parse_simulate(text: str) -> SimulateSpec:
    """`nvidia`, `amd:4`, `gaudi:8`...; raises ValueError with a message for the user."""
    m = _SPEC.match(text.strip().lower())
    if m is None or m.group(1) not in SIMULATED_PLATFORMS:
        raise ValueError(
            f"invalid --simulate value {text!r}: expected PLATFORM[:N] with PLATFORM one of "
            f"{', '.join(SIMULATED_PLATFORMS)}"
        )
    count = int(m.group(2)) if m.group(2) else 8
    if not 1 <= count <= MAX_SIMULATED_DEVICES:
        raise ValueError(f"invalid --simulate count {count}: expected 1..{MAX_SIMULATED_DEVICES}")
    return SimulateSpec(m.group(1), count)


def _gpu_detection_disabled() -> bool:
    return os.environ.get("SMICAST_NO_GPU", "").strip().lower() in {"1", "true", "yes"}


def detect_gpu_readers(
    *, hostname: str, clock: Clock, procfs: Path = Path("/proc"), sysfs: Path = Path("/sys")
) -> list[GpuReader]:
    """Real accelerators present here; none is not an error (an empty `gpus` list)."""
    if _gpu_detection_disabled():
        return []
    from smicast.readers.amd import AmdReader
    from smicast.readers.nvidia import NvidiaReader

    found: list[GpuReader] = []
    nvidia = NvidiaReader.probe(hostname=hostname, clock=clock)
    if nvidia is not None:
        found.append(nvidia)
    amd = AmdReader.probe(sysfs=sysfs, procfs=procfs, hostname=hostname, clock=clock)
    if amd is not None:
        found.append(amd)
    return found


def build_readers(
    sections: frozenset[Section],
    *,
    simulate: SimulateSpec | None = None,
    seed: int = 0,
    hostname: str | None = None,
    clock: Clock = WALL_CLOCK,
) -> list[Reader]:
    """The readers for the requested sections; GPU readers are shared with the process reader."""
    host = hostname or default_hostname()
    gpu_readers: list[GpuReader] = []
    if sections & {Section.GPU, Section.PROCESS}:
        if simulate is not None:
            from smicast.readers.simulated import SimulatedReader

            gpu_readers = [
                SimulatedReader(
                    simulate.platform, simulate.count, seed=seed, hostname=host, clock=clock
                )
            ]
        else:
            gpu_readers = detect_gpu_readers(hostname=host, clock=clock)
    readers: list[Reader] = []
    if Section.GPU in sections:
        readers.extend(gpu_readers)
    if Section.CPU in sections:
        from smicast.readers.cpu import CpuReader

        readers.append(CpuReader(hostname=host, clock=clock))
    if Section.MEMORY in sections:
        from smicast.readers.memory import MemoryReader

        readers.append(MemoryReader(hostname=host, clock=clock))
    if Section.CHASSIS in sections:
        from smicast.readers.chassis import ChassisReader

        readers.append(ChassisReader(hostname=host, clock=clock))
    if Section.PROCESS in sections:
        from smicast.readers.processes import ProcessReader

        readers.append(ProcessReader(gpu_readers, hostname=host, clock=clock))
    if Section.STORAGE in sections:
        from smicast.readers.storage import StorageReader

        readers.append(StorageReader(hostname=host))
    return readers
