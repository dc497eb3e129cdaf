"""CPU on Linux: static facts from /proc/cpuinfo once, load from /proc/stat deltas.

Temperature comes from hwmon (coretemp, k10temp, zenpower, cpu_thermal) and power
from RAPL energy counters; both are found once at construction, so a read opens
only the few files it needs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, ReadError, default_hostname
from smicast.readers.kernelfs import read_text
from smicast.schema import CoreUtilization, CpuInfo, CpuSocketInfo, PlatformType, local_time_text

_TEMP_DRIVERS: Final = ("coretemp", "k10temp", "zenpower", "cpu_thermal")
_PLATFORMS: Final = {"GenuineIntel": "Intel", "AuthenticAMD": "Amd"}
_ARM_VENDORS: Final = {"0x41": "ARM", "0x48": "HiSilicon", "0x4e": "NVIDIA", "0xc0": "Ampere"}
# Sampling this many cores per socket gives a fair average clock; reading every
# scaling_cur_freq on a 256-thread host would cost more than the rest of the read.
_FREQ_SAMPLES_PER_SOCKET: Final = 16


def _read_or(path: Path, default: str = "") -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return default


def _suffix_number(path: Path) -> int:
    """`hwmon10` after `hwmon9`, `temp10_input` after `temp9_input`."""
    return int("".join(ch for ch in path.name if ch.isdigit()) or 0)


def parse_cpuinfo(text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Per-processor blocks, and the trailing global fields (arm's `Hardware`)."""
    processors: list[dict[str, str]] = []
    extra: dict[str, str] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        if fields.get("processor", "").isdigit():
            processors.append(fields)
        else:
            extra.update(fields)
    return processors, extra


