"""Processes using a GPU, described from /proc/<pid>.

Only the pids the GPU readers report are read, three small files each: walking
all of /proc (or asking psutil, ~110-150 µs a process) would cost more than every
other reader together on a busy host.

GPU drivers report pids as the host's PID namespace numbers them. In a container
with its own PID namespace, /proc/<pid> is then an unrelated local process that
merely has the same number, so a process is described from /proc only when this
/proc numbers pids as the host does and the entry's outermost pid (the first
`NSpid` field) is the reported one; otherwise it keeps what the GPU reader knows.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, GpuProcess, GpuReader
from smicast.readers.kernelfs import read_bytes
from smicast.schema import ProcessInfo

# The inode of the initial PID namespace (PROC_PID_INIT_INO), fixed since Linux 3.8.
HOST_PID_NAMESPACE: Final = "pid:[4026531836]"


def sees_host_pids(procfs: Path) -> bool:
    """Whether this process, and so its /proc, is in the host's PID namespace."""
    try:
        return str((procfs / "self" / "ns" / "pid").readlink()) == HOST_PID_NAMESPACE
    except FileNotFoundError:  # a kernel without PID namespaces: one numbering for all
        return True
    except OSError:
        return False


def _passwd_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid from another user namespace or a container image
        return str(uid)


def _field_after(text: str, key: str) -> str:
    """The value of `key` in a `Key:\\tvalue` file, found without splitting every line."""
    at = text.find(key)
    if at < 0:
        return ""
    start = at + len(key)
    end = text.find("\n", start)
    return text[start : end if end >= 0 else None]


def _unseen(gpu_proc: GpuProcess) -> ProcessInfo:
    """What the GPU reader knows of a process whose /proc entry we cannot read."""
    return ProcessInfo(
        device_id=gpu_proc.device_id,
        device_uuid=gpu_proc.device_uuid,
        pid=gpu_proc.pid,
        process_name="",
        used_memory=gpu_proc.used_memory,
        cpu_percent=0.0,  # all-smi writes 0.0 here; its parser rejects null (plain f64)
        memory_percent=0.0,
        memory_rss=0,
        memory_vms=0,
        user="",
        state="",
        start_time="",
        cpu_time=0,
        command="",
        ppid=0,
        threads=0,
        uses_gpu=True,
        priority=0,
        nice_value=0,
        gpu_utilization=gpu_proc.gpu_utilization,
    )


