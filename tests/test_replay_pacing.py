"""Pacing: recorded gaps divided by the speed, with an injected clock (no real waiting)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smicast.encode import snapshot_json
from smicast.record.format import header_line
from smicast.record.replay import Pacer, paced, play, timeline, timestamp_epoch
from smicast.schema import Snapshot, utc_timestamp

T0 = 1_000_000


class FakeTime:
    """A monotonic clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def trace(path: Path, offsets: list[float | str], interval_ms: int = 1000) -> Path:
    lines = [header_line(["h"], interval_ms)]
    for off in offsets:
        stamp = off if isinstance(off, str) else utc_timestamp(T0 + off)
        lines.append(snapshot_json(Snapshot(timestamp=stamp, hostname="h", gpus=[])) + b"\n")
    path.write_bytes(b"".join(lines))
    return path


def stamps(frames: list[Snapshot]) -> list[float | None]:
    return [None if (e := timestamp_epoch(f.timestamp)) is None else e - T0 for f in frames]


def test_four_seconds_of_gaps_at_speed_four_take_one_second(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [0, 1, 2, 3, 4])
    clock = FakeTime()
    frames = list(paced([path], speed=4, sleep=clock.sleep, monotonic=clock.monotonic))
    assert stamps(frames) == [0, 1, 2, 3, 4]
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]
    assert clock.now - 100.0 == pytest.approx(1.0)


def test_irregular_gaps_at_half_speed(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [0, 3, 3, 10])
    clock = FakeTime()
    list(paced([path], speed=0.5, sleep=clock.sleep, monotonic=clock.monotonic))
    assert clock.sleeps == [6.0, 14.0]  # no sleep for a repeated second


def test_time_spent_by_the_consumer_is_not_added() -> None:
    pacer = Pacer(1.0)
    assert pacer.wait_s(T0, now=50.0) == 0.0
    assert pacer.wait_s(T0 + 2, now=50.5) == 1.5  # the consumer took 0.5 s
    assert pacer.wait_s(T0 + 3, now=54.0) == 0.0  # late: no wait, and no catching up later
    assert pacer.wait_s(T0 + 5, now=54.0) == 1.0


def test_backwards_and_unparseable_timestamps_do_not_wait(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [10, 12, "garbage", 2, 3])
    clock = FakeTime()
    frames = list(paced([path], speed=1, sleep=clock.sleep, monotonic=clock.monotonic))
    assert stamps(frames) == [10, 12, None, 2, 3]
    assert clock.sleeps == [2.0, 1.0]


def test_start_skips_into_the_trace(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [0, 1, 2, 3, 4, 5])
    got = [s for s, _, _ in timeline([path], loop=False, start_s=3)]
    assert stamps(got) == [3, 4, 5]
    clock = FakeTime()
    paced_frames = list(
        paced([path], speed=2, start_s=3, sleep=clock.sleep, monotonic=clock.monotonic)
    )
    assert stamps(paced_frames) == [3, 4, 5]
    assert clock.sleeps == [0.5, 0.5]  # no wait for the skipped part


def test_loop_restarts_one_recorded_interval_after_the_end(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [0, 2, 4], interval_ms=2000)
    clock = FakeTime()
    frames = paced([path], speed=2, loop=True, sleep=clock.sleep, monotonic=clock.monotonic)
    got = [next(frames) for _ in range(7)]
    assert stamps(got) == [0, 2, 4, 0, 2, 4, 0]
    assert clock.sleeps == [1.0] * 6


def test_loop_over_an_empty_trace_ends(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [])
    assert list(paced([path], speed=1, loop=True, sleep=lambda s: None)) == []


def test_speed_is_bounded() -> None:
    for bad in (0.0, -1.0, 1e9, float("nan")):
        with pytest.raises(ValueError, match="speed must be between"):
            Pacer(bad)


def test_play_yields_frames_as_recorded_at_the_recorded_pace(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [0, 1, 3])
    clock = FakeTime()

    async def collect() -> list[Snapshot]:
        out = []
        async for snap in play(
            [path], speed=1.0, sleep=clock.async_sleep, monotonic=clock.monotonic
        ):
            out.append(snap)
        return out

    frames = asyncio.run(collect())
    assert [f.timestamp for f in frames] == [utc_timestamp(T0 + i) for i in (0, 1, 3)]
    assert clock.sleeps == [1.0, 2.0]


def test_timestamp_epoch() -> None:
    assert timestamp_epoch("1970-01-12T13:46:40Z") == T0
    assert timestamp_epoch("1970-01-12T13:46:40") == T0
    assert timestamp_epoch("1970-01-12T15:46:40+02:00") == T0
    assert timestamp_epoch("not a time") is None


@pytest.mark.parametrize(
    ("late", "gap_s"),
    [(10**9, 10**9 - 1), ("9999-12-31T23:59:59Z", None)],  # a jump; a far-future timestamp
)
def test_one_huge_gap_is_cut_with_a_warning(
    tmp_path: Path, late: float | str, gap_s: float | None
) -> None:
    after = late + 2 if isinstance(late, int) else "9999-12-31T23:59:59Z"
    path = trace(tmp_path / "t.ndjson", [0, 1, late, after], interval_ms=1000)
    clock = FakeTime()
    warnings: list[str] = []
    frames = list(
        paced([path], speed=1, sleep=clock.sleep, monotonic=clock.monotonic, warn=warnings.append)
    )
    assert len(frames) == 4
    assert clock.sleeps[:2] == [1.0, 60.0]  # the gap is cut to 60 s (10 intervals: 10 s)
    assert clock.sleeps[2:] == ([2.0] if isinstance(late, int) else [])
    [warning] = warnings
    assert warning.startswith("a gap of ") and "was cut to 60 s" in warning
    if gap_s is not None:
        assert f"a gap of {gap_s} s" in warning


def test_the_longest_honoured_gap_follows_the_recorded_interval(tmp_path: Path) -> None:
    path = trace(tmp_path / "t.ndjson", [0, 300, 3300, 9000], interval_ms=300_000)
    clock = FakeTime()
    warnings: list[str] = []
    list(
        paced([path], speed=10, sleep=clock.sleep, monotonic=clock.monotonic, warn=warnings.append)
    )
    # 10 intervals of 300 s: 3000 s is honoured (at speed 10: 300 s), 5700 s is cut.
    assert clock.sleeps == [30.0, 300.0, 300.0]
    assert len(warnings) == 1


def test_play_warns_through_the_log_and_keeps_the_pace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = trace(tmp_path / "t.ndjson", [0, 10**8])
    clock = FakeTime()

    async def collect() -> int:
        return len(
            [
                s
                async for s in play(
                    [path], speed=2, sleep=clock.async_sleep, monotonic=clock.monotonic
                )
            ]
        )

    assert asyncio.run(collect()) == 2
    assert clock.sleeps == [30.0]
    assert "was cut to 60 s" in caplog.text
