"""Process families (`api --processes`): one series per GPU process.

`name`, `user` and `command` go through the same byte caps as the JSON surfaces
(`smicast.limits`), so a secret-bearing command line is cut the same way everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Final

from smicast.limits import MAX_COMMAND_BYTES, MAX_NAME_BYTES, MAX_USER_BYTES, truncate_label
from smicast.prometheus.text import Family, Samples, fixed, labels
from smicast.schema import ProcessInfo

PROCESS_FAMILIES: Final = (
    Family("all_smi_process_memory_used_bytes", "Process GPU memory used in bytes"),
    Family(
        "all_smi_process_start_time_seconds",
        "Wall-clock seconds since the process started (TIME+ equivalent)",
    ),
    Family("all_smi_process_cpu_percent", "Process CPU utilization percentage"),
)

_U64_MAX: Final = (1 << 64) - 1


@functools.lru_cache(maxsize=4096)
def start_time_seconds(start_time: str) -> int:
    """`HH:MM:SS`, `MM:SS`, `SS`, each with an optional `.cs`, or bare seconds; junk -> 0.

    all-smi parses each part as a u64 and saturates, so this does too.
    """
    text = start_time.strip()
    if not text:
        return 0
    text = text.partition(".")[0]
    total = 0
    multiplier = 1
    for part in reversed(text.split(":")):
        digits = part.removeprefix("+")
        if not digits or not digits.isascii() or not digits.isdigit():
            return 0
        value = int(digits)
        if value > _U64_MAX:
            return 0
        total = min(_U64_MAX, total + min(_U64_MAX, value * multiplier))
        multiplier = min(_U64_MAX, multiplier * 60)
    return total


def render_processes(processes: Sequence[ProcessInfo], out: list[str]) -> None:
    samples = Samples()
    add = samples.add
    for proc in processes:
        device = str(proc.device_id)
        p = labels(
            (
                ("pid", str(proc.pid)),
                ("name", truncate_label(proc.process_name, MAX_NAME_BYTES)),
                ("user", truncate_label(proc.user, MAX_USER_BYTES)),
                ("device_id", device),
                ("gpu_index", device),
                ("device_uuid", proc.device_uuid),
                ("command", truncate_label(proc.command, MAX_COMMAND_BYTES)),
            )
        )
        add("all_smi_process_memory_used_bytes", p, str(proc.used_memory))
        add("all_smi_process_start_time_seconds", p, str(start_time_seconds(proc.start_time)))
        add("all_smi_process_cpu_percent", p, fixed(proc.cpu_percent, 2))
    samples.write(PROCESS_FAMILIES, out)
