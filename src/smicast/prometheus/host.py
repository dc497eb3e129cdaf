"""CPU, memory and disk families.

Label sets: C = `cpu_model, instance, hostname, index`, M = `instance, hostname,
index` (index = position in the list, as all-smi writes it); disks use
`instance` (= the item's hostname), `mount_point` and the item's own `index`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from smicast.prometheus.text import Family, Samples, labels, number
from smicast.schema import CpuInfo, MemoryInfo, PlatformType, StorageInfo

CPU_FAMILIES: Final = (
    Family("all_smi_cpu_info", "CPU device information"),
    Family("all_smi_cpu_utilization", "CPU utilization percentage"),
    Family("all_smi_cpu_socket_count", "Number of CPU sockets"),
    Family("all_smi_cpu_core_count", "Total number of CPU cores"),
    Family("all_smi_cpu_thread_count", "Total number of CPU threads"),
    Family("all_smi_cpu_frequency_mhz", "CPU frequency in MHz"),
    Family("all_smi_cpu_temperature_celsius", "CPU temperature in celsius"),
    Family("all_smi_cpu_power_consumption_watts", "CPU power consumption in watts"),
    Family("all_smi_cpu_socket_utilization", "Per-socket CPU utilization percentage"),
    Family("all_smi_cpu_socket_frequency_mhz", "Per-socket CPU frequency in MHz"),
    Family("all_smi_cpu_socket_temperature_celsius", "Per-socket CPU temperature in celsius"),
    Family("all_smi_cpu_s_core_count", "Apple Silicon S-core (Super) count"),
    Family("all_smi_cpu_p_core_count", "Apple Silicon P-core count"),
    Family("all_smi_cpu_e_core_count", "Apple Silicon E-core count"),
    Family("all_smi_cpu_gpu_core_count", "Apple Silicon GPU core count"),
    Family("all_smi_cpu_s_core_utilization", "Apple Silicon S-core (Super) utilization percentage"),
    Family("all_smi_cpu_p_core_utilization", "Apple Silicon P-core utilization percentage"),
    Family("all_smi_cpu_e_core_utilization", "Apple Silicon E-core utilization percentage"),
    Family("all_smi_cpu_ane_ops_per_second", "Apple Neural Engine operations per second"),
    Family(
        "all_smi_cpu_s_cluster_frequency_mhz", "Apple Silicon S-cluster (Super) frequency in MHz"
    ),
    Family("all_smi_cpu_p_cluster_frequency_mhz", "Apple Silicon P-cluster frequency in MHz"),
    Family("all_smi_cpu_e_cluster_frequency_mhz", "Apple Silicon E-cluster frequency in MHz"),
    Family("all_smi_cpu_core_utilization", "Per-core CPU utilization percentage"),
)

MEMORY_FAMILIES: Final = (
    Family("all_smi_memory_total_bytes", "Total system memory in bytes"),
    Family("all_smi_memory_used_bytes", "Used system memory in bytes"),
    Family("all_smi_memory_available_bytes", "Available system memory in bytes"),
    Family("all_smi_memory_free_bytes", "Free system memory in bytes"),
    Family("all_smi_memory_utilization", "Memory utilization percentage"),
    Family("all_smi_swap_total_bytes", "Total swap space in bytes"),
    Family("all_smi_swap_used_bytes", "Used swap space in bytes"),
    Family("all_smi_swap_free_bytes", "Free swap space in bytes"),
    Family("all_smi_memory_buffers_bytes", "Memory used for buffers in bytes"),
    Family("all_smi_memory_cached_bytes", "Memory used for cache in bytes"),
)

DISK_FAMILIES: Final = (
    Family("all_smi_disk_total_bytes", "Total disk space in bytes"),
    Family("all_smi_disk_available_bytes", "Available disk space in bytes"),
)

_CORE_TYPE_LABEL: Final = {"Super": "S", "Performance": "P", "Efficiency": "E", "Standard": "C"}


def platform_label(platform: PlatformType) -> str:
    """Rust `Debug` of all-smi's enum: `Intel`, `AppleSilicon`, `Other("RISC-V")`."""
    if isinstance(platform, str):
        return platform
    if len(platform) == 1:
        ((variant, value),) = platform.items()
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{variant}("{quoted}")'
    return str(platform)


