"""What recording costs and how fast a trace reads back.

Prints figures, asserts nothing. Frames come from a real collector with 8
simulated NVIDIA GPUs (and their processes) plus this machine's CPU, memory,
chassis and disks: every section. For each codec it records N frames with the
default flush policy on a 3 s cadence (the clock is injected, so no waiting) and
reports CPU time per frame (collection, and encode + compress + write apart),
raw and written bytes per frame, the compression ratio, and the replay parse rate
(frames decoded to Snapshots per second, median of several runs), next to the
ceiling that msgspec alone reaches on the same lines already in memory.

Targets: written <= 10 % of raw; replay >= 20,000 frames/s.

    .venv/bin/python bench/record.py [--frames 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from smicast.collect import Collector
from smicast.encode import decode_snapshot, snapshot_json
from smicast.include import ALL_SECTIONS
from smicast.readers.registry import SimulateSpec, build_readers
from smicast.record.reader import TraceStats, iter_frames, iter_trace_frames
from smicast.record.writer import TraceWriter
from smicast.schema import Snapshot

INTERVAL_S = 3.0


def collect_frames(n: int) -> tuple[list[Snapshot], float]:
    now = [time.time()]  # simulated time: 3 s a frame, so values move as they would

    def clock() -> float:
        return now[0]

    readers = build_readers(ALL_SECTIONS, simulate=SimulateSpec("nvidia", 8), clock=clock)
    collector = Collector(readers, clock=clock)
    collector.collect(ALL_SECTIONS)  # warm-up: first reads prime CPU counters and caches
    frames = []
    start = time.process_time()
    for _ in range(n):
        now[0] += INTERVAL_S
        frames.append(collector.collect(ALL_SECTIONS))
    return frames, (time.process_time() - start) / n


def record(path: Path, frames: list[Snapshot]) -> tuple[float, TraceWriter]:
    tick = iter(range(10**9))
    writer = TraceWriter(
        path,
        hosts=["bench"],
        interval_ms=int(INTERVAL_S * 1000),
        monotonic=lambda: next(tick) * INTERVAL_S,
    )
    start = time.process_time()
    for snap in frames:
        writer.write(snap)
    writer.close()
    return (time.process_time() - start) / len(frames), writer


def replay_rate(path: Path, runs: int, *, typed: bool) -> float:
    """Frames/s read from the file: checked lines (what `smicast replay` prints from),
    or typed Snapshots (what CSV, Prometheus and `api --replay` use)."""
    read = iter_frames if typed else iter_trace_frames
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        stats = TraceStats()
        count = sum(1 for _ in read([path], stats))
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def decode_ceiling(frames: list[Snapshot], runs: int) -> float:
    """msgspec alone on lines already in memory: the most any reader could reach."""
    lines = [snapshot_json(f) for f in frames]
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for line in lines:
            decode_snapshot(line)
        rates.append(len(lines) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    frames, collect_cpu = collect_frames(args.frames)
    gpus = len(frames[0].gpus or [])
    procs = len(frames[0].processes or [])
    print(f"frames: {args.frames}, each with {gpus} GPUs, {procs} processes, every section")
    print(f"collection CPU per frame: {collect_cpu * 1e3:.3f} ms")
    print()
    header = (
        f"{'codec':<6} {'write CPU/frame':>16} {'total CPU/frame':>16} {'raw B/frame':>12} "
        f"{'written B/frame':>16} {'ratio':>7} {'replay frames/s':>16} {'typed frames/s':>15}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for codec, name in (
            ("zstd", "t.ndjson.zst"),
            ("gzip", "t.ndjson.gz"),
            ("none", "t.ndjson"),
        ):
            path = Path(tmp) / name
            write_cpu, writer = record(path, frames)
            raw = writer.stats.raw_bytes / args.frames
            written = path.stat().st_size / args.frames
            rate = replay_rate(path, args.runs, typed=False)
            typed_rate = replay_rate(path, args.runs, typed=True)
            print(
                f"{codec:<6} {write_cpu * 1e3:>13.3f} ms {(collect_cpu + write_cpu) * 1e3:>13.3f} ms "
                f"{raw:>12.0f} {written:>16.0f} {written / raw:>6.1%} {rate:>16,.0f} {typed_rate:>15,.0f}"
            )
    print()
    print(
        "replay frames/s: lines read, decompressed, split, JSON-checked with schema/timestamp/"
        "hostname (smicast replay's NDJSON path)"
    )
    print(
        "typed frames/s: the same, plus building the typed Snapshot (csv, prometheus, api --replay)"
    )
    print(
        f"typed decode-only ceiling (msgspec, lines in memory): {decode_ceiling(frames, args.runs):,.0f} frames/s"
    )


if __name__ == "__main__":
    main()
