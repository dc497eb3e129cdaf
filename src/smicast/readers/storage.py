"""Mounted filesystems on Linux: /proc/self/mountinfo, filtered as all-smi shows them.

Pseudo filesystems, container plumbing (Docker's bind-mounted /etc files, image
layers under /var/lib/docker) and network and cluster filesystems are left out; a
filesystem mounted at several places (bind mounts) is shown once, at its shortest
mount point. Each remaining mount's statvfs runs in its own short-lived thread under
a deadline, so a hung mount costs only its own row.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from smicast.include import Section
from smicast.readers import ReadError, default_hostname
from smicast.schema import StorageInfo

_PSEUDO_FS: Final = frozenset(
    [
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "overlay",
        "proc",
        "pstore",
        "ramfs",
        "rootfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    ]
)
# A statvfs on a hung share blocks until the server answers; all-smi (through
# sysinfo) leaves these out as well. Cluster filesystems are shared by every node,
# so a row for them says nothing about this machine. Every FUSE filesystem
# (`fuse` and `fuse.*`: sshfs, s3fs, lxcfs, gvfs...) is left out too: its answers
# come from a user-space daemon that may hang.
_NETWORK_FS: Final = frozenset(
    [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "wekafs",
        "9p",
        "virtiofs",
        "afs",
        "fuse",
    ]
)
# How long one read waits for the statvfs calls it started.
STATVFS_TIMEOUT_S: Final = 0.5
_HIDDEN_MOUNTS: Final = frozenset(
    {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/timezone", "/etc/localtime"}
    | {"/boot", "/boot/efi"}  # system partitions, hidden by all-smi too
)
_HIDDEN_TREES: Final = (
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/snap",
    "/var/lib/docker",
    "/var/lib/containers",
    "/var/lib/containerd",
    "/var/lib/kubelet",
)


class StatvfsResult(Protocol):
    @property
    def f_blocks(self) -> int: ...
    @property
    def f_bavail(self) -> int: ...
    @property
    def f_frsize(self) -> int: ...


@dataclass(frozen=True)
class Mount:
    device: str  # major:minor, shared by every bind mount of one filesystem
    mount_point: str
    fs_type: str


def unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash in mount points as `\\ooo`."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)  # optional fields (shared:N ...) end at a lone "-"
        if len(fields) > sep + 1 and len(fields) > 4:
            mounts.append(Mount(fields[2], unescape(fields[4]), fields[sep + 1]))
    return mounts


def _shown(mount: Mount) -> bool:
    point, fs = mount.mount_point, mount.fs_type
    if fs in _NETWORK_FS or fs.startswith("fuse.") or point in _HIDDEN_MOUNTS:
        return False
    if fs in _PSEUDO_FS and not (fs == "overlay" and point == "/"):  # a container's root
        return False
    return not any(point == tree or point.startswith(tree + "/") for tree in _HIDDEN_TREES)


def select_mounts(mounts: list[Mount]) -> list[Mount]:
    """Shown filesystems, one per device (shortest mount point), sorted by mount point."""
    by_device: dict[str, Mount] = {}
    for mount in filter(_shown, mounts):
        kept = by_device.get(mount.device)
        key = (len(mount.mount_point), mount.mount_point)
        if kept is None or key < (len(kept.mount_point), kept.mount_point):
            by_device[mount.device] = mount
    return sorted(by_device.values(), key=lambda m: m.mount_point)


def _wire_text(path: str) -> str:
    # Undecodable bytes were kept as surrogates for statvfs; JSON needs valid UTF-8.
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _MountWorker:
    """A daemon thread that runs statvfs for one mount point when asked, one call at a
    time: a call that never returns holds only this thread, and only this mount's row."""

    def __init__(self, statvfs: Callable[[str], StatvfsResult], path: str) -> None:
        self.done = threading.Event()  # set while idle
        self.done.set()
        self.result: StatvfsResult | None = None
        self._statvfs, self._path = statvfs, path
        self._wake = threading.Event()
        self._stopping = False
        threading.Thread(target=self._run, name="smicast-statvfs", daemon=True).start()

    def start(self) -> None:
        self.result = None
        self.done.clear()
        self._wake.set()

    def stop(self) -> None:
        """Exit when idle (or when the call in progress returns)."""
        self._stopping = True
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.result = self._statvfs(self._path)
            except OSError:  # unmounted since, or not ours to look at
                self.result = None
            finally:
                self.done.set()


def _stop_all(workers: dict[str, _MountWorker]) -> None:
    for worker in workers.values():
        worker.stop()


class StorageReader:
    name = "storage"
    section = Section.STORAGE

    def __init__(
        self,
        procfs: Path = Path("/proc"),
        *,
        statvfs: Callable[[str], StatvfsResult] = os.statvfs,
        statvfs_timeout_s: float = STATVFS_TIMEOUT_S,
        hostname: str | None = None,
    ) -> None:
        self._mountinfo = procfs / "self" / "mountinfo"
        self._statvfs = statvfs
        self._statvfs_timeout_s = statvfs_timeout_s
        # mount point -> its worker; one still busy from an earlier read is not asked again
        self._workers: dict[str, _MountWorker] = {}
        weakref.finalize(self, _stop_all, self._workers)  # idle threads end with the reader
        self._host = hostname or default_hostname()
        self._last_table = b""
        self._mounts: list[Mount] = []

    def read(self) -> list[StorageInfo]:
        try:
            table = self._mountinfo.read_bytes()
        except OSError as exc:
            raise ReadError(f"cannot read {self._mountinfo}: {exc}") from exc
        if table != self._last_table:  # the mount table rarely changes: filter it once
            self._mounts = select_mounts(parse_mountinfo(table.decode("utf-8", "surrogateescape")))
            self._last_table = table
        calls = self._start_calls()
        deadline = time.monotonic() + self._statvfs_timeout_s
        items: list[StorageInfo] = []
        for mount, call in calls:
            if not call.done.wait(max(0.0, deadline - time.monotonic())):
                continue  # hung: this row is left out until the call returns
            st = call.result
            if st is None or st.f_blocks == 0:
                continue
            items.append(
                StorageInfo(
                    mount_point=_wire_text(mount.mount_point),
                    total_bytes=st.f_blocks * st.f_frsize,
                    available_bytes=st.f_bavail * st.f_frsize,
                    host_id=self._host,
                    hostname=self._host,
                    index=len(items),
                )
            )
        return items

    def _start_calls(self) -> list[tuple[Mount, _MountWorker]]:
        shown = {mount.mount_point for mount in self._mounts}
        for point in [p for p in self._workers if p not in shown]:
            self._workers.pop(point).stop()  # unmounted: its thread ends
        started: list[tuple[Mount, _MountWorker]] = []
        for mount in self._mounts:
            worker = self._workers.get(mount.mount_point)
            if worker is None:
                worker = self._workers[mount.mount_point] = _MountWorker(
                    self._statvfs, mount.mount_point
                )
            if worker.done.is_set():  # a call still running is skipped, not queued again
                worker.start()
                started.append((mount, worker))
        return started