def render_cpus(cpus: Sequence[CpuInfo], out: list[str]) -> None:
    samples = Samples()
    add = samples.add
    for index, cpu in enumerate(cpus):
        position = str(index)
        base = (
            ("cpu_model", cpu.cpu_model),
            ("instance", cpu.instance),
            ("hostname", cpu.hostname),
        )
        c = labels((*base, ("index", position)))
        info = (
            *base,
            ("index", position),
            ("architecture", cpu.architecture),
            ("platform_type", platform_label(cpu.platform_type)),
        )
        add("all_smi_cpu_info", labels(info), "1")
        add("all_smi_cpu_utilization", c, number(cpu.utilization))
        add("all_smi_cpu_socket_count", c, str(cpu.socket_count))
        add("all_smi_cpu_core_count", c, str(cpu.total_cores))
        add("all_smi_cpu_thread_count", c, str(cpu.total_threads))
        add("all_smi_cpu_frequency_mhz", c, str(cpu.base_frequency_mhz))
        add("all_smi_cpu_temperature_celsius", c, number(cpu.temperature))
        add("all_smi_cpu_power_consumption_watts", c, number(cpu.power_consumption))
        for socket in cpu.per_socket_info:
            s = labels((*base, ("cpu_index", position), ("socket_id", str(socket.socket_id))))
            add("all_smi_cpu_socket_utilization", s, number(socket.utilization))
            add("all_smi_cpu_socket_frequency_mhz", s, str(socket.frequency_mhz))
            add("all_smi_cpu_socket_temperature_celsius", s, number(socket.temperature))
        apple = cpu.apple_silicon_info
        if apple is not None:
            if apple.s_core_count > 0:
                add("all_smi_cpu_s_core_count", c, str(apple.s_core_count))
                add("all_smi_cpu_s_core_utilization", c, number(apple.s_core_utilization))
            add("all_smi_cpu_p_core_count", c, str(apple.p_core_count))
            add("all_smi_cpu_e_core_count", c, str(apple.e_core_count))
            add("all_smi_cpu_gpu_core_count", c, str(apple.gpu_core_count))
            add("all_smi_cpu_p_core_utilization", c, number(apple.p_core_utilization))
            add("all_smi_cpu_e_core_utilization", c, number(apple.e_core_utilization))
            add("all_smi_cpu_ane_ops_per_second", c, number(apple.ane_ops_per_second))
            add("all_smi_cpu_s_cluster_frequency_mhz", c, number(apple.s_cluster_frequency_mhz))
            add("all_smi_cpu_p_cluster_frequency_mhz", c, number(apple.p_cluster_frequency_mhz))
            add("all_smi_cpu_e_cluster_frequency_mhz", c, number(apple.e_cluster_frequency_mhz))
        if cpu.per_core_utilization:
            # Core ids are integers and core types fixed letters: nothing to escape.
            prefix = labels(base)
            for core in cpu.per_core_utilization:
                core_type = _CORE_TYPE_LABEL.get(core.core_type, "C")
                core_labels = f'{prefix}, core_id="{core.core_id}", core_type="{core_type}"'
                add("all_smi_cpu_core_utilization", core_labels, number(core.utilization))
    samples.write(CPU_FAMILIES, out)


def render_memory(memory: Sequence[MemoryInfo], out: list[str]) -> None:
    samples = Samples()
    add = samples.add
    for index, mem in enumerate(memory):
        m = labels((("instance", mem.instance), ("hostname", mem.hostname), ("index", str(index))))
        add("all_smi_memory_total_bytes", m, str(mem.total_bytes))
        add("all_smi_memory_used_bytes", m, str(mem.used_bytes))
        add("all_smi_memory_available_bytes", m, str(mem.available_bytes))
        add("all_smi_memory_free_bytes", m, str(mem.free_bytes))
        add("all_smi_memory_utilization", m, number(mem.utilization))
        if mem.swap_total_bytes > 0:
            add("all_smi_swap_total_bytes", m, str(mem.swap_total_bytes))
            add("all_smi_swap_used_bytes", m, str(mem.swap_used_bytes))
            add("all_smi_swap_free_bytes", m, str(mem.swap_free_bytes))
        if mem.buffers_bytes > 0:
            add("all_smi_memory_buffers_bytes", m, str(mem.buffers_bytes))
        if mem.cached_bytes > 0:
            add("all_smi_memory_cached_bytes", m, str(mem.cached_bytes))
    samples.write(MEMORY_FAMILIES, out)


def render_disks(storage: Sequence[StorageInfo], out: list[str]) -> None:
    samples = Samples()
    for disk in storage:
        d = labels(
            (
                ("instance", disk.hostname),
                ("mount_point", disk.mount_point),
                ("index", str(disk.index)),
            )
        )
        samples.add("all_smi_disk_total_bytes", d, str(disk.total_bytes))
        samples.add("all_smi_disk_available_bytes", d, str(disk.available_bytes))
    samples.write(DISK_FAMILIES, out)