class ProcessReader:
    name = "processes"
    section = Section.PROCESS

    def __init__(
        self,
        gpu_readers: Sequence[GpuReader],
        procfs: Path = Path("/proc"),
        *,
        hostname: str | None = None,  # accepted like every reader's; processes carry no host
        clock: Clock = WALL_CLOCK,
        monotonic: Callable[[], float] = time.monotonic,
        users: Callable[[int], str] | None = None,
        clock_ticks: int | None = None,
        page_size: int | None = None,
    ) -> None:
        self._gpu_readers = list(gpu_readers)
        self._proc = str(procfs)
        self._clock = clock
        self._monotonic = monotonic
        self._user_of = users or _passwd_name
        self._users: dict[int, str] = {}
        self._ticks_per_s = clock_ticks or os.sysconf("SC_CLK_TCK")
        self._page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        try:
            meminfo = (procfs / "meminfo").read_text()
            self._mem_total = int(_field_after(meminfo, "MemTotal:").split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            self._mem_total = 0
        try:
            self._boot_time = int(_field_after((procfs / "stat").read_text(), "\nbtime "))
        except (OSError, ValueError):
            self._boot_time = 0
        # pid -> (start ticks, cpu ticks, monotonic seconds) at the last sighting.
        self._history: dict[int, tuple[int, int, float]] = {}
        self._host_pids: bool | None = None  # looked up on the first read, in its worker

    def read(self) -> list[ProcessInfo]:
        listed = [p for reader in self._gpu_readers for p in reader.read_processes()]
        if self._host_pids is None:
            self._host_pids = sees_host_pids(Path(self._proc))
        seen: dict[int, ProcessInfo] = {}
        history: dict[int, tuple[int, int, float]] = {}
        items: list[ProcessInfo] = []
        for gpu_proc in listed:
            device = dict(
                device_id=gpu_proc.device_id,
                device_uuid=gpu_proc.device_uuid,
                used_memory=gpu_proc.used_memory,
                gpu_utilization=gpu_proc.gpu_utilization,
            )
            if gpu_proc.info is not None:
                items.append(msgspec.structs.replace(gpu_proc.info, **device))
                continue
            if gpu_proc.pid not in seen:  # one pid on several GPUs: sample its CPU time once
                seen[gpu_proc.pid] = self._describe(gpu_proc, history)
            items.append(msgspec.structs.replace(seen[gpu_proc.pid], **device))
        self._history = history  # pids no longer on a GPU are forgotten
        return items

    def _describe(
        self, gpu_proc: GpuProcess, history: dict[int, tuple[int, int, float]]
    ) -> ProcessInfo:
        pid = gpu_proc.pid
        base = f"{self._proc}/{pid}/"
        try:
            stat = read_bytes(base + "stat").decode("utf-8", "replace")
            status = read_bytes(base + "status").decode("utf-8", "replace")
            cmdline = read_bytes(base + "cmdline")
        except OSError:
            # Exited since the GPU listed it, hidden (hidepid), or in another PID namespace
            # (a container's view of host processes). The GPU's own figures are still
            # true, and GPU memory held by a process we cannot see is worth knowing.
            return _unseen(gpu_proc)
        nspid = _field_after(status, "\nNSpid:").split()[:1]  # absent before Linux 4.1
        if not self._host_pids or nspid not in ([], [str(pid)]):
            return _unseen(gpu_proc)  # the host's pid; this entry is another process
        # comm may itself contain spaces and parentheses: it ends at the last ")".
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        f = stat[stat.rfind(")") + 2 :].split()
        cpu_ticks, start_ticks = int(f[11]) + int(f[12]), int(f[19])
        rss = int(f[21]) * self._page_size
        now = self._monotonic()
        started_s = self._boot_time + start_ticks / self._ticks_per_s
        last = self._history.get(pid)
        if last is not None and last[0] == start_ticks and now > last[2]:
            cpu_s, elapsed_s = (cpu_ticks - last[1]) / self._ticks_per_s, now - last[2]
        else:  # first sighting (or a reused pid): the average since the process started
            cpu_s, elapsed_s = cpu_ticks / self._ticks_per_s, self._clock() - started_s
        history[pid] = (start_ticks, cpu_ticks, now)
        command = cmdline.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
        return ProcessInfo(
            device_id=gpu_proc.device_id,
            device_uuid=gpu_proc.device_uuid,
            pid=pid,
            process_name=comm,
            used_memory=gpu_proc.used_memory,
            cpu_percent=max(0.0, cpu_s * 100.0 / elapsed_s) if elapsed_s > 0 else 0.0,
            memory_percent=rss * 100.0 / self._mem_total if self._mem_total else 0.0,
            memory_rss=rss,
            memory_vms=int(f[20]),
            user=self._user(_field_after(status, "\nUid:").split()),
            state=f[0],
            start_time=str(int(started_s)),
            cpu_time=cpu_ticks // self._ticks_per_s,
            command=command or f"[{comm}]",  # kernel threads and zombies have no cmdline
            ppid=int(f[1]),
            threads=int(f[17]),
            uses_gpu=True,
            priority=int(f[15]),
            nice_value=int(f[16]),
            gpu_utilization=gpu_proc.gpu_utilization,
        )

    def _user(self, uids: list[str]) -> str:
        if not uids or not uids[0].isdigit():
            return ""
        uid = int(uids[0])  # real uid: who started it, as ps shows
        if uid not in self._users:
            self._users[uid] = self._user_of(uid)
        return self._users[uid]
