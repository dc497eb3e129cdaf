"""Energy totals per GPU, CPU and chassis: measured where NVML counts, integrated elsewhere.

Rules (all-smi's integrator, plus NVML's own counter):

- A GPU whose driver keeps a total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`,
  millijoules since the driver loaded) adds the counter's increase: measured, not
  estimated. A counter that goes backwards was reset (driver reload, GPU reset); so
  is one that grew faster than `MAX_POWER_WATTS` allows. Either way that step falls
  back to the power integral and the new value becomes the baseline: energy is
  never negative and never jumps.
- Every other device integrates its power readings with the trapezoidal rule. A gap
  longer than `GAP_S` holds the earlier reading across it (a dropped burst of samples
  is likelier than a sudden doubling of draw). NaN, infinite and negative readings
  count as 0 W, readings above `MAX_POWER_WATTS` as that ceiling. A duplicate
  timestamp refreshes the reading without adding energy.
- A device with no power reading (GPU `power_consumption` < 0 or null, no CPU or
  chassis figure) gets no sample, unless NVML counts its energy; one that never had
  either has no total to show.

Time is passed in (`at`, monotonic seconds). One thread at a time: the API calls
`observe` and reads the totals on its event loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from msgspec import UNSET

from smicast.readings import GpuReading, Readings
from smicast.schema import GpuInfo, Snapshot

__all__ = [
    "GAP_S",
    "MAX_DEVICES",
    "MAX_POWER_WATTS",
    "EnergyKey",
    "EnergyMeter",
    "EnergyRow",
    "Scope",
    "sanitize_watts",
]

log = logging.getLogger("smicast.energy")

GAP_S: Final = 10.0
# A sensor bug (or f64::MAX) must not poison a counter that lives forever: 100 kW is
# about a dense AI rack, far above any single device.
MAX_POWER_WATTS: Final = 100_000.0
# UUID churn (a misbehaving driver, a fleet behind one agent) must not grow memory.
MAX_DEVICES: Final = 10_000


class Scope(StrEnum):
    GPU = "gpu"
    CPU = "cpu"
    CHASSIS = "chassis"


@dataclass(frozen=True, slots=True, order=True)
class EnergyKey:
    scope: Scope
    host: str
    device: str = ""  # the GPU UUID; empty for the host-wide scopes


@dataclass(frozen=True, slots=True)
class EnergyRow:
    """One device's totals as of the last observation."""

    key: EnergyKey
    total_j: float  # lifetime, including what the state file carried over
    session_j: float  # since this process started
    gpu_index: int  # position in the latest frame's `gpus` (GPU scope)
    measured: bool  # the last step came from the NVML counter


@dataclass(slots=True)
class _Device:
    total_j: float = 0.0
    session_j: float = 0.0
    seen: bool = False  # had a reading in this process
    last_at: float | None = None
    last_w: float = 0.0
    last_mj: int | None = None
    gpu_index: int = 0
    measured: bool = False
    order: int = 0  # first-seen order, for a stable exposition


def sanitize_watts(watts: float) -> float:
    if not math.isfinite(watts) or watts < 0:
        return 0.0
    return min(watts, MAX_POWER_WATTS)


def _trapezoid(prev_w: float, now_w: float, dt_s: float, gap_s: float) -> float:
    if prev_w == 0.0 and now_w == 0.0:
        return 0.0
    if dt_s > gap_s:
        return prev_w * dt_s
    return 0.5 * (prev_w + now_w) * dt_s


