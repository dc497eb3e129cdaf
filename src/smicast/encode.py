"""Snapshot -> JSON bytes, and back. One encoder serves every surface.

Compact, keys sorted at every level, raw UTF-8, NaN and infinities written as
null (msgspec does all four natively; measured against orjson in
`bench/encode.py`). Pretty output is two-space indented, `"key": value`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
from msgspec import UNSET

from smicast.include import Section
from smicast.limits import limit_process
from smicast.schema import Snapshot

_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(Snapshot)


def snapshot_json(snapshot: Snapshot, *, pretty: bool = False) -> bytes:
    """The wire bytes of one Snapshot, without a trailing newline."""
    data = _ENCODER.encode(snapshot)
    return msgspec.json.format(data, indent=2) if pretty else data


def snapshots_json(snapshots: Sequence[Snapshot], *, pretty: bool = False) -> bytes:
    """A JSON array of Snapshots (`snapshot --samples N`)."""
    data = _ENCODER.encode(list(snapshots))
    return msgspec.json.format(data, indent=2) if pretty else data


def value_json(value: object) -> bytes:
    """Any small wire object (errors, record headers) with the same rules."""
    return _ENCODER.encode(value)


def decode_snapshot(data: bytes | str) -> Snapshot:
    """Parse one schema-1 frame; raises msgspec.ValidationError / DecodeError."""
    return _DECODER.decode(data)


def select(snapshot: Snapshot, sections: Iterable[Section]) -> Snapshot:
    """Keep only the requested sections; `schema`, `timestamp`, `hostname`, `errors` stay."""
    keep = set(sections)
    drop = {
        s.json_key: UNSET
        for s in Section
        if s not in keep and getattr(snapshot, s.json_key) is not UNSET
    }
    return msgspec.structs.replace(snapshot, **drop) if drop else snapshot


def with_process_limits(snapshot: Snapshot) -> Snapshot:
    """Apply the process string caps (idempotent); every surface goes through this."""
    procs = snapshot.processes
    if procs is UNSET or not procs:
        return snapshot
    limited = [limit_process(p) for p in procs]
    if all(a is b for a, b in zip(limited, procs, strict=True)):
        return snapshot
    return msgspec.structs.replace(snapshot, processes=limited)
