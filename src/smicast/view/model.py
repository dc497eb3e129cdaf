"""The view model: hosts -> GPUs with history rings, CPU, memory, processes, errors, alerts.

Plain Python, no Textual: a source feeds `SourceEvent`s into `ViewModel.apply()`
and any view (the one-host terminal UI, a fleet view) reads the result. Hosts
are keyed by what the source calls them (the host name for the local machine, the
URL for a remote agent), so one model holds many hosts. Time is passed in.

An event carries a typed `Snapshot`, or (from a fleet) a `LazyFrame`: its readings
feed the histories, alerts and figures at once, and its Snapshot is built when a
view first reads `HostView.snapshot`, a section or a `GpuView.info` of that host.

Each series keeps its history in a `Ring` (`view/ring.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from msgspec import UNSET

from smicast.readings import (
    ChassisReading,
    CpuReading,
    GpuReading,
    LazyFrame,
    MemoryReading,
    Readings,
)
from smicast.record.replay import timestamp_epoch
from smicast.schema import (
    ChassisInfo,
    CpuInfo,
    GpuInfo,
    MemoryInfo,
    ProcessInfo,
    ReaderError,
    Snapshot,
)
from smicast.view.alerts import AlertConfig, Alerter, Level, Transition
from smicast.view.ring import HISTORY_SAMPLES as HISTORY_SAMPLES
from smicast.view.ring import Ring as Ring

MAX_HOSTS: Final = 4096
MAX_GPUS_PER_HOST: Final = 1024

HostKey = str


@dataclass(frozen=True)
class SourceEvent:
    """What a source yields: a frame for a host, or a problem reaching it (`error`).

    `rewound` says the frame does not follow the previous one (a replay seek or loop):
    the host's history and alert timers start again. A fleet's frame comes as `frame`,
    its Snapshot built only when a view needs it.
    """

    host: HostKey
    snapshot: Snapshot | None = None
    error: str | None = None
    rewound: bool = False
    frame: LazyFrame | None = None


def reading(value: float | None, *, missing_below: float = 0.0) -> float | None:
    """A wire value as a reading: None for null and for all-smi's "unavailable" sentinels."""
    if value is None or value != value or value < missing_below:
        return None
    return float(value)


def percent(used: int, total: int) -> float | None:
    return used * 100.0 / total if total > 0 else None


@dataclass(eq=False)
class GpuView:
    key: str  # uuid, or the position when a reader gave none
    index: int  # position in the frame's `gpus`
    reading: GpuInfo | GpuReading  # the latest frame's record, or its readings (a fleet frame)
    util: Ring = field(default_factory=Ring)
    memory: Ring = field(default_factory=Ring)
    temperature: Ring = field(default_factory=Ring)
    power: Ring = field(default_factory=Ring)
    _throttle: tuple[int, list[str]] | None = field(default=None, repr=False)
    _label: tuple[int, str, str] | None = field(default=None, repr=False)
    _info: GpuInfo | None = field(default=None, repr=False)  # built from a lazy frame
    _host: HostView | None = field(default=None, repr=False)  # builds it

    @property
    def info(self) -> GpuInfo:
        """The latest frame's full record of this GPU (built from a lazy frame on demand)."""
        reading = self.reading
        if isinstance(reading, GpuInfo):
            return reading
        if self._info is None and self._host is not None:
            self._host.build()
        if self._info is None:  # the frame's full Snapshot is malformed: its readings
            self._info = _info_of(reading)
        return self._info

    @property
    def label(self) -> str:
        name = self.reading.name
        cached = self._label
        if cached is None or cached[0] != self.index or cached[1] != name:
            cached = self._label = (self.index, name, f"GPU{self.index} {name}")
        return cached[2]

    @property
    def throttle_keys(self) -> list[str]:
        """The `detail` keys that report throttling (looked up again when the keys change)."""
        keys = self.info.detail.keys()
        if self._throttle is None or self._throttle[0] != len(keys):
            self._throttle = (len(keys), [k for k in keys if "throttl" in k.lower()])
        return self._throttle[1]

    def push(self, info: GpuInfo | GpuReading) -> None:
        self.reading = info
        self._info = None
        self.util.push(reading(info.utilization))
        self.memory.push(percent(info.used_memory, info.total_memory))
        temp = info.temperature
        self.temperature.push(float(temp) if temp > 0 else None)
        self.power.push(reading(info.power_consumption))

    def clear(self) -> None:
        for ring in (self.util, self.memory, self.temperature, self.power):
            ring.clear()


