"""What every reader promises; `check_reader(reader)` runs in each reader's tests."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from smicast.encode import value_json
from smicast.include import Section
from smicast.readers import GpuProcess, GpuReader, Item, Reader
from smicast.schema import (
    ChassisInfo,
    CpuInfo,
    GpuInfo,
    MemoryInfo,
    ProcessInfo,
    StorageInfo,
)
from smicast.schema_required import EXTENSIONS, required_nulls

ITEM_TYPES: dict[Section, type] = {
    Section.GPU: GpuInfo,
    Section.CPU: CpuInfo,
    Section.MEMORY: MemoryInfo,
    Section.CHASSIS: ChassisInfo,
    Section.PROCESS: ProcessInfo,
    Section.STORAGE: StorageInfo,
}


def check_reader(reader: Reader, *, reads: int = 2) -> list[Sequence[Item]]:
    """Read `reads` times and check the promises; returns what each read gave."""
    assert isinstance(reader, Reader), "a reader has name, section and read()"
    assert isinstance(reader.name, str) and reader.name
    assert isinstance(reader.section, Section)
    item_type = ITEM_TYPES[reader.section]
    results: list[Sequence[Item]] = []
    for _ in range(reads):
        items = reader.read()
        assert isinstance(items, Sequence) and not isinstance(items, str | bytes)
        for item in items:
            assert isinstance(item, item_type), f"{reader.name} gave {type(item).__name__}"
            # Wire round trip: every field encodes and the bytes decode to an equal value.
            data = value_json(item)
            assert msgspec.json.decode(data, type=item_type) == item
            # Every field of the wire type is present in the encoded object (null when unknown),
            # apart from smicast's own extensions, which are left out when unknown.
            keys = set(msgspec.json.decode(data))
            fields = set(item_type.__struct_fields__)
            optional = EXTENSIONS.get(item_type, frozenset())
            assert fields - optional <= keys <= fields, keys ^ fields
            # No null where all-smi's types have a plain number, string or list.
            assert not required_nulls(item), f"{reader.name}: null in {required_nulls(item)}"
        results.append(items)
    if isinstance(reader, GpuReader):
        for proc in reader.read_processes():
            assert isinstance(proc, GpuProcess)
            assert proc.pid >= 0 and proc.used_memory >= 0
    return results