def parse_stat(text: str) -> dict[str, tuple[int, int]]:
    """`cpu`/`cpuN` -> (idle ticks, total ticks); the cpu lines come first in /proc/stat."""
    times: dict[str, tuple[int, int]] = {}
    for line in text.split("\n"):
        if not line.startswith("cpu"):
            break
        fields = line.split()
        # user nice system idle iowait irq softirq steal; guest time is inside user already.
        ticks = [int(v) for v in fields[1:9]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        times[fields[0]] = (idle, sum(ticks))
    return times


def _busy(idle: int, total: int) -> float:
    if total <= 0:
        return 0.0
    return min(100.0, max(0.0, (total - idle) * 100.0 / total))


def _model(first: dict[str, str], extra: dict[str, str]) -> str:
    if first.get("model name"):
        return first["model name"]
    if extra.get("Hardware"):
        return extra["Hardware"]
    vendor, part = first.get("CPU implementer", ""), first.get("CPU part", "")
    if not vendor and not part:
        return "Unknown CPU"
    name = _ARM_VENDORS.get(vendor, "Unknown")
    return f"{name} ARM Processor (Part: {part})" if part else f"{name} ARM Processor"


def _platform(first: dict[str, str], architecture: str) -> PlatformType:
    vendor = first.get("vendor_id", "")
    if vendor in _PLATFORMS:
        return _PLATFORMS[vendor]
    if architecture.startswith(("arm", "aarch64")) or "CPU implementer" in first:
        return "Arm"
    return {"Other": vendor or architecture or "Unknown"}


def _mhz_from_khz_file(path: Path) -> int:
    text = _read_or(path)
    return int(text) // 1000 if text.isdigit() else 0


def _average_mhz(processors: list[dict[str, str]]) -> int:
    """all-smi's fallback base clock: the mean of the `cpu MHz` lines."""
    try:
        mhz = [float(p["cpu MHz"]) for p in processors if "cpu MHz" in p]
    except ValueError:
        return 0
    return int(sum(mhz) / len(mhz)) if mhz else 0


def _cache_mb(first: dict[str, str], cpu0: Path) -> int:
    size = first.get("cache size", "").split()
    if size and size[0].isdigit():
        kib = int(size[0]) * (1024 if size[1:2] == ["MB"] else 1)
        return kib // 1024
    # arm has no `cache size`: take the largest cache level sysfs lists for cpu0.
    best_kib = 0
    for index in cpu0.glob("cache/index*"):
        text = _read_or(index / "size").rstrip("K")
        if text.isdigit():
            best_kib = max(best_kib, int(text))
    return best_kib // 1024


@dataclass
class _TempSensor:
    path: str
    socket_id: int | None


@dataclass
class _RaplZone:
    path: str
    max_range_uj: int
    last_uj: int


def _find_temp_sensors(sysfs: Path, sockets: list[int]) -> list[_TempSensor]:
    found: list[_TempSensor] = []
    for hwmon in sorted((sysfs / "class" / "hwmon").glob("hwmon*"), key=_suffix_number):
        driver = _read_or(hwmon / "name")
        if driver not in _TEMP_DRIVERS:
            continue
        inputs = sorted(hwmon.glob("temp*_input"), key=_suffix_number)
        labels = {p: _read_or(p.with_name(p.name.replace("_input", "_label"))) for p in inputs}
        packages = [p for p in inputs if labels[p].startswith(("Package id", "Physical id"))]
        if packages:  # coretemp: one package sensor per socket, the rest are cores
            for p in packages:
                number = labels[p].split()[-1]
                found.append(_TempSensor(str(p), int(number) if number.isdigit() else None))
            continue
        # k10temp/zenpower: Tctl is the control temperature the fan curve follows.
        chosen = next((p for p in inputs if labels[p] == "Tctl"), None)
        chosen = chosen or next((p for p in inputs if labels[p] == "Tdie"), None)
        chosen = chosen or (inputs[0] if inputs else None)
        if chosen is not None:
            found.append(_TempSensor(str(chosen), None))
    # One unlabelled sensor per socket (a k10temp per package): pair them in order.
    unassigned = [s for s in found if s.socket_id is None]
    if len(unassigned) == len(sockets) == len(found):
        for sensor, socket in zip(unassigned, sockets, strict=True):
            sensor.socket_id = socket
    return found


def _find_rapl_zones(sysfs: Path) -> list[_RaplZone]:
    zones: list[_RaplZone] = []
    for zone in sorted((sysfs / "class" / "powercap").glob("intel-rapl:*")):
        # Subzones (core, uncore, dram) are inside their package; psys spans the platform.
        if zone.name.count(":") != 1 or not _read_or(zone / "name").startswith("package"):
            continue
        energy = zone / "energy_uj"
        try:  # root-only on most kernels since the Platypus fix: then no power figure
            last = int(energy.read_text())
        except (OSError, ValueError):
            continue
        max_range = _read_or(zone / "max_energy_range_uj", "0")
        zones.append(_RaplZone(str(energy), int(max_range) if max_range.isdigit() else 0, last))
    return zones


class CpuReader:
    name = "cpu"
    section = Section.CPU

    def __init__(
        self,
        procfs: Path = Path("/proc"),
        sysfs: Path = Path("/sys"),
        *,
        hostname: str | None = None,
        clock: Clock = WALL_CLOCK,
        monotonic: Callable[[], float] = time.monotonic,
        architecture: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        min_window_s: float = 0.1,
    ) -> None:
        self._stat_path = str(procfs / "stat")
        self._cpuinfo_path = str(procfs / "cpuinfo")
        self._clock, self._monotonic = clock, monotonic
        host = hostname or default_hostname()
        arch = architecture or os.uname().machine
        processors, extra = parse_cpuinfo(_read_or(procfs / "cpuinfo"))
        first = processors[0] if processors else {}
        try:  # without it the first read averages since boot, which is still true
            self._prev = parse_stat(read_text(self._stat_path))
        except (OSError, ValueError, IndexError):
            self._prev = {}
        cpus = [int(p["processor"]) for p in processors]
        cpus = cpus or sorted(int(k[3:]) for k in self._prev if k[3:].isdigit())
        cpus = cpus or list(range(os.cpu_count() or 1))
        self._socket_of = dict.fromkeys(cpus, 0)
        for p in processors:
            if p.get("physical id", "").isdigit():
                self._socket_of[int(p["processor"])] = int(p["physical id"])
        self._sockets = sorted(set(self._socket_of.values()))
        # Logical CPUs per socket, as all-smi counts them (its total_cores is logical too).
        self._socket_size = {s: list(self._socket_of.values()).count(s) for s in self._sockets}
        self._mhz_order = [int(p["processor"]) for p in processors if "cpu MHz" in p]
        cpu0 = sysfs / "devices" / "system" / "cpu" / "cpu0"
        base = _mhz_from_khz_file(cpu0 / "cpufreq" / "base_frequency") or _average_mhz(processors)
        model = _model(first, extra)
        self._template = CpuInfo(
            host_id=host,
            hostname=host,
            instance=host,
            cpu_model=model,
            architecture=arch,
            platform_type=_platform(first, arch),
            socket_count=len(self._sockets),
            total_cores=len(cpus),
            total_threads=len(cpus),
            base_frequency_mhz=base,
            max_frequency_mhz=_mhz_from_khz_file(cpu0 / "cpufreq" / "cpuinfo_max_freq") or base,
            cache_size_mb=_cache_mb(first, cpu0),
            time="",
        )
        self._freq_paths: dict[int, list[str]] = {}
        if (cpu0 / "cpufreq" / "scaling_cur_freq").exists():
            for socket in self._sockets:
                members = [c for c in cpus if self._socket_of[c] == socket]
                step = max(1, len(members) // _FREQ_SAMPLES_PER_SOCKET)
                self._freq_paths[socket] = [
                    str(cpu0.parent / f"cpu{c}" / "cpufreq" / "scaling_cur_freq")
                    for c in members[::step]
                ]
        self._temps = _find_temp_sensors(sysfs, self._sockets)
        self._rapl = _find_rapl_zones(sysfs)
        self._rapl_at = monotonic()
        # A one-shot snapshot reads right after construction: a window of a few ms gives
        # per-core figures of 0/50/100 %. The first read waits out a short window instead.
        self._first_read_due = self._rapl_at + min_window_s
        self._sleep = sleep

    def read(self) -> list[CpuInfo]:
        if self._first_read_due:
            wait_s = self._first_read_due - self._monotonic()
            self._first_read_due = 0.0
            if wait_s > 0:
                self._sleep(wait_s)
        try:
            now = parse_stat(read_text(self._stat_path))
        except (OSError, ValueError, IndexError) as exc:
            raise ReadError(f"cannot read {self._stat_path}: {exc}") from exc
        prev, self._prev = self._prev, now
        cores: list[CoreUtilization] = []
        per_socket = {s: [0, 0] for s in self._sockets}
        for key, (idle, total) in now.items():
            if not key[3:].isdigit():
                continue
            old_idle, old_total = prev.get(key, (0, 0))
            cpu = int(key[3:])
            cores.append(
                CoreUtilization(core_id=cpu, utilization=_busy(idle - old_idle, total - old_total))
            )
            acc = per_socket.setdefault(self._socket_of.get(cpu, 0), [0, 0])
            acc[0] += idle - old_idle
            acc[1] += total - old_total
        idle, total = now.get("cpu", (0, 0))
        old_idle, old_total = prev.get("cpu", (0, 0))
        temps, freqs = self._temperatures(), self._frequencies()
        sockets = [
            CpuSocketInfo(
                socket_id=s,
                utilization=_busy(d_idle, d_total),
                cores=self._socket_size.get(s, 0),
                threads=self._socket_size.get(s, 0),
                temperature=temps.get(s),
                frequency_mhz=freqs.get(s, self._template.base_frequency_mhz),
            )
            for s, (d_idle, d_total) in sorted(per_socket.items())
        ]
        return [
            msgspec.structs.replace(
                self._template,
                utilization=_busy(idle - old_idle, total - old_total),
                temperature=max(temps.values()) if temps else None,
                power_consumption=self._power_watts(),
                per_socket_info=sockets,
                per_core_utilization=cores,
                time=local_time_text(self._clock()),
            )
        ]

    def _temperatures(self) -> dict[int | None, int]:
        temps: dict[int | None, int] = {}
        for sensor in self._temps:
            try:
                celsius = int(read_text(sensor.path)) // 1000
            except (OSError, ValueError):
                continue
            temps[sensor.socket_id] = max(celsius, temps.get(sensor.socket_id, celsius))
        return temps

    def _frequencies(self) -> dict[int, int]:
        try:
            if self._freq_paths:
                return {
                    s: sum(khz) // len(khz) // 1000
                    for s, paths in self._freq_paths.items()
                    if (khz := [int(read_text(p)) for p in paths])
                }
            if not self._mhz_order:
                return {}
            # No cpufreq driver (most VMs): the kernel's own figure in /proc/cpuinfo.
            mhz = _cpuinfo_mhz(read_text(self._cpuinfo_path))
        except (OSError, ValueError):
            return {}
        by_socket: dict[int, list[float]] = {}
        for cpu, value in zip(self._mhz_order, mhz, strict=False):
            by_socket.setdefault(self._socket_of.get(cpu, 0), []).append(value)
        return {s: int(sum(v) / len(v)) for s, v in by_socket.items()}

    def _power_watts(self) -> float | None:
        if not self._rapl:
            return None
        now = self._monotonic()
        try:  # all zones or none: a partial update would skew the next interval
            readings = [int(read_text(zone.path)) for zone in self._rapl]
        except (OSError, ValueError):
            return None
        joules = 0.0
        for zone, energy in zip(self._rapl, readings, strict=True):
            delta = energy - zone.last_uj
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                delta += zone.max_range_uj
            zone.last_uj = energy
            joules += delta / 1e6
        elapsed, self._rapl_at = now - self._rapl_at, now
        return joules / elapsed if elapsed > 0 else None


def _cpuinfo_mhz(text: str) -> list[float]:
    """Every `cpu MHz` value in order, found with str.find rather than splitting every line."""
    values: list[float] = []
    at = text.find("cpu MHz")
    while at >= 0:
        colon = text.find(":", at)
        end = text.find("\n", colon)
        values.append(float(text[colon + 1 : end if end >= 0 else None]))
        at = text.find("cpu MHz", colon)
    return values
