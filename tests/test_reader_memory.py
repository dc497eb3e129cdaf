"""MemoryReader against a captured /proc/meminfo."""

from __future__ import annotations

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


def test_this_machine() -> None:
    [mem] = check_reader(MemoryReader())[-1]
    assert isinstance(mem, MemoryInfo)
    assert mem.total_bytes > 0
    assert 0 <= mem.used_bytes <= mem.total_bytes
    assert mem.utilization is not None and 0.0 <= mem.utilization <= 100.0
