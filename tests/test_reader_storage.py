"""StorageReader against captured mount tables of a Docker host and of a container."""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from smicast.include import Section
from smicast.readers import ReadError
from smicast.readers.storage import StorageReader, unescape
from smicast.schema import StorageInfo
from tests.reader_contract import check_reader

DATA = Path(__file__).parent / "data" / "linux"
GIB = 1 << 30


@dataclass(frozen=True)
class Vfs:
    f_blocks: int
    f_bavail: int
    f_frsize: int = 4096


class FakeStatvfs:
    """Answers for known mount points; anything else is not mounted (as statvfs would fail)."""

    def __init__(self, sizes: dict[str, Vfs]) -> None:
        self.sizes = sizes
        self.asked: list[str] = []

    def __call__(self, path: str) -> Vfs:
        self.asked.append(path)
        if path not in self.sizes:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.sizes[path]


def host_statvfs() -> FakeStatvfs:
    everything = Vfs(f_blocks=(100 * GIB) // 4096, f_bavail=(40 * GIB) // 4096)
    table = {
        p: everything
        for p in (
            "/",
            "/boot/efi",
            "/data",
            "/srv/datasets",
            "/scratch space",
            "/home",
            "/mnt/nfs",
            "/var/lib/docker",
            "/snap/core20/2318",
        )
    }
    table["/data"] = Vfs(f_blocks=7_000_000_000 // 4096, f_bavail=3_000_000_000 // 4096)
    table["/home"] = Vfs(f_blocks=1000, f_bavail=250, f_frsize=1024)
    table["/mnt/empty"] = Vfs(f_blocks=0, f_bavail=0)  # an autofs placeholder: no size
    return FakeStatvfs(table)  # /mnt/gone is absent: unmounted after the table was read


def test_docker_host_filtering_dedupe_sort_and_index() -> None:
    statvfs = host_statvfs()
    reader = StorageReader(DATA / "intel-2s" / "proc", statvfs=statvfs, hostname="gpu-node-1")
    assert reader.name == "storage" and reader.section is Section.STORAGE
    items = check_reader(reader)[-1]
    assert [(s.index, s.mount_point) for s in items if isinstance(s, StorageInfo)] == [
        (0, "/"),
        (1, "/data"),  # /srv/datasets is a bind mount of the same device: shown once
        (2, "/home"),
        (3, "/scratch space"),  # \040 in the mount table
    ]
    data = items[1]
    assert isinstance(data, StorageInfo)
    assert data.total_bytes == (7_000_000_000 // 4096) * 4096
    assert data.available_bytes == (3_000_000_000 // 4096) * 4096
    home = items[2]
    assert isinstance(home, StorageInfo)
    assert (home.total_bytes, home.available_bytes) == (1000 * 1024, 250 * 1024)
    assert all(s.host_id == s.hostname == "gpu-node-1" for s in items if isinstance(s, StorageInfo))
    # Network shares are never statvfs'd: a hung server would hang the reader.
    assert "/mnt/nfs" not in statvfs.asked
    assert not any(
        p.startswith(("/var/lib/docker", "/proc", "/sys", "/run")) for p in statvfs.asked
    )


def test_container_keeps_overlay_root_and_drops_plumbing() -> None:
    sizes = Vfs(f_blocks=1 << 20, f_bavail=1 << 19)
    statvfs = FakeStatvfs(
        {"/": sizes, "/workspace/data": sizes, "/workspace/project": sizes, "/etc/hosts": sizes}
    )
    items = StorageReader(DATA / "amd-1s" / "proc", statvfs=statvfs, hostname="h").read()
    assert [s.mount_point for s in items] == ["/", "/workspace/data", "/workspace/project"]
    assert [s.index for s in items] == [0, 1, 2]


def test_unescape() -> None:
    assert unescape("/mnt/a\\040b\\011c\\012d\\134e") == "/mnt/a b\tc\nd\\e"
    assert unescape("/plain") == "/plain"
    assert unescape("/odd\\") == "/odd\\"


def test_mount_table_change_is_noticed(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    table = tmp_path / "self" / "mountinfo"
    table.write_text("22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n")
    sizes = Vfs(f_blocks=100, f_bavail=50)
    reader = StorageReader(tmp_path, statvfs=FakeStatvfs({"/": sizes, "/data": sizes}))
    assert [s.mount_point for s in reader.read()] == ["/"]
    with table.open("a") as f:
        f.write("64 22 259:1 / /data rw,relatime shared:34 - xfs /dev/nvme0n1p1 rw\n")
    assert [s.mount_point for s in reader.read()] == ["/", "/data"]


def test_missing_mount_table_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="mountinfo"):
        StorageReader(tmp_path, hostname="h").read()


def test_this_machine() -> None:
    items = check_reader(StorageReader())[-1]
    for item in items:
        assert isinstance(item, StorageInfo)
        assert item.mount_point.startswith("/")
        assert 0 <= item.available_bytes <= item.total_bytes
    assert [s.index for s in items] == list(range(len(items)))
    assert [s.mount_point for s in items if isinstance(s, StorageInfo)] == sorted(
        s.mount_point for s in items if isinstance(s, StorageInfo)
    )


CLUSTER_TABLE = """\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
30 22 0:40 / /lustre/scratch rw shared:5 - lustre 10.0.0.1@o2ib:/scratch rw
31 22 0:41 / /gpfs/fs1 rw shared:6 - gpfs fs1 rw
32 22 0:42 / /mnt/beegfs rw shared:7 - beegfs beegfs_nodev rw
33 22 0:43 / /mnt/weka rw shared:8 - wekafs default rw
34 22 0:44 / /mnt/host rw shared:9 - 9p hostshare rw
35 22 0:45 / /mnt/virtio rw shared:10 - virtiofs myfs rw
36 22 0:46 / /mnt/s3 rw shared:11 - fuse.s3fs s3fs rw
37 22 0:47 / /mnt/plainfuse rw shared:12 - fuse fuse rw
38 22 0:48 / /mnt/auto rw shared:13 - autofs systemd-1 rw
39 22 259:1 / /data rw,relatime shared:34 - xfs /dev/nvme0n1p1 rw
40 22 8:17 / /mnt/usb rw,relatime shared:35 - fuseblk /dev/sdb1 rw
"""


def write_table(root: Path, table: str) -> Path:
    (root / "self").mkdir(parents=True, exist_ok=True)
    (root / "self" / "mountinfo").write_text(table)
    return root


def test_cluster_network_and_fuse_filesystems_are_never_asked(tmp_path: Path) -> None:
    sizes = Vfs(f_blocks=100, f_bavail=50)
    points = ["/", "/data", "/mnt/usb"]
    every = [line.split(" ")[4] for line in CLUSTER_TABLE.splitlines()]
    statvfs = FakeStatvfs(dict.fromkeys(every, sizes))
    items = StorageReader(write_table(tmp_path, CLUSTER_TABLE), statvfs=statvfs).read()
    assert [s.mount_point for s in items] == points  # fuseblk is a local disk (ntfs-3g)
    assert sorted(statvfs.asked) == sorted(points)


class HangingStatvfs(FakeStatvfs):
    """statvfs that blocks for one path until released, as on a dead NFS server."""

    def __init__(self, sizes: dict[str, Vfs], hung: str) -> None:
        super().__init__(sizes)
        self.hung = hung
        self.release = threading.Event()

    def __call__(self, path: str) -> Vfs:
        result = super().__call__(path)
        if path == self.hung:
            self.release.wait(30)
        return result


def test_a_hung_mount_costs_only_its_own_row(tmp_path: Path) -> None:
    table = (
        "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n"
        "39 22 259:1 / /data rw - xfs /dev/nvme0n1p1 rw\n"
        "40 22 259:2 / /stuck rw - xfs /dev/nvme1n1p1 rw\n"
        "41 22 259:3 / /zeta rw - ext4 /dev/nvme2n1p1 rw\n"
    )
    sizes = Vfs(f_blocks=100, f_bavail=50)
    statvfs = HangingStatvfs(dict.fromkeys(["/", "/data", "/stuck", "/zeta"], sizes), "/stuck")
    reader = StorageReader(write_table(tmp_path, table), statvfs=statvfs, statvfs_timeout_s=0.05)
    try:
        first = reader.read()
        assert [(s.index, s.mount_point) for s in first] == [(0, "/"), (1, "/data"), (2, "/zeta")]
        # Still hung: skipped without a second call (no thread piles up behind it).
        second = reader.read()
        assert [s.mount_point for s in second] == ["/", "/data", "/zeta"]
        assert statvfs.asked.count("/stuck") == 1
    finally:
        statvfs.release.set()
    # Once the hung call has returned in its own thread, the mount is asked again.
    for _ in range(500):
        items = reader.read()
        if len(items) == 4:
            break
        threading.Event().wait(0.01)
    assert [s.mount_point for s in items] == ["/", "/data", "/stuck", "/zeta"]
    assert statvfs.asked.count("/stuck") == 2


def test_workers_end_with_their_mount_and_their_reader(tmp_path: Path) -> None:
    sizes = Vfs(f_blocks=100, f_bavail=50)
    root = write_table(tmp_path, "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n")
    reader = StorageReader(root, statvfs=FakeStatvfs({"/": sizes}), hostname="h")

    def workers() -> int:
        return sum(t.name == "smicast-statvfs" for t in threading.enumerate())

    gc.collect()  # earlier tests' readers: their threads end first
    for _ in range(500):
        before = workers()
        threading.Event().wait(0.02)
        if workers() == before:
            break
    for _ in range(5):
        assert [s.mount_point for s in reader.read()] == ["/"]
    assert workers() == before + 1  # one thread per mount, reused by every read
    del reader
    gc.collect()
    for _ in range(500):
        if workers() == before:
            break
        threading.Event().wait(0.01)
    assert workers() == before
