"""Cost of one collection cycle and of starting `smicast snapshot`.

Readers: this machine's CPU, memory, chassis and storage, plus 8 simulated
NVIDIA GPUs (with and without the process section). For each configuration,
several runs of N cycles after a warm-up; per run the median and p99 of the
wall time of `Collector.collect()` and the CPU time it used (process-wide, so
the reader threads count), then the median over the runs. Encoding the
snapshot (`snapshot_json`) is shown beside it, since every surface pays it too.

Cold start: process start to exit of `smicast snapshot --simulate nvidia:8`
(output discarded), against `python -c pass` measured in the same run.

Targets (2-core machine): CPU per cycle < 5 ms without processes and < 10 ms
with them; cold start < 250 ms.

    .venv/bin/python bench/collect.py [--cycles 300] [--runs 5] [--starts 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from smicast.collect import Collector
from smicast.encode import snapshot_json
from smicast.include import ALL_SECTIONS, Section
from smicast.readers import GpuProcess, Reader
from smicast.readers.processes import ProcessReader
from smicast.readers.registry import SimulateSpec, build_readers
from smicast.readers.simulated import SimulatedReader
from smicast.schema import GpuInfo

TARGET_CPU_MS = {
    "without processes": 5.0,
    "with processes": 10.0,
    "with processes (real /proc enrichment)": 10.0,
}
TARGET_COLD_START_MS = 250.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def one_run(
    collector: Collector, sections: frozenset[Section], cycles: int, warmup: int
) -> dict[str, float]:
    for _ in range(warmup):
        collector.collect(sections)
    wall: list[float] = []
    cpu: list[float] = []
    encode_cpu: list[float] = []
    devices = 0
    for _ in range(cycles):
        c0, w0 = time.process_time(), time.perf_counter()
        snap = collector.collect(sections)
        w1, c1 = time.perf_counter(), time.process_time()
        snapshot_json(snap)
        c2 = time.process_time()
        wall.append(w1 - w0)
        cpu.append(c1 - c0)
        encode_cpu.append(c2 - c1)
        devices = snap.device_count()
        if snap.errors:
            raise SystemExit(f"reader errors during the benchmark: {snap.errors}")
    # process_time ticks coarsely on some kernels: the mean over the run is the robust figure.
    return {
        "wall_median_ms": statistics.median(wall) * 1e3,
        "wall_p99_ms": percentile(wall, 0.99) * 1e3,
        "cpu_mean_ms": statistics.fmean(cpu) * 1e3,
        "cpu_median_ms": statistics.median(cpu) * 1e3,
        "cpu_p99_ms": percentile(cpu, 0.99) * 1e3,
        "encode_cpu_mean_ms": statistics.fmean(encode_cpu) * 1e3,
        "devices": float(devices),
    }


class RealPidGpus:
    """The simulated GPUs, but their processes are live pids of this machine.

    The simulated reader hands the process reader complete records; real vendor
    readers give bare pids that are described from /proc. This wrapper makes the
    process reader do that real work for as many processes as the simulation runs.
    """

    section = Section.GPU

    def __init__(self, inner: SimulatedReader) -> None:
        self.name = f"{inner.name}+real-pids"
        self._inner = inner
        self._pids = sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())

    def read(self) -> list[GpuInfo]:
        return self._inner.read()

    def read_processes(self) -> list[GpuProcess]:
        procs = self._inner.read_processes()
        pids = self._pids
        return [
            msgspec.structs.replace(p, pid=pids[i % len(pids)], info=None)
            for i, p in enumerate(procs)
        ]


def readers_for(label: str) -> tuple[list[Reader], frozenset[Section]]:
    spec = SimulateSpec("nvidia", 8)
    if label == "without processes":
        sections = ALL_SECTIONS - {Section.PROCESS}
        return build_readers(sections, simulate=spec, seed=1), sections
    readers = build_readers(ALL_SECTIONS, simulate=spec, seed=1)
    if label == "with processes (real /proc enrichment)":
        gpu = readers[0]
        assert isinstance(gpu, SimulatedReader)
        wrapped = RealPidGpus(gpu)
        readers = [
            wrapped,
            *(ProcessReader([wrapped]) if r.section is Section.PROCESS else r for r in readers[1:]),
        ]
    return readers, ALL_SECTIONS


def bench_collection(label: str, args: argparse.Namespace) -> bool:
    readers, sections = readers_for(label)
    collector = Collector(readers)
    runs = [one_run(collector, sections, args.cycles, args.warmup) for _ in range(args.runs)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    names = ", ".join(r.name for r in readers)
    target = TARGET_CPU_MS[label]
    ok = med("cpu_mean_ms") < target
    print(f"\n{label}: readers {names}; {int(med('devices'))} items per snapshot")
    print(
        f"  {args.runs} runs x {args.cycles} cycles (after {args.warmup} warm-up), medians over runs"
    )
    print(
        f"  wall per cycle    median {med('wall_median_ms'):7.3f} ms   p99 {med('wall_p99_ms'):7.3f} ms"
    )
    print(
        f"  CPU per cycle     mean   {med('cpu_mean_ms'):7.3f} ms   median {med('cpu_median_ms'):7.3f} ms"
        f"   p99 {med('cpu_p99_ms'):7.3f} ms   target < {target:.0f} ms: {'met' if ok else 'MISSED'}"
    )
    print(f"  encode (JSON) CPU mean   {med('encode_cpu_mean_ms'):7.3f} ms")
    return ok


def time_command(argv: list[str], runs: int) -> tuple[float, float, float]:
    """Median and best wall time, and median CPU time (user + system) of the child, in ms."""
    env = {**os.environ, "SMICAST_NO_GPU": "1"}
    subprocess.run(argv, stdout=subprocess.DEVNULL, env=env, check=True)  # warm the page cache
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, env=env, check=True)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(wall) * 1e3, min(wall) * 1e3, statistics.median(cpu) * 1e3


def bench_cold_start(runs: int) -> bool:
    script = Path(sys.executable).with_name("smicast")
    snapshot_cmd = [str(script), "snapshot", "--simulate", "nvidia:8"]
    baseline_cmd = [sys.executable, "-c", "pass"]
    rows: list[tuple[str, Callable[[], tuple[float, float, float]]]] = [
        ("python -c pass", lambda: time_command(baseline_cmd, runs)),
        ("smicast snapshot --simulate nvidia:8", lambda: time_command(snapshot_cmd, runs)),
    ]
    print(f"\ncold start, process start to exit ({runs} runs each, stdout discarded)")
    ok = True
    for name, measure in rows:
        median_ms, best_ms, cpu_ms = measure()
        line = (
            f"  {name:<38} wall median {median_ms:6.1f} ms  min {best_ms:6.1f} ms"
            f"  CPU median {cpu_ms:6.1f} ms"
        )
        if name.startswith("smicast"):
            ok = median_ms < TARGET_COLD_START_MS
            line += f"   target < {TARGET_COLD_START_MS:.0f} ms: {'met' if ok else 'MISSED'}"
        print(line)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--starts", type=int, default=10)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.platform()}"
    )
    results = [
        *(bench_collection(label, args) for label in TARGET_CPU_MS),
        bench_cold_start(args.starts),
    ]
    print("\nall targets met" if all(results) else "\nsome targets MISSED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
