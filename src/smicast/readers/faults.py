"""The bad habits of real hardware, injected into a GPU reader (the simulator) on a schedule.

`FaultyGpuReader` wraps a GPU reader and applies the `--fault` specs active at
the time elapsed since it was built (see `fault_spec` for the grammar):

- `init-hang`: the wrapper's set-up (nvmlInit) blocks while the fault lasts. Set-up
  runs on the first call (read or process query; the other waits for it); a fault that
  starts later is a driver reload, so the next call sets up again and blocks.
- `read-hang`: reads (and process queries) block until the fault clears.
- `gpu-lost:N`: device N answers NVML's "GPU is lost"; the read reports the others
  and raises `PartialReadError` naming the lost one; its processes disappear.
- `unsupported:FIELD`: the field reads as the NVIDIA reader writes an unknown value.
- `churn`: every read flips the P-state, steps the fan, trains the PCIe link down and up.
- `proc-hidden`: processes come without the simulator's description and with pids past
  this machine's range, so the process reader finds no `/proc` entry, as in a container
  that does not share the host's PID namespace.
- `exception`: reads raise `SimulatedBug`, an exception no reader expects (the
  process list, another code path, still answers).

Time comes in through `monotonic` and `sleep`, so tests run every scenario instantly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

import msgspec
from msgspec import UNSET

from smicast.include import Section
from smicast.readers import GpuProcess, GpuReader, PartialReadError
from smicast.readers.fault_spec import FaultSpec
from smicast.readers.nvidia_static import GPU_IS_LOST_TEXT as GPU_IS_LOST
from smicast.readers.simulated import PID_MAX
from smicast.schema import GPU_METRIC_UNAVAILABLE, GpuInfo

# A hang wakes this often to look at the clock, so it ends when its fault does.
HANG_POLL_S: Final = 0.05
CHURN_FAN_RPM: Final = (900, 2400, 1500, 3600)


class SimulatedBug(RuntimeError):
    """What `--fault exception` raises: an exception no reader handles, like a real bug."""


def _unsupported(gpu: GpuInfo, field: str) -> GpuInfo:
    """The value the NVIDIA reader writes when NVML says NOT_SUPPORTED for this sensor.

    Live values live in typed fields only; `detail` (identity, read once) is never touched,
    so a fault can never make `all_smi_gpu_info` churn.
    """
    if field == "utilization":
        return msgspec.structs.replace(gpu, utilization=GPU_METRIC_UNAVAILABLE)
    if field == "temperature":
        return msgspec.structs.replace(gpu, temperature=0)
    if field == "power":
        return msgspec.structs.replace(gpu, power_consumption=GPU_METRIC_UNAVAILABLE)
    if field == "frequency":
        return msgspec.structs.replace(gpu, frequency=0)
    if field == "fan":
        return msgspec.structs.replace(gpu, fan_speed_rpm=None)
    if field == "performance-state":
        return msgspec.structs.replace(gpu, performance_state=None)
    return msgspec.structs.replace(gpu, pcie_link_generation=UNSET, pcie_link_width=UNSET)


def _churn(gpu: GpuInfo, step: int) -> GpuInfo:
    """One read's worth of aggressive churn: what a busy, power-managed node does."""
    down = step % 2 == 1
    pstate = gpu.performance_state
    if pstate is not None:
        pstate = 8 if down else 0
    rpm = CHURN_FAN_RPM[step % len(CHURN_FAN_RPM)]
    generation = _max_link(gpu, "pcie_gen_max", 4)
    width = _max_link(gpu, "pcie_width_max", 16)
    if down:  # an idle link trains down to save power
        generation, width = 1, max(1, width // 2)
    return msgspec.structs.replace(
        gpu,
        performance_state=pstate,
        fan_speed_rpm=rpm,
        pcie_link_generation=generation,
        pcie_link_width=width,
    )


def _max_link(gpu: GpuInfo, key: str, default: int) -> int:
    text = gpu.detail.get(key, "").removeprefix("x")
    return int(text) if text.isdigit() and 0 < int(text) <= 64 else default


class FaultyGpuReader:
    section = Section.GPU

    def __init__(
        self,
        inner: GpuReader,
        faults: Sequence[FaultSpec],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._faults = tuple(faults)
        self._monotonic = monotonic
        self._sleep = sleep
        self._started = monotonic()
        self._set_up_at: float | None = None  # elapsed seconds at the last set-up
        self._setting_up = threading.Lock()
        self._reads = 0

    @property
    def ready(self) -> bool:
        """Set up (the simulated nvmlInit has returned since the last driver reload)."""
        return self._set_up_at is not None

    def _elapsed(self) -> float:
        return self._monotonic() - self._started

    def _active(self, scenario: str) -> list[FaultSpec]:
        now = self._elapsed()
        return [f for f in self._faults if f.scenario == scenario and f.active(now)]

    def _hang_while(self, scenario: str) -> None:
        while active := self._active(scenario):
            end_s = max(f.end_s for f in active)
            while (left := end_s - self._elapsed()) > 0:
                self._sleep(min(left, HANG_POLL_S))

    def _set_up(self) -> None:
        with self._setting_up:
            now = self._elapsed()
            last = self._set_up_at
            if last is not None and not any(
                f.scenario == "init-hang" and last < f.start_s <= now for f in self._faults
            ):
                return
            self._set_up_at = None  # a driver reload: nothing is known until set-up returns
            self._hang_while("init-hang")
            self._set_up_at = self._elapsed()

    def _lost(self) -> set[int]:
        return {f.device for f in self._active("gpu-lost") if f.device is not None}

    def _raise_if_buggy(self) -> None:
        if self._active("exception"):
            raise SimulatedBug(f"{self.name}: injected fault: an exception no reader expects")

    def read(self) -> list[GpuInfo]:
        self._set_up()
        self._hang_while("read-hang")
        self._raise_if_buggy()
        gpus = [g for g in self._inner.read() if isinstance(g, GpuInfo)]
        self._reads += 1
        if self._active("churn"):
            gpus = [_churn(g, self._reads) for g in gpus]
        for fault in self._active("unsupported"):
            assert fault.field is not None
            gpus = [_unsupported(g, fault.field) for g in gpus]
        lost = self._lost()
        if not lost:
            return gpus
        kept = [g for index, g in enumerate(gpus) if index not in lost]
        names = ", ".join(
            f"GPU {index} ({gpus[index].uuid})" for index in sorted(lost) if index < len(gpus)
        )
        raise PartialReadError(f"{self.name}: {names}: {GPU_IS_LOST}", kept)

    def read_processes(self) -> list[GpuProcess]:
        self._set_up()
        self._hang_while("read-hang")
        lost = self._lost()
        procs = [p for p in self._inner.read_processes() if p.device_id not in lost]
        if self._active("proc-hidden"):
            procs = [msgspec.structs.replace(p, pid=PID_MAX + p.pid, info=None) for p in procs]
        return procs
