"""The trace writer: round trips, index lines, flushing, rotation, refusals, full disks."""

from __future__ import annotations

import errno
import gzip
import json
import os
import stat
from pathlib import Path
from typing import ClassVar

import pytest
import zstandard

from smicast.fsutil import OutputError
from smicast.record.reader import TraceStats, iter_frames
from smicast.record.writer import FileSink, TraceWriter
from smicast.schema import Snapshot, utc_timestamp
from tests.fakes import make_process, make_snapshot

T0 = 1_000_000  # 1970-01-12T13:46:40Z, all-smi's fixture epoch


def frame(i: int, **overrides: object) -> Snapshot:
    fields: dict[str, object] = dict(timestamp=utc_timestamp(T0 + i), hostname="node-a")
    fields.update(overrides)
    return make_snapshot(**fields)


def small(i: int) -> Snapshot:
    return Snapshot(timestamp=utc_timestamp(T0 + i), hostname="node-a", gpus=[])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_trace(path: Path, frames: list[Snapshot], **kwargs: object) -> TraceWriter:
    writer = TraceWriter(path, hosts=["node-a"], interval_ms=1000, **kwargs)  # type: ignore[arg-type]
    for f in frames:
        writer.write(f)
    writer.close()
    return writer


def raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".zst":
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        data = reader.read()
    elif path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.splitlines()


@pytest.mark.parametrize("name", ["t.ndjson", "t.ndjson.gz", "t.ndjson.zst"])
def test_round_trip_preserves_every_frame(tmp_path: Path, name: str) -> None:
    frames = [frame(i, processes=[make_process(pid=100 + i)]) for i in range(25)]
    write_trace(tmp_path / name, frames)
    stats = TraceStats()
    assert list(iter_frames([tmp_path / name], stats)) == frames
    assert stats.header is not None and stats.header.hosts == ["node-a"]
    assert stats.header.interval_ms == 1000
    assert (stats.corrupt, stats.oversized) == (0, 0)


@pytest.mark.parametrize("name", ["t.ndjson.gz", "t.ndjson.zst"])
def test_standard_tools_read_the_compressed_files(tmp_path: Path, name: str) -> None:
    write_trace(tmp_path / name, [frame(i) for i in range(3)])
    lines = raw_lines(tmp_path / name)
    assert json.loads(lines[0])["header"] is True
    assert [json.loads(line)["timestamp"] for line in lines[1:]] == [
        utc_timestamp(T0 + i) for i in range(3)
    ]


