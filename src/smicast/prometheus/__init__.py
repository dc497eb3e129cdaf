"""Snapshot -> Prometheus text exposition with all-smi's `all_smi_*` families and labels.

One renderer serves `/metrics` and `snapshot --format prometheus`, so both give
the same text for the same data. The result is a `str` (the server encodes it
as UTF-8 for `text/plain; version=0.0.4; charset=utf-8`).

Order of sections as in all-smi: baseline (`all_smi_up`, `all_smi_build_info`),
GPU, NPU, process, CPU, memory, disk, chassis, hardware details; then smicast's own
`smicast_*` families (the live PCIe link, then whatever the server appends). Values print
as Rust's `Display` would (`80.0` -> `80`, never an exponent); chassis power
uses two decimals, chassis temperatures one, process CPU percent two.
NaN and infinities are skipped, as are the readings all-smi omits
(utilization or power < 0, temperature or frequency 0, swap without a total...).

Deliberate difference from all-smi: all-smi repeats `# HELP`/`# TYPE` before
every GPU, CPU, memory, disk and process sample, which is not valid exposition
text (Prometheus and `promtool` reject a second HELP for a family). Here every
family gets HELP and TYPE exactly once and its samples follow together, with
the families in all-smi's order. Sample lines themselves are identical, so
all-smi's line-oriented `view` client reads this text unchanged.
"""

from __future__ import annotations

import platform
import sys
from typing import Final

from msgspec import UNSET

from smicast import __version__
from smicast.prometheus.chassis import render_chassis
from smicast.prometheus.gpu import render_gpus, render_hardware, render_smicast_gpus
from smicast.prometheus.host import render_cpus, render_disks, render_memory
from smicast.prometheus.npu import render_npus
from smicast.prometheus.process import render_processes
from smicast.prometheus.text import labels, number
from smicast.schema import Snapshot

__all__ = ["render_baseline", "render_metrics"]

_OS_NAMES: Final = {"darwin": "macos", "win32": "windows", "cygwin": "windows"}
_ARCH_NAMES: Final = {"amd64": "x86_64", "arm64": "aarch64", "i386": "x86", "i686": "x86"}


def _rust_os() -> str:
    """`std::env::consts::OS` spelling: `linux`, `macos`, `windows`, `freebsd`..."""
    name = sys.platform
    if name.startswith("freebsd"):
        return "freebsd"
    return _OS_NAMES.get(name, name)


def _rust_arch() -> str:
    machine = platform.machine().lower()
    return _ARCH_NAMES.get(machine, machine) or "unknown"


OS: Final = _rust_os()
ARCH: Final = _rust_arch()


def render_baseline(
    *, ready: bool, hostname: str, instance: str | None = None, version: str = __version__
) -> str:
    """`all_smi_up` and `all_smi_build_info`: the floor of every scrape, even before data."""
    out: list[str] = []
    _baseline(out, ready=ready, hostname=hostname, instance=instance or hostname, version=version)
    return "".join(out)


def _baseline(out: list[str], *, ready: bool, hostname: str, instance: str, version: str) -> None:
    host = labels((("instance", instance), ("hostname", hostname)))
    build = labels(
        (
            ("instance", instance),
            ("hostname", hostname),
            ("version", version),
            ("os", OS),
            ("arch", ARCH),
        )
    )
    out.append(
        "# HELP all_smi_up 1 once the exporter has completed a collection cycle, 0 before that\n"
        "# TYPE all_smi_up gauge\n"
        f"all_smi_up{{{host}}} {number(int(ready))}\n"
        "# HELP all_smi_build_info Build information for the running all-smi binary; always 1\n"
        "# TYPE all_smi_build_info gauge\n"
        f"all_smi_build_info{{{build}}} 1\n"
    )


def render_metrics(
    snapshot: Snapshot,
    *,
    ready: bool = True,
    instance: str | None = None,
    version: str = __version__,
    extra: str = "",
) -> str:
    """The whole exposition for one Snapshot.

    `instance` labels the baseline families (default: the snapshot's hostname);
    device families carry each item's own `instance`. `extra` is appended as is
    (the server's own families), newline-terminated.
    """
    out: list[str] = []
    hostname = snapshot.hostname
    _baseline(out, ready=ready, hostname=hostname, instance=instance or hostname, version=version)
    gpus = snapshot.gpus if snapshot.gpus is not UNSET else []
    if gpus:
        render_gpus(gpus, out)
        render_npus(gpus, out)
    if snapshot.processes is not UNSET and snapshot.processes:
        render_processes(snapshot.processes, out)
    if snapshot.cpus is not UNSET and snapshot.cpus:
        render_cpus(snapshot.cpus, out)
    if snapshot.memory is not UNSET and snapshot.memory:
        render_memory(snapshot.memory, out)
    if snapshot.storage is not UNSET and snapshot.storage:
        render_disks(snapshot.storage, out)
    if snapshot.chassis is not UNSET and snapshot.chassis:
        render_chassis(snapshot.chassis, out)
    if gpus:
        render_hardware(gpus, out)
        render_smicast_gpus(gpus, out)
    if extra:
        out.append(extra if extra.endswith("\n") else extra + "\n")
    return "".join(out)
