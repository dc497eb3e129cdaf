"""The trace writer: one line per frame, flushed for crash safety, rotated by size.

Durability: the first frame of each segment, and then at least every
`flush_every_s`, the compressed stream is flushed at a frame boundary and the file
fsynced, so a crash or power loss costs at most the frames since the last flush.

Rotation (all-smi's naming): when the active segment holds `max_size` uncompressed
bytes it is closed and renamed `out.0001.ndjson.zst`, `out.0002...`; a rename never
replaces an existing file (a number in use is skipped), and only segments this
writer made are deleted to keep `max_files` files in all, the active one included.
Each segment starts with its own header line so that it stays self-describing
after older segments are deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from smicast.encode import snapshot_json, with_process_limits
from smicast.fsutil import OutputError, create_new, fsync_dir, output_error, write_all
from smicast.record.compression import Encoder, make_encoder
from smicast.record.format import (
    INDEX_EVERY_N_FRAMES,
    Codec,
    codec_for_path,
    header_line,
    index_line,
    rotated_path,
)
from smicast.schema import Snapshot

DEFAULT_FLUSH_EVERY_S: Final = 10.0
_WRITE_BUFFER_BYTES: Final = 64 << 10
MAX_ROTATION_NUMBER: Final = 99_999


class Sink(Protocol):
    """Where a segment's bytes go; raises OSError when they cannot."""

    def write(self, data: bytes) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class FileSink:
    """A new file: mode 0600, never through a symlink, never over an existing file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = create_new(path)

    def write(self, data: bytes) -> None:
        write_all(self._fd, data, self.path)

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class WriterStats:
    frames: int = 0
    raw_bytes: int = 0  # uncompressed, every segment
    written_bytes: int = 0  # handed to the files (compressed)
    rotations: int = 0


class TraceWriter:
    """Writes frames to `path` (and rotated siblings). Raises OutputError naming the file."""

    def __init__(
        self,
        path: Path,
        *,
        hosts: list[str],
        interval_ms: int,
        codec: Codec | None = None,
        max_size: int = 0,
        max_files: int = 10,
        flush_every_s: float = DEFAULT_FLUSH_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
        open_sink: Callable[[Path], Sink] = FileSink,
    ) -> None:
        if max_files < 1:
            raise ValueError("max_files must be >= 1")
        self.path = path
        self.codec = codec if codec is not None else codec_for_path(path)
        self.max_size = max_size
        self.max_files = max_files
        self.flush_every_s = flush_every_s
        self.stats = WriterStats()
        self.rotated: list[Path] = []  # oldest first; only segments this writer made
        self._header = header_line(hosts, interval_ms)
        self.monotonic = monotonic
        self._open_sink = open_sink
        self._sink: Sink | None = None
        self._encoder: Encoder = make_encoder(self.codec)
        self._out = bytearray()
        self._segment_bytes = 0
        self._segment_frames = 0
        self._last_flush = 0.0
        self._unflushed = 0  # frames written since the last flush
        self._next_number = 1
        self._failed = False
        self._open_segment()  # an existing file or symlink is refused before any collection

    def write(self, snapshot: Snapshot) -> None:
        """Append one frame; flush and rotate as the policy says."""
        if self._failed:
            raise OutputError(errno.EIO, f"{self.path}: an earlier write failed")
        if self._sink is None:
            raise ValueError("write to a closed TraceWriter")
        try:
            self._emit(snapshot_json(with_process_limits(snapshot)) + b"\n")
            seq = self.stats.frames
            self.stats.frames += 1
            self._segment_frames += 1
            if seq > 0 and seq % INDEX_EVERY_N_FRAMES == 0:
                self._emit(index_line(seq, self._segment_bytes))
            self._unflushed += 1
            now = self.monotonic()
            if self._segment_frames == 1 or now - self._last_flush >= self.flush_every_s:
                self._flush(now)
            if self.max_size and self._segment_bytes >= self.max_size:
                self._rotate()
        except OSError as exc:
            self._abandon()
            raise output_error(self.path, exc) from exc

    def flush_due_at(self) -> float | None:
        """When (on `monotonic`) the frames not yet flushed must be; None when there are none."""
        if self._sink is None or not self._unflushed:
            return None
        return self._last_flush + self.flush_every_s

    def flush_if_due(self) -> None:
        """Flush now if frames have waited `flush_every_s`: for a source that went quiet."""
        due = self.flush_due_at()
        if due is None or self._failed:
            return
        now = self.monotonic()
        if now < due:
            return
        try:
            self._flush(now)
        except OSError as exc:
            self._abandon()
            raise output_error(self.path, exc) from exc

    def close(self) -> None:
        """Finish the compressed stream and close; safe to call after a failure."""
        if self._sink is None:
            return
        try:
            self._finish_segment()
        except OSError as exc:
            self._abandon()
            raise output_error(self.path, exc) from exc

    def _open_segment(self) -> None:
        self._sink = self._open_sink(self.path)
        fsync_dir(self.path.parent)
        self._encoder = make_encoder(self.codec)
        self._segment_bytes = 0
        self._segment_frames = 0
        self._emit(self._header)

    def _emit(self, data: bytes) -> None:
        self._segment_bytes += len(data)
        self.stats.raw_bytes += len(data)
        self._out += self._encoder.compress(data)
        if len(self._out) >= _WRITE_BUFFER_BYTES:
            self._drain()

    def _drain(self) -> None:
        if self._out and self._sink is not None:
            data = bytes(self._out)
            self._out.clear()
            self._sink.write(data)
            self.stats.written_bytes += len(data)

    def _flush(self, now: float) -> None:
        self._out += self._encoder.flush()
        self._drain()
        if self._sink is not None:
            self._sink.sync()
        self._last_flush = now
        self._unflushed = 0

    def _finish_segment(self) -> None:
        self._out += self._encoder.finish()
        self._drain()
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                sink.sync()
            finally:
                sink.close()  # a failed fsync must not leak the descriptor

    def _rotate(self) -> None:
        self._finish_segment()
        self.rotated.append(self._rename_active())
        self.stats.rotations += 1
        while len(self.rotated) >= self.max_files:  # the next active segment is one more file
            self.rotated.pop(0).unlink(missing_ok=True)
        self._open_segment()

    def _rename_active(self) -> Path:
        while self._next_number <= MAX_ROTATION_NUMBER:
            target = rotated_path(self.path, self._next_number)
            self._next_number += 1
            try:
                os.link(self.path, target, follow_symlinks=False)  # fails if target exists
            except FileExistsError:
                continue
            except OSError:  # no hard links on this filesystem: check, then rename
                if os.path.lexists(target):
                    continue
                self.path.rename(target)
                return target
            self.path.unlink()
            return target
        raise OutputError(errno.EEXIST, f"{self.path}: no free rotation number left")

    def _abandon(self) -> None:
        """After a failed write: close without writing more; earlier flushes stay intact."""
        self._failed = True
        self._out.clear()
        sink, self._sink = self._sink, None
        if sink is not None:
            with contextlib.suppress(OSError):
                sink.close()
