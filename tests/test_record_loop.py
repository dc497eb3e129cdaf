"""The local recording loop on an injected clock, and the progress line."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from smicast.record.progress import Progress, human_bytes, status_line, terminal_stream
from smicast.record.reader import iter_frames
from smicast.record.recorder import record_local
from smicast.record.writer import TraceWriter, WriterStats
from smicast.schema import Snapshot, utc_timestamp


class FakeTime:
    def __init__(self) -> None:
        self.now = 50.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 9))
        self.now += seconds
        return False


class SlowCollector:
    """Takes `costs[i]` seconds of fake time for collection i; records when each started."""

    def __init__(self, clock: FakeTime, costs: list[float] | None = None) -> None:
        self.clock = clock
        self.costs = costs or []
        self.started: list[float] = []

    def __call__(self) -> Snapshot:
        self.started.append(round(self.clock.now - 50.0, 9))
        n = len(self.started) - 1
        self.clock.now += self.costs[n] if n < len(self.costs) else 0.0
        return Snapshot(timestamp=utc_timestamp(1_000_000 + n), hostname="h", gpus=[])


def writer(tmp_path: Path) -> TraceWriter:
    return TraceWriter(tmp_path / "t.ndjson", hosts=["h"], interval_ms=500)


def test_fixed_rate_schedule_until_the_duration(tmp_path: Path) -> None:
    clock = FakeTime()
    collect = SlowCollector(clock, costs=[0.1, 0.2, 0.0, 0.4])
    w = writer(tmp_path)
    record_local(
        collect,
        w,
        interval_s=0.5,
        duration_s=2.0,
        stop=threading.Event(),
        monotonic=clock.monotonic,
        wait=clock.wait,
    )
    w.close()
    assert collect.started == [0.0, 0.5, 1.0, 1.5]  # no drift from the collection time
    assert clock.waits == [0.4, 0.3, 0.5, 0.1]
    assert len(list(iter_frames([tmp_path / "t.ndjson"]))) == 4


def test_the_duration_ends_a_wait_for_a_later_slot(tmp_path: Path) -> None:
    # `record --duration 1 --interval 8`: one frame, then the end at 1 s, not at 8 s.
    clock = FakeTime()
    collect = SlowCollector(clock, costs=[0.25])
    record_local(
        collect,
        writer(tmp_path),
        interval_s=8.0,
        duration_s=1.0,
        stop=threading.Event(),
        monotonic=clock.monotonic,
        wait=clock.wait,
    )
    assert collect.started == [0.0]
    assert clock.waits == [0.75]
    assert clock.now - 50.0 == 1.0


def test_an_overrun_runs_next_at_once_and_skips_missed_slots(tmp_path: Path) -> None:
    clock = FakeTime()
    collect = SlowCollector(clock, costs=[0.7, 0.0, 1.6, 0.0, 0.0])
    record_local(
        collect,
        writer(tmp_path),
        interval_s=0.5,
        duration_s=4.1,
        stop=threading.Event(),
        monotonic=clock.monotonic,
        wait=clock.wait,
    )
    # 0.0 takes 0.7: slot 1 (0.5) runs late at once; slot 2 at 1.0 takes 1.6 (till 2.6):
    # slots 3, 4 are missed, slot 5 (2.5) runs at once, then back on the grid.
    assert collect.started == [0.0, 0.7, 1.0, 2.6, 3.0, 3.5, 4.0]


def test_a_stop_ends_the_wait_and_the_loop(tmp_path: Path) -> None:
    stop = threading.Event()
    clock = FakeTime()
    collect = SlowCollector(clock)

    def wait(seconds: float) -> bool:
        clock.now += seconds
        if len(collect.started) == 3:
            stop.set()
            return True
        return False

    w = writer(tmp_path)
    record_local(collect, w, interval_s=1.0, stop=stop, monotonic=clock.monotonic, wait=wait)
    assert len(collect.started) == 3 and w.stats.frames == 3


def test_progress_line_only_on_a_terminal() -> None:
    assert terminal_stream() is None  # pytest captures both streams
    stats = WriterStats(frames=12, raw_bytes=3 * 1024 * 1024 + 1, written_bytes=2048)
    assert status_line(stats, 83, 300) == (
        "record: 12 frames, raw 3.0 MiB, written 2.0 KiB, elapsed 00:01:23, remaining 00:03:37"
    )
    assert status_line(stats, 83, 0).endswith("elapsed 00:01:23")
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 << 30)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "5.0 GiB",
    ]


def test_progress_redraws_in_place_at_most_four_times_a_second() -> None:
    out = io.StringIO()
    now = [0.0]
    progress = Progress(out, duration_s=10, monotonic=lambda: now[0])
    stats = WriterStats()
    for step in range(10):
        now[0] = step * 0.1
        stats.frames = step + 1
        progress.update(stats)
    progress.finish(stats)
    drawn = out.getvalue().split("\r\x1b[K")[1:]
    assert [d.split(" frames")[0] for d in drawn] == [
        "record: 1",
        "record: 4",
        "record: 7",
        "record: 10",
        "record: 10",
    ]
    assert out.getvalue().endswith("remaining 00:00:09\n")
    silent = Progress(None)
    silent.update(stats)
    silent.finish(stats)