class EnergyMeter:
    def __init__(self, seed: Mapping[EnergyKey, float] | None = None, *, gap_s: float = GAP_S):
        self.gap_s = gap_s
        self._devices: dict[EnergyKey, _Device] = {}
        self.resets = 0  # NVML counters seen going backwards or jumping impossibly
        self._next_order = 0
        for key, joules in (seed or {}).items():
            if math.isfinite(joules) and joules > 0 and len(self._devices) < MAX_DEVICES:
                self._devices[key] = _Device(total_j=joules)

    def observe(
        self,
        snapshot: Snapshot | Readings,
        at: float,
        counters_mj: Mapping[str, int] | None = None,
    ) -> None:
        """One frame's readings at monotonic time `at`; `counters_mj`: NVML counters by UUID."""
        counters = counters_mj or {}
        gpus: Sequence[GpuInfo | GpuReading] = snapshot.gpus if snapshot.gpus is not UNSET else []
        for index, gpu in enumerate(gpus):
            watts = gpu.power_consumption
            counter = counters.get(gpu.uuid)
            if watts is None or watts < 0:
                if counter is None:
                    continue
                watts = 0.0  # the counter still measures; a reset step then adds nothing
            self.sample(EnergyKey(Scope.GPU, gpu.hostname, gpu.uuid), at, watts, counter, index)
        cpus = snapshot.cpus if snapshot.cpus is not UNSET else []
        self._host_scope(Scope.CPU, ((c.hostname, c.power_consumption) for c in cpus), at)
        chassis = snapshot.chassis if snapshot.chassis is not UNSET else []
        self._host_scope(Scope.CHASSIS, ((c.hostname, c.total_power_watts) for c in chassis), at)

    def _host_scope(
        self, scope: Scope, readings: Iterable[tuple[str, float | None]], at: float
    ) -> None:
        # Several entries of one host (CPU sockets) draw together.
        per_host: dict[str, float] = {}
        for host, watts in readings:
            if watts is not None:
                per_host[host] = per_host.get(host, 0.0) + sanitize_watts(watts)
        for host, watts in per_host.items():
            self.sample(EnergyKey(scope, host), at, watts)

    def sample(
        self,
        key: EnergyKey,
        at: float,
        watts: float,
        counter_mj: int | None = None,
        gpu_index: int = 0,
    ) -> None:
        """Add one reading (a new device past `MAX_DEVICES` is left out)."""
        device = self._devices.get(key)
        if device is None:
            if len(self._devices) >= MAX_DEVICES:
                return
            device = self._devices[key] = _Device()
        device.gpu_index = gpu_index
        if not device.seen:
            device.seen = True
            device.order = self._next_order
            self._next_order += 1
        now_w = sanitize_watts(watts)
        if device.last_at is None:
            device.last_at, device.last_w, device.last_mj = at, now_w, counter_mj
            device.measured = counter_mj is not None
            return
        dt_s = at - device.last_at
        if dt_s <= 0:
            device.last_w = now_w
            return
        added = _trapezoid(device.last_w, now_w, dt_s, self.gap_s)
        device.measured = False
        if counter_mj is not None and device.last_mj is not None:
            step_j = (counter_mj - device.last_mj) / 1000.0
            if 0 <= step_j <= MAX_POWER_WATTS * dt_s:
                added, device.measured = step_j, True
            else:
                self.resets += 1
                log.info(
                    "energy: NVML counter of %.64r jumped by %.3f J in %.1f s (driver reload or "
                    "GPU reset); this step uses the power reading",
                    key.device,
                    step_j,
                    dt_s,
                )
        device.total_j += added
        device.session_j += added
        device.last_at, device.last_w, device.last_mj = at, now_w, counter_mj

    def rows(self) -> list[EnergyRow]:
        """Devices with a reading in this process and energy to show, in first-seen order."""
        seen = sorted(
            ((k, d) for k, d in self._devices.items() if d.seen and d.total_j > 0),
            key=lambda kd: (kd[1].order, kd[0]),
        )
        return [EnergyRow(key, d.total_j, d.session_j, d.gpu_index, d.measured) for key, d in seen]

    def session_j(self, scope: Scope, hosts: Container[str]) -> float:
        """Energy of one scope's devices on `hosts` since this process started: what
        summing `rows()` gives, without ordering every device (a fleet view asks each second)."""
        return sum(
            d.session_j
            for key, d in self._devices.items()
            if d.session_j > 0 and key.scope is scope and key.host in hosts
        )

    def totals(self) -> dict[EnergyKey, float]:
        """Every lifetime total, including carried-over devices not seen yet (for saving)."""
        return {key: d.total_j for key, d in self._devices.items() if d.total_j > 0}
