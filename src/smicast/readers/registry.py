"""Which readers run on this machine: detection of real GPUs, or simulated ones on request.

Nothing here touches hardware. Every reader is a `DeferredReader`: its constructor,
and for GPUs the probe that decides whether the vendor is present at all, run on
its first read, in the collector's worker, under the collector's timeout. So a
hung `nvmlInit()` costs a `gpu` `timeout` entry, never the command.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, GpuReader, Reader, default_hostname
from smicast.readers.fault_spec import FaultSpec
from smicast.readers.setup import DeferredGpuReader, DeferredReader

if TYPE_CHECKING:
    from smicast.readers.nvidia_static import NvmlLike

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
    *,
    hostname: str,
    clock: Clock,
    procfs: Path = Path("/proc"),
    sysfs: Path = Path("/sys"),
    nvml: NvmlLike | None = None,
) -> list[DeferredGpuReader]:
    """A reader per vendor that may be present; each probes on its first read, in its worker.

    A vendor whose probe finds nothing becomes `absent` (the collector skips it); none
    present is not an error (an empty `gpus` list).
    """
    if _gpu_detection_disabled():
        return []
    from smicast.readers.amd import AmdReader
    from smicast.readers.nvidia import NvidiaReader

    def nvidia() -> GpuReader | None:
        return NvidiaReader.probe(hostname=hostname, clock=clock, nvml=nvml, procfs=procfs)

    def amd() -> GpuReader | None:
        return AmdReader.probe(sysfs=sysfs, procfs=procfs, hostname=hostname, clock=clock)

    return [
        DeferredGpuReader("nvidia", Section.GPU, nvidia),
        DeferredGpuReader("amd", Section.GPU, amd),
    ]


def simulated_reader(
    simulate: SimulateSpec,
    *,
    seed: int,
    hostname: str,
    clock: Clock,
    faults: list[FaultSpec] | None = None,
) -> GpuReader:
    """The simulated accelerators, with `--fault` scenarios injected when there are any."""
    from smicast.readers.simulated import SimulatedReader

    reader = SimulatedReader(
        simulate.platform, simulate.count, seed=seed, hostname=hostname, clock=clock
    )
    if not faults:
        return reader
    from smicast.readers.faults import FaultyGpuReader

    return FaultyGpuReader(reader, faults)


def build_readers(
    sections: frozenset[Section],
    *,
    simulate: SimulateSpec | None = None,
    seed: int = 0,
    hostname: str | None = None,
    clock: Clock = WALL_CLOCK,
    faults: list[FaultSpec] | None = None,
) -> list[Reader]:
    """The readers for the requested sections; GPU readers are shared with the process reader."""
    host = hostname or default_hostname()
    gpu_readers: list[GpuReader] = []
    if sections & {Section.GPU, Section.PROCESS}:
        if simulate is not None:
            # Built here: the simulator touches no hardware, and its faults need their clock
            # to start now. Its (simulated) set-up runs on the first read like a real one.
            gpu_readers = [
                simulated_reader(simulate, seed=seed, hostname=host, clock=clock, faults=faults)
            ]
        else:
            gpu_readers = list(detect_gpu_readers(hostname=host, clock=clock))
    readers: list[Reader] = []
    if Section.GPU in sections:
        readers.extend(gpu_readers)
    # Modules are imported here (code, not hardware); constructors run in the workers.
    if Section.CPU in sections:
        from smicast.readers.cpu import CpuReader

        cpu = partial(CpuReader, hostname=host, clock=clock)
        readers.append(DeferredReader(CpuReader.name, Section.CPU, cpu))
    if Section.MEMORY in sections:
        from smicast.readers.memory import MemoryReader

        memory = partial(MemoryReader, hostname=host, clock=clock)
        readers.append(DeferredReader(MemoryReader.name, Section.MEMORY, memory))
    if Section.CHASSIS in sections:
        from smicast.readers.chassis import ChassisReader

        chassis = partial(ChassisReader, hostname=host, clock=clock)
        readers.append(DeferredReader(ChassisReader.name, Section.CHASSIS, chassis))
    if Section.PROCESS in sections:
        from smicast.readers.processes import ProcessReader

        processes = partial(ProcessReader, gpu_readers, hostname=host, clock=clock)
        readers.append(DeferredReader(ProcessReader.name, Section.PROCESS, processes))
    if Section.STORAGE in sections:
        from smicast.readers.storage import StorageReader

        storage = partial(StorageReader, hostname=host)
        readers.append(DeferredReader(StorageReader.name, Section.STORAGE, storage))
    return readers
