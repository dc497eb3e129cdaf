"""Accelerators that are not there: a busy node, reproducible from a seed.

`SimulatedReader` stands in for a vendor reader when a machine has no GPUs (demos,
tests, load on the API). Each `read()` moves every device one step the way all-smi's
mock server does: utilization walks, power, temperature and clock follow it, used
memory drifts. Everything comes from one `random.Random(seed)` that only the
constructor and `read()` draw from, so a seed and a sequence of reads give the same
frames every time, however often `read_processes()` is called in between.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Final

from msgspec import UNSET

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, GpuProcess, default_hostname
from smicast.readers.nvidia_static import PSTATE_NAMES
from smicast.readers.simulated_churn import DeviceChurn
from smicast.readers.simulated_profiles import (
    GIB,
    MIB,
    NVIDIA_GSP_VERSION,
    NVIDIA_SWITCH_LINKS,
    NVIDIA_THRESHOLDS_C,
    PARTS,
    Part,
    command_fields,
)
from smicast.schema import GpmMetrics, GpuInfo, ProcessInfo, local_time_text

HOST_MEMORY_BYTES: Final = 2 << 40  # a DGX-class host, for processes' memory_percent
PID_MAX: Final = 4_194_304  # Linux's default on 64-bit hosts; pids wrap to 300 past it
UTIL_STEP: Final = 5.0  # the mock server's walk: at most ±5 points a read
UTIL_PULL: Final = 0.1  # towards each device's own level, so idle devices stay idle
CHURN_PER_READ: Final = 0.01  # chance that a device's process set changes on a read
# Processes account for less than the device's used memory: the driver's context
# and the allocator's slack belong to nobody.
PROCESS_SHARE_OF_USED: Final = 0.96


class _Process:
    __slots__ = (
        "command",
        "compute_weight",
        "cpu_busy",
        "memory_weight",
        "name",
        "pid",
        "ppid",
        "rss",
        "start_s",
        "threads",
        "user",
        "vms",
    )

    def __init__(
        self, rng: random.Random, part: Part, busy: bool, pid: int, start_s: float
    ) -> None:
        work = rng.choice(part.busy_workloads if busy else part.idle_workloads)
        self.user = rng.choice(work.users)
        self.command = work.command.format(**command_fields(rng, self.user))
        self.name = work.process_name
        self.pid = pid
        self.ppid = 1 if work.service else max(2, pid - rng.randint(1, 40))
        self.start_s = start_s
        self.memory_weight = rng.uniform(*work.memory_weight)
        self.compute_weight = rng.uniform(*work.memory_weight)
        self.cpu_busy = rng.uniform(*work.cpu_percent)
        self.rss = int(rng.uniform(*work.rss_gib) * GIB) // 4096 * 4096
        self.vms = self.rss + int(rng.uniform(60.0, 320.0) * GIB) // 4096 * 4096
        self.threads = rng.randint(*work.threads)


class _Device:
    """One accelerator: what never changes about it, and where its walk stands."""

    __slots__ = (
        "bandwidth_k",
        "busy",
        "churn",
        "detail",
        "index",
        "numa_node",
        "occupancy_k",
        "power_base",
        "power_per_mem_pct",
        "power_per_util",
        "processes",
        "target",
        "used",
        "used_bytes",
        "util",
        "uuid",
    )

    def __init__(
        self,
        rng: random.Random,
        churn_rng: random.Random,
        part: Part,
        uuid: str,
        index: int,
        busy: bool,
        numa: int | None,
    ) -> None:
        self.index = index
        self.uuid = uuid
        self.busy = busy
        self.numa_node = numa
        self.util = rng.uniform(60.0, 95.0) if busy else rng.uniform(0.0, 6.0)
        self.target = rng.uniform(70.0, 98.0) if busy else rng.uniform(0.0, 6.0)
        self.used = part.total_memory * (rng.uniform(0.4, 0.9) if busy else rng.uniform(0.05, 0.3))
        self.used_bytes = int(self.used) // MIB * MIB
        bias = rng.uniform(-part.power_bias_w, part.power_bias_w)
        self.power_base = rng.uniform(*part.power_base_w) + bias
        self.power_per_util = rng.uniform(*part.power_per_util_w)
        self.power_per_mem_pct = rng.uniform(*part.power_per_mem_pct_w)
        self.occupancy_k = rng.uniform(0.55, 0.85)
        self.bandwidth_k = rng.uniform(0.35, 0.9)
        self.detail = part.static_detail(uuid, index)
        self.churn = DeviceChurn(
            churn_rng, pstates=part.nvidia, link=part.pcie_link, util=self.util
        )
        if part.nvidia:
            # all-smi reads the detail map once, at start: the P-state and link seen then stay.
            pstate = self.churn.step(self.util)
            self.detail["performance_state"] = PSTATE_NAMES[pstate or 0]
            self.detail["PCIe Generation"] = str(self.churn.link_generation)
        self.processes: list[_Process] = []


class SimulatedReader:
    """`count` devices of one platform (`nvidia`, `amd`, `gaudi`, `tenstorrent`)."""

    section = Section.GPU

    def __init__(
        self,
        platform: str,
        count: int,
        *,
        seed: int = 0,
        hostname: str | None = None,
        clock: Clock = WALL_CLOCK,
    ) -> None:
        part = PARTS.get(platform)
        if part is None:
            raise ValueError(
                f"unknown simulated platform {platform!r}: expected one of {', '.join(PARTS)}"
            )
        if count < 0:
            raise ValueError(f"simulated device count must not be negative, got {count}")
        self.name = f"simulated-{platform}"
        self._part = part
        self._clock = clock
        self._host = hostname or default_hostname()
        self._rng = rng = random.Random(seed)
        # Live-value churn draws from its own generator: the other values stay as they were.
        churn_rng = random.Random(f"churn:{platform}:{seed}")
        self._lock = threading.Lock()
        self._reads = 0
        self._now = now = clock()
        self._next_pid = rng.randint(180_000, 900_000)
        idle = set(rng.sample(range(count), count // 4))  # most devices busy, some idle-ish
        self._devices: list[_Device] = []
        for index in range(count):
            # Own generator: a device keeps its UUID whatever the count or the read history.
            uuid = part.make_uuid(random.Random(f"{platform}:{seed}:{index}"), index)
            numa = (0 if index < (count + 1) // 2 else 1) if part.nvidia else None
            device = _Device(rng, churn_rng, part, uuid, index, index not in idle, numa)
            ages_s = sorted(rng.uniform(600.0, 5 * 86_400.0) for _ in range(rng.randint(1, 3)))
            device.processes = [self._spawn(device, now - age) for age in reversed(ages_s)]
            self._devices.append(device)

    def _spawn(self, device: _Device, start_s: float) -> _Process:
        self._next_pid += self._rng.randint(1, 1500)
        if self._next_pid >= PID_MAX:
            self._next_pid = 300 + self._next_pid - PID_MAX
        return _Process(self._rng, self._part, device.busy, self._next_pid, start_s)

    def _churn(self, device: _Device, now: float) -> None:
        procs = device.processes
        roll = self._rng.random()
        if len(procs) > 1 and roll < 0.3:
            procs.pop(self._rng.randrange(len(procs)))
        elif len(procs) < 3 and roll > 0.7:
            procs.append(self._spawn(device, now))
        else:
            procs[self._rng.randrange(len(procs))] = self._spawn(device, now)

    def read(self) -> list[GpuInfo]:
        with self._lock:
            return self._step()

    def _step(self) -> list[GpuInfo]:
        now = self._clock()
        self._now = now
        self._reads += 1
        when = local_time_text(now)
        rnd = self._rng.random
        part = self._part
        host = self._host
        total = part.total_memory
        mem_lo, mem_hi, mem_step = total * 0.05, total * 0.95, total * 0.02
        p_noise, p_min, p_max = part.power_noise_w, part.power_min_w, part.power_max_w
        c_idle, c_min, c_max = part.clock_idle_mhz, part.clock_min_mhz, part.clock_max_mhz
        c_per_util = (part.clock_busy_mhz - c_idle) / 100.0
        c_noise = part.clock_noise_mhz
        live_detail = part.live_detail
        nvidia = part.nvidia
        slowdown, shutdown, max_operating = NVIDIA_THRESHOLDS_C if nvidia else (None, None, None)
        frames: list[GpuInfo] = []
        for dev in self._devices:
            step = (rnd() * 2.0 - 1.0) * UTIL_STEP + UTIL_PULL * (dev.target - dev.util)
            step = UTIL_STEP if step > UTIL_STEP else -UTIL_STEP if step < -UTIL_STEP else step
            util = dev.util + step
            util = 0.0 if util < 0.0 else 100.0 if util > 100.0 else util
            dev.util = util

            used = dev.used + (rnd() * 2.0 - 1.0) * mem_step
            used = mem_lo if used < mem_lo else mem_hi if used > mem_hi else used
            dev.used = used
            used_bytes = dev.used_bytes = int(used) // MIB * MIB

            power = (
                dev.power_base
                + util * dev.power_per_util
                + used / total * 100.0 * dev.power_per_mem_pct
                + (rnd() * 2.0 - 1.0) * p_noise
            )
            power = p_min if power < p_min else p_max if power > p_max else power
            # A well-cooled node: 65-75 °C under load, a peak now and then past the 80 °C
            # alert line, so demos show alerts without every busy GPU in WARN.
            temp = 38.0 + util * 0.2 + (power - 200.0) * 0.04 + (rnd() * 6.0 - 3.0)
            temp_c = 30 if temp < 30.0 else 90 if temp > 90.0 else round(temp)
            clock_mhz = 0
            if c_max:
                clock = c_idle + util * c_per_util + (rnd() * 2.0 - 1.0) * c_noise
                clock_mhz = c_min if clock < c_min else c_max if clock > c_max else round(clock)
            if rnd() < CHURN_PER_READ:
                self._churn(dev, now)
            shown_util = float(round(util))
            churn = dev.churn
            pstate = churn.step(shown_util)

            if live_detail is None:
                detail = dict(dev.detail)
            else:
                detail = live_detail(
                    dev.detail, power, temp_c, clock_mhz, used_bytes, total, self._reads
                )
            frames.append(
                GpuInfo(
                    uuid=dev.uuid,
                    time=when,
                    name=part.name,
                    device_type=part.device_type,
                    host_id=host,
                    hostname=host,
                    instance=host,
                    utilization=shown_util,
                    ane_utilization=0.0,
                    temperature=temp_c,
                    used_memory=used_bytes,
                    total_memory=total,
                    frequency=clock_mhz,
                    power_consumption=round(power, 2),
                    temperature_threshold_slowdown=slowdown,
                    temperature_threshold_shutdown=shutdown,
                    temperature_threshold_max_operating=max_operating,
                    performance_state=pstate,
                    fan_speed_rpm=None,  # passively cooled SXM/OAM parts have no tachometer
                    pcie_link_generation=(
                        UNSET if churn.link_generation is None else churn.link_generation
                    ),
                    pcie_link_width=UNSET if churn.link_width is None else churn.link_width,
                    numa_node_id=dev.numa_node,
                    gsp_firmware_mode=1 if nvidia else None,
                    gsp_firmware_version=NVIDIA_GSP_VERSION if nvidia else None,
                    nvlink_remote_devices=list(NVIDIA_SWITCH_LINKS) if nvidia else [],
                    gpm_metrics=GpmMetrics(
                        sm_occupancy=round(util / 100.0 * dev.occupancy_k, 3),
                        memory_bandwidth_utilization=round(util / 100.0 * dev.bandwidth_k, 3),
                    )
                    if nvidia
                    else None,
                    detail=detail,
                )
            )
        return frames

    def read_processes(self) -> list[GpuProcess]:
        """The processes as of the last `read()`; draws nothing from the generator."""
        with self._lock:
            now = self._now
            found: list[GpuProcess] = []
            for dev in self._devices:
                procs = dev.processes
                memory_weights = sum(p.memory_weight for p in procs)
                compute_weights = sum(p.compute_weight for p in procs)
                budget = dev.used_bytes * PROCESS_SHARE_OF_USED
                shown_util = float(round(dev.util))  # what the last frame said
                load = shown_util / 100.0
                for p in procs:
                    used = int(budget * p.memory_weight / memory_weights) // MIB * MIB
                    # Floored to a tenth, so the shares never add up past the device.
                    share = math.floor(shown_util * p.compute_weight / compute_weights * 10) / 10
                    cpu_percent = round(p.cpu_busy * (0.2 + 0.8 * load), 1)
                    info = ProcessInfo(
                        device_id=dev.index,
                        device_uuid=dev.uuid,
                        pid=p.pid,
                        process_name=p.name,
                        used_memory=used,
                        cpu_percent=cpu_percent,
                        memory_percent=round(p.rss / HOST_MEMORY_BYTES * 100.0, 2),
                        memory_rss=p.rss,
                        memory_vms=p.vms,
                        user=p.user,
                        state="R" if cpu_percent >= 50.0 else "S",
                        start_time=str(int(p.start_s)),
                        # Grows with the clock at 80 % of the busy rate: a steady average.
                        cpu_time=int(max(0.0, now - p.start_s) * p.cpu_busy / 100.0 * 0.8),
                        command=p.command,
                        ppid=p.ppid,
                        threads=p.threads,
                        uses_gpu=True,
                        priority=20,
                        nice_value=0,
                        gpu_utilization=share,
                    )
                    found.append(
                        GpuProcess(
                            device_id=dev.index,
                            device_uuid=dev.uuid,
                            pid=p.pid,
                            used_memory=used,
                            gpu_utilization=share,
                            info=info,
                        )
                    )
            return found
