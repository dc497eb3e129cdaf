"""Reading traces: damaged lines are skipped and counted, other schemas stop, memory is bounded."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from pathlib import Path

import pytest
import zstandard

from smicast.encode import snapshot_json
from smicast.record.format import MAX_LINE_BYTES, header_line, index_line
from smicast.record.reader import (
    TraceError,
    TraceStats,
    UnsupportedSchema,
    iter_frames,
    split_lines,
)
from smicast.schema import Snapshot, utc_timestamp
from tests.fakes import make_snapshot

T0 = 1_000_000


def frame_line(i: int) -> bytes:
    snap = make_snapshot(timestamp=utc_timestamp(T0 + i), hostname="node-a")
    return snapshot_json(snap) + b"\n"


def tiny_line(i: int) -> bytes:
    snap = Snapshot(timestamp=utc_timestamp(T0 + i), hostname="node-" + "a" * 100, gpus=[])
    return snapshot_json(snap) + b"\n"


def read(path: Path) -> tuple[list[Snapshot], TraceStats]:
    stats = TraceStats()
    return list(iter_frames([path], stats)), stats


def test_corrupt_truncated_and_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    path.write_bytes(
        header_line(["node-a"], 1000)
        + frame_line(0)
        + b"not json at all\n"
        + b"\n   \n"
        + b'{"schema":1,"hostname":"no timestamp"}\n'
        + b'["an","array"]\n'
        + b"\xff\xfe binary\n"
        + frame_line(1)
        + index_line(1, 10)
        + frame_line(2)
        + b'{"schema":1,"timestamp":"not-finished'
    )
    frames, stats = read(path)
    assert [f.timestamp for f in frames] == [utc_timestamp(T0 + i) for i in range(3)]
    assert (stats.corrupt, stats.oversized) == (5, 0)
    assert stats.summary() == "skipped 5 corrupt, 0 oversized lines"
    assert stats.header is not None and stats.header.hosts == ["node-a"]


def test_null_numbers_read_back(tmp_path: Path) -> None:
    line = frame_line(0).replace(b'"utilization":80.0', b'"utilization":null')
    line = line.replace(b'"power_consumption":250.0', b'"power_consumption":null')
    assert line.count(b"null") >= 2
    path = tmp_path / "t.ndjson"
    path.write_bytes(line)
    frames, stats = read(path)
    assert frames[0].gpus[0].utilization is None  # type: ignore[index]
    assert frames[0].gpus[0].power_consumption is None  # type: ignore[index]
    assert stats.corrupt == 0


@pytest.mark.parametrize(
    "line",
    [
        b'{"schema":2,"timestamp":"2026-01-01T00:00:00Z","hostname":"h"}\n',
        b'{"schema":2,"something":"else entirely"}\n',
        b'{"header":true,"hosts":[],"interval_ms":1,"schema":2}\n',
    ],
)
def test_another_schema_stops_with_the_exact_message(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "t.ndjson"
    path.write_bytes(frame_line(0) + line + frame_line(1))
    got: list[Snapshot] = []
    with pytest.raises(UnsupportedSchema) as caught:
        got.extend(iter_frames([path]))
    assert str(caught.value) == "unsupported schema version 2, this smicast supports schema 1"
    assert caught.value.version == 2
    assert len(got) == 1


def test_a_non_integer_schema_is_just_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    path.write_bytes(b'{"schema":"2"}\n{"schema":true,"header":true}\n' + frame_line(0))
    frames, stats = read(path)
    assert len(frames) == 1 and stats.corrupt == 2


def test_oversized_lines_are_drained_not_buffered(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    big = b'{"schema":1,"pad":"' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n'
    path.write_bytes(frame_line(0) + big + frame_line(1) + big + frame_line(2))
    frames, stats = read(path)
    assert len(frames) == 3
    assert (stats.corrupt, stats.oversized) == (0, 2)


def test_split_lines_across_chunks_and_limits() -> None:
    stats = TraceStats()
    chunks = [b"ab", b"c\nde", b"f\n", b"0123456789", b"0123\nxy\n", b"12345678901\nz", b"q"]
    lines = [line for batch in split_lines(chunks, stats, max_line_bytes=10) for line in batch]
    assert [bytes(x) for x in lines] == [b"abc", b"def", b"xy", b"zq"]
    assert stats.oversized == 2
    stats = TraceStats()
    lines = [
        x for b in split_lines([b"a\nbbbbbbbbbbbbbbbb\nc"], stats, max_line_bytes=4) for x in b
    ]
    assert [bytes(x) for x in lines] == [b"a", b"c"] and stats.oversized == 1
    stats = TraceStats()
    tail = [b"a\nbbbbbbbbbbbbbbbbbb", b"bbb", b"\nc\n"]
    assert [bytes(x) for b in split_lines(tail, stats, max_line_bytes=4) for x in b] == [b"a", b"c"]
    assert stats.oversized == 1


def test_truncated_gzip_reads_up_to_the_cut(tmp_path: Path) -> None:
    z = zlib.compressobj(wbits=31)
    data = z.compress(header_line(["h"], 1000) + frame_line(0) + frame_line(1))
    data += z.flush(zlib.Z_SYNC_FLUSH)
    data += z.compress(frame_line(2)) + z.flush(zlib.Z_SYNC_FLUSH)
    path = tmp_path / "t.ndjson.gz"
    path.write_bytes(data[:-7])  # torn inside the last flush
    frames, stats = read(path)
    assert len(frames) == 2 and stats.corrupt == 1 and not stats.damaged


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.gz"
    path.write_bytes(gzip.compress(frame_line(0)) + gzip.compress(frame_line(1)))
    assert len(read(path)[0]) == 2


def test_truncated_zstd_reads_up_to_the_cut(tmp_path: Path) -> None:
    c = zstandard.ZstdCompressor(level=3).compressobj()
    data = c.compress(frame_line(0) + frame_line(1)) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    data += c.compress(frame_line(2)) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    path = tmp_path / "t.ndjson.zst"
    path.write_bytes(data[:-5])
    frames, _ = read(path)
    assert len(frames) == 2


@pytest.mark.parametrize("name", ["t.ndjson.gz", "t.ndjson.zst"])
def test_corrupt_compressed_data_is_reported(tmp_path: Path, name: str) -> None:
    payload = b"".join(frame_line(i) for i in range(50))
    if name.endswith(".gz"):
        data = bytearray(gzip.compress(payload))
    else:
        data = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(payload))
    data[len(data) // 2 : len(data) // 2 + 16] = b"\x00" * 16
    path = tmp_path / name
    path.write_bytes(bytes(data))
    _, stats = read(path)
    assert stats.damaged == [path]


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"nope\.ndjson: No such file"):
        list(iter_frames([tmp_path / "nope.ndjson"]))


def test_segments_are_read_in_the_order_given(tmp_path: Path) -> None:
    a, b = tmp_path / "a.0001.ndjson", tmp_path / "a.ndjson"
    a.write_bytes(header_line(["h"], 1) + frame_line(0) + frame_line(1))
    b.write_bytes(header_line(["h"], 1) + frame_line(2))
    assert [f.timestamp for f in iter_frames([a, b])] == [utc_timestamp(T0 + i) for i in range(3)]


def test_fifty_thousand_frames_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    with path.open("wb") as fh:
        fh.write(header_line(["node-a"], 1000))
        for start in range(0, 50_000, 1000):
            fh.write(b"".join(tiny_line(i) for i in range(start, start + 1000)))
            if start:
                fh.write(index_line(start, 0))
    size = path.stat().st_size
    assert size > 8_000_000
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_frames([path]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 50_000
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"


def test_a_zstd_window_over_128_mib_is_refused(tmp_path: Path) -> None:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=28)
    c = zstandard.ZstdCompressor(compression_params=params).compressobj()
    path = tmp_path / "t.ndjson.zst"
    path.write_bytes(c.compress(frame_line(0)) + c.flush())
    frames, stats = read(path)
    assert frames == [] and stats.damaged == [path]