def _info_of(r: GpuReading) -> GpuInfo:
    """A GPU record with what the readings know (identity fields they lack left empty)."""
    return GpuInfo(
        device_type="", host_id=r.hostname, hostname=r.hostname, instance="", name=r.name,
        time="", uuid=r.uuid, power_consumption=r.power_consumption,
        temperature=r.temperature, total_memory=r.total_memory, used_memory=r.used_memory,
        utilization=r.utilization,
    )  # fmt: skip


def _gpu_keys(gpus: Sequence[GpuInfo | GpuReading]) -> Iterator[tuple[str, int]]:
    """Each GPU's view key and position: the UUID, else the position; a repeat gets both."""
    seen: set[str] = set()
    for i, gpu in enumerate(gpus[:MAX_GPUS_PER_HOST]):
        key = gpu.uuid or f"#{i}"
        if key in seen:
            key = f"{key}#{i}"
        seen.add(key)
        yield key, i


def _cpu_utilization(cpus: Sequence[CpuInfo | CpuReading]) -> float | None:
    values = [u for c in cpus if (u := reading(c.utilization)) is not None]
    return sum(values) / len(values) if values else None


def _memory_utilization(mems: Sequence[MemoryInfo | MemoryReading]) -> float | None:
    return percent(sum(m.used_bytes for m in mems), sum(m.total_bytes for m in mems))


def _chassis_power_w(chassis: Sequence[ChassisInfo | ChassisReading]) -> float | None:
    values = [w for c in chassis if (w := reading(c.total_power_watts)) is not None]
    return sum(values) if values else None