def test_lines_are_the_snapshot_json_with_nan_as_null(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    write_trace(path, [frame(0, cpus=[], memory=[], gpus=[], chassis=[])])
    nan_frame = frame(1)
    nan_frame = Snapshot(
        timestamp=nan_frame.timestamp,
        hostname="node-a",
        gpus=[*nan_frame.gpus][:1],  # type: ignore[misc]
    )
    import msgspec

    gpu = msgspec.structs.replace(nan_frame.gpus[0], utilization=float("nan"))  # type: ignore[index]
    path2 = tmp_path / "nan.ndjson"
    write_trace(path2, [msgspec.structs.replace(nan_frame, gpus=[gpu])])
    line = raw_lines(path2)[1]
    assert b'"utilization":null' in line
    assert b" " not in line.split(b'"name"')[0]  # compact
    (back,) = iter_frames([path2])
    assert back.gpus[0].utilization is None  # type: ignore[index]
    assert raw_lines(path)[1].startswith(b'{"chassis":[],"cpus":[],"gpus":[],"hostname":"node-a"')


def test_process_strings_are_capped_on_the_way_in(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    write_trace(path, [frame(0, processes=[make_process(command="x" * 1000)])])
    (back,) = iter_frames([path])
    assert back.processes[0].command.endswith("...(744 bytes truncated)")  # type: ignore[index]


def test_index_line_after_every_thousandth_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    write_trace(path, [small(i) for i in range(2001)])
    lines = raw_lines(path)
    indexes = [(n, json.loads(line)) for n, line in enumerate(lines) if b'"index"' in line]
    assert [i["seq"] for _, i in indexes] == [1000, 2000]
    n, first = indexes[0]
    assert json.loads(lines[n - 1])["timestamp"] == utc_timestamp(T0 + 1000)  # after frame 1000
    assert first["byte_offset"] == sum(len(line) + 1 for line in lines[:n])
    assert first["schema"] == 1 and first["index"] is True
    assert len(list(iter_frames([path]))) == 2001


def test_files_are_0600_and_refuse_existing_files_and_symlinks(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.zst"
    write_trace(path, [frame(0)])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(OutputError, match="file exists; refusing to overwrite it"):
        TraceWriter(path, hosts=["h"], interval_ms=1)
    target = tmp_path / "elsewhere"
    link = tmp_path / "link.ndjson"
    link.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        TraceWriter(link, hosts=["h"], interval_ms=1)
    assert not target.exists()


@pytest.mark.parametrize("name", ["t.ndjson", "t.ndjson.gz", "t.ndjson.zst"])
def test_a_crash_keeps_everything_up_to_the_last_flush(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    clock = Clock()
    writer = TraceWriter(path, hosts=["h"], interval_ms=1000, flush_every_s=10, monotonic=clock)
    writer.write(frame(0))  # the first frame is flushed at once
    assert [f.timestamp for f in iter_frames([path])] == [frame(0).timestamp]
    for i in range(1, 5):
        clock.now = i * 3.0  # the flush at t=12 is due: frames 0..4 are on disk
        writer.write(frame(i))
    for i in range(5, 7):  # not flushed yet
        clock.now = 12.0 + i - 4
        writer.write(frame(i))
    # No close: this is what a SIGKILL leaves behind.
    got = list(iter_frames([path]))
    assert [f.timestamp for f in got] == [frame(i).timestamp for i in range(5)]


def test_flush_every_zero_flushes_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.zst"
    writer = TraceWriter(path, hosts=["h"], interval_ms=1000, flush_every_s=0)
    for i in range(4):
        writer.write(frame(i))
        assert len(list(iter_frames([path]))) == i + 1


def test_rotation_names_and_max_files(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson.zst"
    writer = write_trace(path, [frame(i) for i in range(20)], max_size=6000, max_files=3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3
    assert "out.ndjson.zst" in names
    assert writer.stats.rotations >= 3
    assert names[:2] == [
        f"out.{n:04d}.ndjson.zst"
        for n in range(writer.stats.rotations - 1, writer.stats.rotations + 1)
    ]
    segments = [tmp_path / n for n in names if n != "out.ndjson.zst"] + [path]
    frames = list(iter_frames(segments))
    # The newest frames survive, in order, with no frame split across segments.
    timestamps = [f.timestamp for f in frames]
    assert timestamps == [frame(i).timestamp for i in range(20 - len(frames), 20)]
    for segment in segments:  # every segment is self-describing
        assert json.loads(raw_lines(segment)[0])["header"] is True


def test_max_files_one_keeps_only_the_active_file(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    writer = write_trace(path, [frame(i) for i in range(10)], max_size=3000, max_files=1)
    assert writer.stats.rotations >= 2
    assert [p.name for p in tmp_path.iterdir()] == ["out.ndjson"]


def test_rotation_never_replaces_or_deletes_files_it_did_not_make(tmp_path: Path) -> None:
    foreign = tmp_path / "out.0001.ndjson"
    foreign.write_bytes(b"someone else's\n")
    trap = tmp_path / "out.0002.ndjson"
    trap.symlink_to(tmp_path / "target")
    path = tmp_path / "out.ndjson"
    writer = write_trace(path, [frame(i) for i in range(10)], max_size=3000, max_files=2)
    assert writer.stats.rotations >= 2
    assert foreign.read_bytes() == b"someone else's\n"
    assert trap.is_symlink() and not (tmp_path / "target").exists()
    assert [p.name for p in writer.rotated] == [f"out.{writer.stats.rotations + 2:04d}.ndjson"]


class FullDisk(FileSink):
    """A real file that runs out of space after `room` bytes."""

    def __init__(self, path: Path, room: int) -> None:
        super().__init__(path)
        self.room = room

    def write(self, data: bytes) -> None:
        if len(data) > self.room:
            super().write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        super().write(data)


@pytest.mark.parametrize("name", ["t.ndjson", "t.ndjson.gz", "t.ndjson.zst"])
def test_a_full_disk_names_the_file_and_keeps_earlier_frames(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    writer = TraceWriter(
        path,
        hosts=["h"],
        interval_ms=1000,
        flush_every_s=0,
        open_sink=lambda p: FullDisk(p, room=8000),
    )
    written = 0
    with pytest.raises(OutputError) as caught:
        for i in range(1000):
            writer.write(frame(i))
            written += 1
    assert caught.value.strerror == f"{path}: no space left on device"
    assert caught.value.errno == errno.ENOSPC
    writer.close()  # nothing more to write, no second error
    with pytest.raises(OutputError, match="an earlier write failed"):
        writer.write(frame(0))
    assert written > 0
    stats = TraceStats()
    frames = list(iter_frames([path], stats))
    assert [f.timestamp for f in frames] == [frame(i).timestamp for i in range(written)]


class FailingSync(FileSink):
    """A real file whose fsync fails (EIO), as on a disk that went away."""

    opened: ClassVar[list[FailingSync]] = []

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fd = self._fd
        self.syncs = 0
        FailingSync.opened.append(self)

    def sync(self) -> None:
        self.syncs += 1
        if self.syncs > 1:  # the first frame's flush works; later ones fail
            raise OSError(errno.EIO, os.strerror(errno.EIO))


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.mark.parametrize("when", ["close", "rotate"])
def test_a_failed_fsync_does_not_leak_the_descriptor(tmp_path: Path, when: str) -> None:
    FailingSync.opened.clear()
    path = tmp_path / "t.ndjson"
    writer = TraceWriter(
        path,
        hosts=["h"],
        interval_ms=1000,
        max_size=1 if when == "rotate" else 0,
        flush_every_s=3600,
        open_sink=FailingSync,
    )
    [sink] = FailingSync.opened
    with pytest.raises(OutputError, match="Input/output error"):
        writer.write(small(0))  # flushed at once, then the segment is full: rotation
        writer.close()
    assert not _is_open(sink.fd)
    writer.close()  # nothing left to do


def test_flush_if_due_flushes_frames_that_waited(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.zst"
    clock = Clock()
    writer = TraceWriter(path, hosts=["h"], interval_ms=0, flush_every_s=10, monotonic=clock)
    assert writer.flush_due_at() is None
    writer.write(frame(0))  # flushed at once
    assert writer.flush_due_at() is None
    clock.now = 1.0
    writer.write(frame(1))
    assert writer.flush_due_at() == 10.0
    clock.now = 9.0
    writer.flush_if_due()
    assert len(list(iter_frames([path]))) == 1  # not due yet
    clock.now = 10.0
    writer.flush_if_due()
    assert len(list(iter_frames([path]))) == 2
    assert writer.flush_due_at() is None
    writer.close()
