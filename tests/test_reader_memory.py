"""MemoryReader against a captured /proc/meminfo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smicast.include import Section
from smicast.readers import ReadError
from smicast.readers.memory import MemoryReader
from smicast.schema import MemoryInfo, local_time_text
from tests.reader_contract import check_reader

DATA = Path(__file__).parent / "data" / "linux"
NOW_S = 1_776_700_000.0
KIB = 1024
GIB = 1 << 30


def test_contract_and_values() -> None:
    reader = MemoryReader(DATA / "intel-2s" / "proc", hostname="gpu-node-1", clock=lambda: NOW_S)
    assert reader.name == "memory" and reader.section is Section.MEMORY
    [mem] = check_reader(reader)[-1]
    assert isinstance(mem, MemoryInfo)
    assert mem.host_id == mem.hostname == mem.instance == "gpu-node-1"
    assert mem.total_bytes == 197581844 * KIB
    assert mem.available_bytes == 171223876 * KIB
    assert mem.free_bytes == 120334512 * KIB
    assert mem.buffers_bytes == 2291044 * KIB
    assert mem.cached_bytes == 47112336 * KIB
    assert mem.used_bytes == (197581844 - 171223876) * KIB
    assert mem.utilization == pytest.approx((197581844 - 171223876) / 197581844 * 100)
    assert (mem.swap_total_bytes, mem.swap_free_bytes) == (8388604 * KIB, 8123004 * KIB)
    assert mem.swap_used_bytes == (8388604 - 8123004) * KIB
    assert mem.time == local_time_text(NOW_S)


def test_old_kernel_without_memavailable(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text(
        "MemTotal:        1000 kB\nMemFree:          200 kB\nBuffers:          100 kB\n"
        "Cached:           300 kB\nSwapTotal:          0 kB\nSwapFree:           0 kB\n"
    )
    [mem] = MemoryReader(tmp_path, hostname="h").read()
    assert mem.available_bytes == 600 * KIB  # free + buffers + cached
    assert mem.used_bytes == 400 * KIB
    assert mem.utilization == pytest.approx(40.0)
    assert mem.swap_used_bytes == 0


def test_unreadable_meminfo_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="meminfo"):
        MemoryReader(tmp_path, hostname="h").read()
    (tmp_path / "meminfo").write_text("Cached: 300 kB\n")
    with pytest.raises(ReadError, match="MemTotal"):
        MemoryReader(tmp_path, hostname="h").read()


def container_reader(tree: str | Path) -> MemoryReader:
    root = tree if isinstance(tree, Path) else DATA / tree
    return MemoryReader(root / "proc", sysfs=root / "sys", hostname="c", clock=lambda: NOW_S)


def test_cgroup_v2_limit_and_usage_inside_a_container() -> None:
    [mem] = check_reader(container_reader("container-v2"))[-1]
    assert isinstance(mem, MemoryInfo)
    assert (mem.total_bytes, mem.used_bytes) == (16 * GIB, 5 * GIB)  # memory.max, .current
    assert mem.available_bytes == mem.free_bytes == 11 * GIB
    assert (mem.buffers_bytes, mem.cached_bytes) == (0, 0)
    assert (mem.swap_total_bytes, mem.swap_used_bytes, mem.swap_free_bytes) == (0, 0, 0)
    assert mem.utilization == pytest.approx(5 / 16 * 100)
    assert mem.time == local_time_text(NOW_S)


def test_cgroup_v1_limit_and_usage_inside_a_container() -> None:
    [mem] = check_reader(container_reader("container-v1"))[-1]
    assert (mem.total_bytes, mem.used_bytes, mem.available_bytes) == (8 * GIB, 2 * GIB, 6 * GIB)
    assert mem.utilization == pytest.approx(25.0)


def host_view(root: Path) -> MemoryInfo:
    [mem] = container_reader(root).read()
    assert mem.total_bytes == 197581844 * KIB  # /proc/meminfo's MemTotal
    assert mem.cached_bytes == 47112336 * KIB
    return mem


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_no_limit_or_a_limit_above_the_host_means_the_host(version: str, tmp_path: Path) -> None:
    root = tmp_path / version
    shutil.copytree(DATA / f"container-{version}", root)
    cgroup = root / "sys" / "fs" / "cgroup"
    limit = cgroup / ("memory.max" if version == "v2" else "memory/memory.limit_in_bytes")
    limit.write_text(f"{256 * GIB}\n")  # larger than the host's 188 GiB
    host_view(root)
    limit.write_text("max\n" if version == "v2" else "9223372036854771712\n")
    host_view(root)
    limit.write_text("0\n")
    host_view(root)
    limit.unlink()
    host_view(root)


def test_a_limit_without_a_usage_figure_means_the_host(tmp_path: Path) -> None:
    root = tmp_path / "c"
    shutil.copytree(DATA / "container-v2", root)
    (root / "sys" / "fs" / "cgroup" / "memory.current").unlink()
    host_view(root)


def test_usage_over_the_limit_is_capped(tmp_path: Path) -> None:
    root = tmp_path / "c"
    shutil.copytree(DATA / "container-v1", root)
    usage = root / "sys" / "fs" / "cgroup" / "memory" / "memory.usage_in_bytes"
    usage.write_text(f"{9 * GIB}\n")
    [mem] = container_reader(root).read()
    assert (mem.total_bytes, mem.used_bytes, mem.available_bytes) == (8 * GIB, 8 * GIB, 0)
    assert mem.utilization == pytest.approx(100.0)


def test_this_machine() -> None:
    [mem] = check_reader(MemoryReader())[-1]
    assert isinstance(mem, MemoryInfo)
    assert mem.total_bytes > 0
    assert 0 <= mem.used_bytes <= mem.total_bytes
    assert mem.utilization is not None and 0.0 <= mem.utilization <= 100.0