@dataclass(eq=False)
class HostView:
    key: HostKey
    hostname: str = ""
    frame_epoch_s: float | None = None  # the frame's own timestamp
    received_s: float | None = None  # when it arrived (the `now` passed in)
    frames: int = 0
    source_error: str | None = None  # the last problem reaching the host; None once a frame came
    gpus: dict[str, GpuView] = field(default_factory=dict)
    cpu: Ring = field(default_factory=Ring)
    memory: Ring = field(default_factory=Ring)
    power: Ring = field(default_factory=Ring)
    alerts: Alerter = field(default_factory=Alerter)
    _snapshot: Snapshot | None = field(default=None, repr=False)
    _frame: LazyFrame | None = field(default=None, repr=False)  # the latest, not built yet
    _readings: Snapshot | Readings | None = field(default=None, repr=False)

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest frame, typed (a lazy frame's is built now). A lazy frame that turns out
        malformed leaves the last one built here and says so in `source_error`."""
        if self._frame is not None:
            self.build()
        return self._snapshot

    @property
    def readings(self) -> Snapshot | Readings | None:
        """The latest frame's readings, never building a lazy frame."""
        return self._readings

    def build(self) -> None:
        """Build the latest lazy frame's Snapshot and its GPUs' records, if not done."""
        frame, self._frame = self._frame, None
        if frame is None:
            return
        snap = frame.snapshot()
        if snap is None:
            self.source_error = frame.error
            return
        self._snapshot = snap
        if snap.gpus is UNSET:
            return
        for key, i in _gpu_keys(snap.gpus):
            view = self.gpus.get(key)
            if view is not None and not isinstance(view.reading, GpuInfo):
                view._info = snap.gpus[i]

    # The latest frame's sections; empty when the frame left a section out.
    @property
    def cpus(self) -> list[CpuInfo]:
        return _section(self.snapshot, "cpus")

    @property
    def memories(self) -> list[MemoryInfo]:
        return _section(self.snapshot, "memory")

    @property
    def chassis(self) -> list[ChassisInfo]:
        return _section(self.snapshot, "chassis")

    @property
    def processes(self) -> list[ProcessInfo]:
        return _section(self.snapshot, "processes")

    @property
    def errors(self) -> list[ReaderError]:
        return _section(self.snapshot, "errors")

    def gpu_list(self) -> list[GpuView]:
        return sorted(self.gpus.values(), key=lambda g: g.index)

    def cpu_utilization(self) -> float | None:
        return _cpu_utilization(_section(self._readings, "cpus"))

    def memory_utilization(self) -> float | None:
        return _memory_utilization(_section(self._readings, "memory"))

    def chassis_power_w(self) -> float | None:
        return _chassis_power_w(_section(self._readings, "chassis"))

    def age_s(self, now_s: float) -> float | None:
        return None if self.received_s is None else max(0.0, now_s - self.received_s)

    def alert_levels(self) -> dict[str, Level]:
        return self.alerts.active()

    def clear_history(self) -> None:
        """Forget the rings and alert timers (a replay seek: the past no longer leads here)."""
        for ring in (self.cpu, self.memory, self.power):
            ring.clear()
        for gpu in self.gpus.values():
            gpu.clear()
        self.alerts.reset()

    def push(self, snap: Snapshot, now_s: float) -> list[Transition]:
        self._snapshot, self._frame = snap, None
        return self._push(snap, now_s, None)

    def push_frame(self, frame: LazyFrame, now_s: float) -> list[Transition]:
        """A frame whose Snapshot is built only when a view reads this host's details."""
        self._frame = frame
        return self._push(frame.readings, now_s, self)

    def _push(
        self, snap: Snapshot | Readings, now_s: float, builder: HostView | None
    ) -> list[Transition]:
        self._readings = snap
        self.hostname = snap.hostname
        self.frame_epoch_s = timestamp_epoch(snap.timestamp)
        self.received_s = now_s
        self.frames += 1
        self.source_error = None
        self.cpu.push(self.cpu_utilization())
        self.memory.push(self.memory_utilization())
        self.power.push(self.chassis_power_w())
        gpus: Sequence[GpuInfo | GpuReading] | None = None if snap.gpus is UNSET else snap.gpus
        if gpus is None:
            return []  # the section failed this time: keep the GPUs and their history
        seen: dict[str, GpuView] = {}
        for key, i in _gpu_keys(gpus):
            info = gpus[i]
            view = self.gpus.get(key)
            if view is None:
                view = GpuView(key, i, info)
            view.index = i
            view._host = builder
            view.push(info)
            seen[key] = view
        self.gpus = seen
        when = self.frame_epoch_s if self.frame_epoch_s is not None else now_s
        return self.alerts.evaluate(
            self.hostname, ((g.key, g.label, g.reading) for g in seen.values()), when
        )


def _section(snap: Snapshot | Readings | None, name: str) -> list:  # type: ignore[type-arg]
    if snap is None:
        return []
    value = getattr(snap, name)
    return [] if value is UNSET else value


class ViewModel:
    """Every host a view knows, in the order first seen; `version` moves on every change."""

    def __init__(self, alerts: AlertConfig | None = None, max_hosts: int = MAX_HOSTS) -> None:
        self.alert_config = alerts or AlertConfig()
        self.hosts: dict[HostKey, HostView] = {}
        self.max_hosts = max_hosts
        self.version = 0

    def host(self, key: HostKey) -> HostView:
        view = self.hosts.get(key)
        if view is None:
            if len(self.hosts) >= self.max_hosts:
                raise OverflowError(f"more than {self.max_hosts} hosts")
            view = HostView(key, alerts=Alerter(self.alert_config))
            self.hosts[key] = view
        return view

    def apply(self, event: SourceEvent, now_s: float) -> list[Transition]:
        """Take one event; returns the alert transitions it caused."""
        host = self.host(event.host)
        self.version += 1
        if event.rewound:
            host.clear_history()
        if event.snapshot is not None:
            return host.push(event.snapshot, now_s)
        if event.frame is not None:
            return host.push_frame(event.frame, now_s)
        host.source_error = event.error
        return []

    def clear_history(self) -> None:
        for host in self.hosts.values():
            host.clear_history()
        self.version += 1

    def __iter__(self) -> Iterator[HostView]:
        return iter(self.hosts.values())

    def first(self) -> HostView | None:
        return next(iter(self.hosts.values()), None)
