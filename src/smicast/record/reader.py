"""Reading traces: a streaming line splitter and the frame iterator.

Nothing is loaded whole: decompressed chunks are split into lines in bulk, and a
line longer than 16 MiB is drained and counted, never buffered. A torn last line
(a crash), a line that is not JSON or not a Snapshot, and an oversized line are
skipped and counted in `TraceStats`; a line of another schema version stops the
read with `UnsupportedSchema`, because guessing at a future format is worse than
saying so. Header lines are kept (the first wins); index lines are not needed
for a forward read and are passed over.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from smicast.record.compression import CHUNK_BYTES, ChunkSource
from smicast.record.format import MAX_HEADER_HOSTS, MAX_LINE_BYTES, codec_for_path
from smicast.schema import SCHEMA_VERSION, Snapshot

Line = bytes | memoryview


class TraceError(Exception):
    """A trace cannot be read; the message is what the user sees."""


class UnsupportedSchema(TraceError):
    def __init__(self, version: int) -> None:
        super().__init__(
            f"unsupported schema version {version}, this smicast supports schema {SCHEMA_VERSION}"
        )
        self.version = version


@dataclass
class TraceHeaderInfo:
    hosts: list[str]
    interval_ms: int


@dataclass
class TraceStats:
    frames: int = 0
    corrupt: int = 0
    oversized: int = 0
    header: TraceHeaderInfo | None = None
    damaged: list[Path] = field(default_factory=list)  # files whose compressed data is corrupt

    def summary(self) -> str | None:
        """`skipped N corrupt, M oversized lines`, or None when nothing was skipped."""
        if not self.corrupt and not self.oversized:
            return None
        return f"skipped {self.corrupt} corrupt, {self.oversized} oversized lines"


class _MetaLine(msgspec.Struct):
    """What a line that is not a Snapshot may still be: a header, an index or another schema."""

    schema: Any = None
    header: Any = None
    index: Any = None
    hosts: Any = None
    interval_ms: Any = None


class _Head(msgspec.Struct):
    """The fields every frame has; the rest of the line is checked for syntax, not built."""

    hostname: str
    schema: int
    timestamp: str


_SNAPSHOT = msgspec.json.Decoder(Snapshot)
_HEAD = msgspec.json.Decoder(_Head)
_META = msgspec.json.Decoder(_MetaLine)


class TraceFrame:
    """One frame line of a trace: validated JSON with schema 1, a timestamp and a host name.

    Building the typed Snapshot is most of the cost of reading a frame (for an 8-GPU
    frame of ~30 KB, msgspec builds ~17k a second here; checking the line and its head
    runs at ~45k). So it is built only for a consumer that needs it; `smicast replay`
    printing NDJSON passes the recorded bytes through.
    """

    __slots__ = ("hostname", "line", "timestamp")

    def __init__(self, line: Line, head: _Head) -> None:
        self.line = line
        self.timestamp = head.timestamp
        self.hostname = head.hostname

    def snapshot(self) -> Snapshot:
        """The typed frame; raises msgspec.ValidationError when a section is malformed."""
        return _SNAPSHOT.decode(self.line)


def split_lines(
    chunks: Iterable[bytes], stats: TraceStats, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[list[Line]]:
    """Complete lines in batches (one per chunk); the unterminated tail comes last.

    Lines inside a chunk are memoryviews into it, not copies: at 30 KB a frame,
    allocating each line costs as much as splitting it.
    """
    parts: list[bytes] = []  # the line in progress, across chunks
    size = 0
    draining = False  # inside an oversized line: discard up to its newline
    for chunk in chunks:
        start = 0
        batch: list[Line] = []
        if draining or parts:
            nl = chunk.find(b"\n")
            if nl < 0:
                if not draining:
                    parts.append(chunk)
                    size += len(chunk)
                    if size > max_line_bytes:
                        parts, size, draining = [], 0, True
                        stats.oversized += 1
                continue
            if draining:
                draining = False
            elif size + nl > max_line_bytes:
                stats.oversized += 1
                parts, size = [], 0
            else:
                parts.append(chunk[:nl])
                batch.append(b"".join(parts))
                parts, size = [], 0
            start = nl + 1
        view = memoryview(chunk)
        find = chunk.find
        while (nl := find(b"\n", start)) >= 0:
            if nl - start > max_line_bytes:
                stats.oversized += 1
            else:
                batch.append(view[start:nl])
            start = nl + 1
        if batch:
            yield batch
        if start < len(chunk):
            if len(chunk) - start > max_line_bytes:
                stats.oversized += 1
                draining = True
            else:
                parts, size = [chunk[start:]], len(chunk) - start
    if parts:
        yield [b"".join(parts)]  # no newline: a torn write, or a file cut short by hand


def _classify(line: Line, stats: TraceStats) -> None:
    """A line that did not decode as a Snapshot: header, index, other schema or junk."""
    if not bytes(line).strip():
        return
    try:
        meta = _META.decode(line)
    except msgspec.DecodeError:
        stats.corrupt += 1
        return
    if type(meta.schema) is int and meta.schema != SCHEMA_VERSION:
        raise UnsupportedSchema(meta.schema)
    if meta.schema != SCHEMA_VERSION or type(meta.schema) is not int:
        stats.corrupt += 1
    elif meta.header is True:
        if stats.header is None:
            hosts = meta.hosts if isinstance(meta.hosts, list) else []
            interval = meta.interval_ms if type(meta.interval_ms) is int else 0
            stats.header = TraceHeaderInfo(
                [h for h in hosts[:MAX_HEADER_HOSTS] if isinstance(h, str)], max(0, interval)
            )
    elif meta.index is not True:
        stats.corrupt += 1


def _lines(path: Path, stats: TraceStats, chunk_bytes: int) -> Iterator[Line]:
    source = ChunkSource(path, codec_for_path(path), chunk_bytes)
    try:
        for lines in split_lines(source, stats):
            yield from lines
    except OSError as exc:
        raise TraceError(f"{path}: {exc.strerror or exc}") from exc
    if source.damaged:
        stats.damaged.append(path)


def read_trace_frames(
    path: Path, stats: TraceStats, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[TraceFrame]:
    """The frame lines of one file, in order. Raises TraceError (unreadable, other schema)."""
    decode = _HEAD.decode
    for line in _lines(path, stats, chunk_bytes):
        try:
            head = decode(line)
        except msgspec.DecodeError:
            _classify(line, stats)
            continue
        if head.schema != SCHEMA_VERSION:
            raise UnsupportedSchema(head.schema)
        stats.frames += 1
        yield TraceFrame(line, head)


def read_frames(
    path: Path, stats: TraceStats, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Snapshot]:
    """The typed frames of one file, in order, each parsed once. Raises TraceError."""
    decode = _SNAPSHOT.decode
    for line in _lines(path, stats, chunk_bytes):
        try:
            snap = decode(line)
        except msgspec.DecodeError:  # ValidationError included: header, index, junk, schema 2
            _classify(line, stats)
            continue
        if snap.schema != SCHEMA_VERSION:
            raise UnsupportedSchema(snap.schema)
        stats.frames += 1
        yield snap


def iter_trace_frames(
    paths: Sequence[Path], stats: TraceStats | None = None
) -> Iterator[TraceFrame]:
    """Every frame line of the given files (rotated segments in the order given)."""
    counts = stats if stats is not None else TraceStats()
    for path in paths:
        yield from read_trace_frames(path, counts)


def iter_frames(paths: Sequence[Path], stats: TraceStats | None = None) -> Iterator[Snapshot]:
    """Every typed frame of the given files (rotated segments in the order given)."""
    counts = stats if stats is not None else TraceStats()
    for path in paths:
        yield from read_frames(path, counts)
