"""An agent's Prometheus `/metrics` text read back into a schema-1 Snapshot.

For agents that have no `/events` or `/snapshot` (all-smi before its streaming
API): the `all_smi_*` families smicast and all-smi both write are folded into
GpuInfo, CpuInfo, MemoryInfo, ChassisInfo and ProcessInfo rows. Only the lines a
view uses are looked at: one regular expression anchored at the start of each
wanted family skips everything else (NVLink topology, thresholds, self-metrics)
without splitting the text into lines in Python. Label values are unescaped as
the exposition format says (`\\\\`, `\\"`, `\\n`).

Bounded: at most MAX_DEVICES rows per section and MAX_PROCESSES process rows;
the caller caps the text itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from msgspec import UNSET

from smicast.limits import limit_process
from smicast.schema import (
    ChassisInfo,
    CpuInfo,
    GpuInfo,
    MemoryInfo,
    ProcessInfo,
    Snapshot,
    local_time_text,
    utc_timestamp,
)

MAX_DEVICES: Final = 256
MAX_PROCESSES: Final = 4096

_GPU = (
    "gpu_utilization|gpu_memory_used_bytes|gpu_memory_total_bytes|gpu_temperature_celsius"
    "|gpu_power_consumption_watts|gpu_frequency_mhz|gpu_info|npu_info"
)
_CPU = "cpu_info|cpu_utilization|cpu_socket_count|cpu_core_count|cpu_thread_count|cpu_frequency_mhz|cpu_temperature_celsius|cpu_power_consumption_watts"
_MEM = (
    "memory_total_bytes|memory_used_bytes|memory_available_bytes|memory_free_bytes"
    "|memory_utilization|memory_buffers_bytes|memory_cached_bytes"
    "|swap_total_bytes|swap_used_bytes|swap_free_bytes"
)
_OTHER = "chassis_power_watts|up|process_memory_used_bytes|process_cpu_percent"
_LINE: Final = re.compile(
    rf"^all_smi_({_GPU}|{_CPU}|{_MEM}|{_OTHER})\{{(.*)\}} (\S+)", re.MULTILINE
)
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_ESCAPE: Final = re.compile(r"\\(.)")
_GPU_BASE_LABELS: Final = frozenset({"gpu", "instance", "gpu_uuid", "gpu_index", "uuid", "index"})
_INFO_LABELS: Final = {"type": "device_type"}


def _labels(text: str) -> dict[str, str]:
    out = {}
    for key, value in _LABEL.findall(text):
        if "\\" in value:
            value = _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
        out[key] = value
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _int(value: float | None) -> int:
    return int(value) if value is not None else 0


class _Fold:
    """Rows by key while the text is scanned; `snapshot()` builds the typed frame."""

    def __init__(self, host_id: str) -> None:
        self.host_id = host_id
        self.instance = ""
        self.gpus: dict[str, dict[str, Any]] = {}
        self.cpus: dict[str, dict[str, Any]] = {}
        self.memory: dict[str, dict[str, Any]] = {}
        self.chassis_power: float | None = None
        self.chassis_seen = False
        self.processes: dict[tuple[str, str], dict[str, Any]] = {}

    def row(self, table: dict[Any, dict[str, Any]], key: Any, limit: int) -> dict[str, Any] | None:
        row = table.get(key)
        if row is None:
            if len(table) >= limit:
                return None
            row = table[key] = {}
        return row

    def gpu(self, family: str, labels: dict[str, str], value: float | None) -> None:
        key = labels.get("gpu_uuid") or labels.get("uuid") or labels.get("gpu_index", "")
        row = self.row(self.gpus, key, MAX_DEVICES)
        if row is None:
            return
        row.setdefault("name", labels.get("gpu", ""))
        row.setdefault("uuid", labels.get("gpu_uuid") or labels.get("uuid", ""))
        row.setdefault("index", labels.get("gpu_index") or labels.get("index", "0"))
        self.instance = self.instance or labels.get("instance", "")
        if family in ("gpu_info", "npu_info"):
            row["device_type"] = labels.get("type", "NPU" if family == "npu_info" else "GPU")
            row["detail"] = {k: v for k, v in labels.items() if k not in _GPU_BASE_LABELS}
        else:
            row[family] = value

    def cpu(self, family: str, labels: dict[str, str], value: float | None) -> None:
        row = self.row(self.cpus, labels.get("index", "0"), MAX_DEVICES)
        if row is None:
            return
        self.instance = self.instance or labels.get("instance", "")
        row.setdefault("cpu_model", labels.get("cpu_model", ""))
        if family == "cpu_info":
            row["architecture"] = labels.get("architecture", "")
            row["platform_type"] = labels.get("platform_type", "")
        else:
            row[family] = value

    def mem(self, family: str, labels: dict[str, str], value: float | None) -> None:
        row = self.row(self.memory, labels.get("index", "0"), MAX_DEVICES)
        if row is not None:
            self.instance = self.instance or labels.get("instance", "")
            row[family] = value

    def process(self, family: str, labels: dict[str, str], value: float | None) -> None:
        key = (labels.get("pid", ""), labels.get("gpu_index") or labels.get("device_id", "0"))
        row = self.row(self.processes, key, MAX_PROCESSES)
        if row is not None:
            row.setdefault("labels", labels)
            row[family] = value

    def snapshot(self, now_s: float) -> Snapshot:
        host, inst = self.host_id, self.instance or self.host_id
        when = local_time_text(now_s)
        gpus = [
            GpuInfo(
                device_type=r.get("device_type", "GPU"),
                detail=r.get("detail", {}),
                name=r["name"],
                uuid=r["uuid"],
                host_id=host,
                hostname=inst,
                instance=inst,
                time=when,
                utilization=r.get("gpu_utilization", -1.0),
                used_memory=_int(r.get("gpu_memory_used_bytes")),
                total_memory=_int(r.get("gpu_memory_total_bytes")),
                temperature=_int(r.get("gpu_temperature_celsius")),
                power_consumption=r.get("gpu_power_consumption_watts", -1.0),
                frequency=_int(r.get("gpu_frequency_mhz")),
            )
            for r in sorted(self.gpus.values(), key=lambda r: _index(r["index"]))
        ]
        cpus = [
            CpuInfo(
                architecture=r.get("architecture", ""),
                cpu_model=r["cpu_model"],
                host_id=host,
                hostname=inst,
                instance=inst,
                index=_index(key),
                platform_type=r.get("platform_type", ""),
                socket_count=_int(r.get("cpu_socket_count")),
                total_cores=_int(r.get("cpu_core_count")),
                total_threads=_int(r.get("cpu_thread_count")),
                base_frequency_mhz=_int(r.get("cpu_frequency_mhz")),
                temperature=_opt_int(r.get("cpu_temperature_celsius")),
                power_consumption=r.get("cpu_power_consumption_watts"),
                time=when,
                utilization=r.get("cpu_utilization"),
            )
            for key, r in self.cpus.items()
        ]
        memory = [
            MemoryInfo(
                available_bytes=_int(r.get("memory_available_bytes")),
                buffers_bytes=_int(r.get("memory_buffers_bytes")),
                cached_bytes=_int(r.get("memory_cached_bytes")),
                free_bytes=_int(r.get("memory_free_bytes")),
                host_id=host,
                hostname=inst,
                index=_index(key),
                instance=inst,
                swap_free_bytes=_int(r.get("swap_free_bytes")),
                swap_total_bytes=_int(r.get("swap_total_bytes")),
                swap_used_bytes=_int(r.get("swap_used_bytes")),
                time=when,
                total_bytes=_int(r.get("memory_total_bytes")),
                used_bytes=_int(r.get("memory_used_bytes")),
                utilization=r.get("memory_utilization"),
            )
            for key, r in self.memory.items()
        ]
        chassis = (
            [
                ChassisInfo(
                    host_id=host,
                    hostname=inst,
                    instance=inst,
                    time=when,
                    total_power_watts=self.chassis_power,
                )
            ]
            if self.chassis_seen
            else []
        )
        return Snapshot(
            hostname=inst,
            timestamp=utc_timestamp(now_s),
            gpus=gpus,
            cpus=cpus,
            memory=memory,
            chassis=chassis,
            processes=self._processes() if self.processes else UNSET,
        )

    def _processes(self) -> list[ProcessInfo]:
        out = []
        for r in self.processes.values():
            labels = r["labels"]
            out.append(
                limit_process(
                    ProcessInfo(
                        command=labels.get("command", ""),
                        cpu_percent=r.get("process_cpu_percent"),
                        cpu_time=0,
                        device_id=_index(labels.get("device_id") or labels.get("gpu_index", "0")),
                        device_uuid=labels.get("device_uuid", ""),
                        gpu_utilization=None,
                        memory_percent=None,
                        memory_rss=0,
                        memory_vms=0,
                        nice_value=0,
                        pid=_index(labels.get("pid", "0")),
                        ppid=0,
                        priority=0,
                        process_name=labels.get("name", ""),
                        start_time="",
                        state="",
                        threads=0,
                        used_memory=_int(r.get("process_memory_used_bytes")),
                        user=labels.get("user", ""),
                        uses_gpu=True,
                    )
                )
            )
        return out


def _index(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else 0


def _opt_int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def parse_metrics(text: str, host_id: str, now_s: float) -> Snapshot:
    """The Snapshot an agent's exposition describes; `host_id` names the agent (`host:port`)."""
    fold = _Fold(host_id)
    handlers: dict[str, Callable[[str, dict[str, str], float | None], None]] = {}
    for family in _GPU.split("|"):
        handlers[family] = fold.gpu
    for family in _CPU.split("|"):
        handlers[family] = fold.cpu
    for family in _MEM.split("|"):
        handlers[family] = fold.mem
    handlers["process_memory_used_bytes"] = handlers["process_cpu_percent"] = fold.process
    for m in _LINE.finditer(text):
        family, label_text, raw = m.groups()
        labels = _labels(label_text)
        if family == "up":
            fold.instance = labels.get("instance", fold.instance)
        elif family == "chassis_power_watts":
            fold.chassis_seen = True
            fold.chassis_power = _number(raw)
            fold.instance = fold.instance or labels.get("instance", "")
        else:
            handlers[family](family, labels, _number(raw))
    return fold.snapshot(now_s)
