"""How long one frame takes to encode: msgspec (what smicast uses) against orjson and json.

Prints figures, asserts nothing. Each encoder gets the same realistic snapshot
(8 GPUs with `detail`, their processes, a 2-socket CPU with per-core readings,
memory, chassis with fans, storage) and must give the wire rules: keys sorted,
compact, raw UTF-8, NaN as null. The Prometheus and CSV renderers are timed on
the same snapshot.

    .venv/bin/python bench/encode.py [--runs 7] [--iterations 2000]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from smicast.csvout import render_csv
from smicast.encode import snapshot_json
from smicast.include import Section
from smicast.prometheus import render_metrics
from smicast.schema import (
    ChassisInfo,
    CoreUtilization,
    CpuInfo,
    CpuSocketInfo,
    FanInfo,
    GpmMetrics,
    GpuInfo,
    MemoryInfo,
    NvLinkRemoteDevice,
    ProcessInfo,
    Snapshot,
    StorageInfo,
)

HOST = "bench-node"
NOW = "2026-04-20 12:00:00"
GIB = 1 << 30


def _hand_built_gpus() -> tuple[list[GpuInfo], list[ProcessInfo]]:
    detail = {
        "Driver Version": "550.54.15",
        "CUDA Version": "12.4",
        "lib_name": "CUDA",
        "lib_version": "12.4",
        "Brand": "Nvidia",
        "architecture": "Hopper",
        "pcie_gen_current": "5",
        "pcie_width_current": "16",
        "clock_graphics_max": "1980",
        "clock_memory_max": "2619",
        "power_limit_current": "700",
        "power_limit_max": "700",
        "performance_state": "P0",
        "Memory Type": "HBM3",
    }
    gpus = [
        GpuInfo(
            uuid=f"GPU-{i:08x}-aaaa-bbbb-cccc-ddddeeeeffff",
            time=NOW,
            name="NVIDIA H100 80GB HBM3",
            device_type="GPU",
            host_id=HOST,
            hostname=HOST,
            instance=HOST,
            utilization=11.5 * i,
            temperature=40 + i,
            used_memory=(i + 1) * GIB,
            total_memory=80 * GIB,
            frequency=1980,
            power_consumption=120.5 + i,
            temperature_threshold_slowdown=90,
            temperature_threshold_shutdown=95,
            performance_state=0,
            numa_node_id=i // 4,
            gsp_firmware_version="550.54.15",
            nvlink_remote_devices=[NvLinkRemoteDevice(link_index=0, remote_type="switch")],
            gpm_metrics=GpmMetrics(sm_occupancy=0.5, memory_bandwidth_utilization=0.25),
            detail=detail,
        )
        for i in range(8)
    ]
    processes = [
        ProcessInfo(
            device_id=i % 8,
            device_uuid=gpus[i % 8].uuid,
            pid=10_000 + i,
            process_name="python3",
            used_memory=(i + 1) * GIB,
            cpu_percent=99.5,
            memory_percent=1.25,
            memory_rss=4 * GIB,
            memory_vms=64 * GIB,
            user="alice",
            state="R",
            start_time="1776686400",
            cpu_time=3600 + i,
            command=f"python3 train.py --config configs/llama-70b.yaml --rank {i}",
            ppid=1,
            threads=48,
            uses_gpu=True,
            priority=20,
            nice_value=0,
            gpu_utilization=80.0,
        )
        for i in range(24)
    ]
    return gpus, processes


def _gpus() -> tuple[list[GpuInfo], list[ProcessInfo], str]:
    """The simulated reader's 8 GPUs when it is importable, topped up to 24 processes."""
    extra_gpus, extra_processes = _hand_built_gpus()
    try:
        from smicast.readers.simulated import SimulatedReader

        reader = SimulatedReader("nvidia", 8, seed=7, hostname=HOST, clock=lambda: 1_776_686_400.0)
        gpus = list(reader.read())
        processes = [p.info for p in reader.read_processes() if p.info is not None]
        source = "SimulatedReader('nvidia', 8)"
    except Exception as exc:  # the simulated reader is optional here
        gpus, processes = extra_gpus, []
        source = f"hand-built (simulated reader unavailable: {exc!r})"
    for proc in extra_processes[: max(0, 24 - len(processes))]:
        device = gpus[proc.device_id % len(gpus)]
        processes.append(msgspec.structs.replace(proc, device_uuid=device.uuid))
    return gpus, processes, source  # type: ignore[return-value]


def realistic_snapshot(*, with_nan: bool = False) -> tuple[Snapshot, str]:
    gpus, processes, source = _gpus()
    if with_nan:
        gpus[0] = msgspec.structs.replace(gpus[0], utilization=math.nan, power_consumption=math.inf)
    cpu = CpuInfo(
        host_id=HOST,
        hostname=HOST,
        instance=HOST,
        cpu_model="AMD EPYC 9654 96-Core Processor",
        architecture="x86_64",
        platform_type="Amd",
        socket_count=2,
        total_cores=192,
        total_threads=384,
        base_frequency_mhz=2400,
        max_frequency_mhz=3700,
        cache_size_mb=384,
        utilization=37.5,
        temperature=55,
        power_consumption=360.0,
        per_socket_info=[
            CpuSocketInfo(socket_id=s, utilization=30.0 + s, cores=96, threads=192, temperature=54)
            for s in range(2)
        ],
        per_core_utilization=[
            CoreUtilization(core_id=c, utilization=float((c * 37) % 100)) for c in range(192)
        ],
        time=NOW,
    )
    memory = MemoryInfo(
        host_id=HOST,
        hostname=HOST,
        instance=HOST,
        total_bytes=2048 * GIB,
        used_bytes=512 * GIB,
        available_bytes=1536 * GIB,
        free_bytes=1200 * GIB,
        buffers_bytes=2 * GIB,
        cached_bytes=300 * GIB,
        swap_total_bytes=8 * GIB,
        swap_used_bytes=0,
        swap_free_bytes=8 * GIB,
        utilization=25.0,
        time=NOW,
    )
    chassis = ChassisInfo(
        host_id=HOST,
        hostname=HOST,
        instance=HOST,
        total_power_watts=4200.0,
        inlet_temperature=22.0,
        outlet_temperature=41.0,
        fan_speeds=[FanInfo(id=i, name=f"FAN{i}", speed_rpm=9000, max_rpm=16000) for i in range(8)],
        detail={"Product Name": "DGX H100", "Vendor": "NVIDIA", "platform": "Linux"},
        time=NOW,
    )
    storage = [
        StorageInfo(
            mount_point=m,
            total_bytes=30 << 40,
            available_bytes=12 << 40,
            host_id=HOST,
            hostname=HOST,
            index=i,
        )
        for i, m in enumerate(["/", "/raid", "/home"])
    ]
    snapshot = Snapshot(
        timestamp="2026-04-20T12:00:00Z",
        hostname=HOST,
        gpus=gpus,
        cpus=[cpu],
        memory=[memory],
        chassis=[chassis],
        processes=processes,
        storage=storage,
    )
    return snapshot, source


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def encode_msgspec(snapshot: Snapshot) -> bytes:
    return snapshot_json(snapshot)


def encode_orjson(snapshot: Snapshot) -> bytes:
    # orjson does not know msgspec Structs: they go through builtins first.
    return orjson.dumps(msgspec.to_builtins(snapshot), option=orjson.OPT_SORT_KEYS)


def encode_json(snapshot: Snapshot) -> bytes:
    # json writes NaN as the invalid token `NaN`; allow_nan=False would raise instead.
    data = _nan_to_none(msgspec.to_builtins(snapshot))
    text = json.dumps(
        data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return text.encode("utf-8")


def time_us(fn: Callable[[], object], runs: int, iterations: int) -> list[float]:
    """Per-call microseconds for every call of every run (after one warm-up run)."""
    for _ in range(min(iterations, 200)):
        fn()
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        for _ in range(iterations):
            start = clock()
            fn()
            samples.append((clock() - start) / 1000)
    return samples


def pct(sorted_values: list[float], p: float) -> float:
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def report(name: str, samples: list[float], size: int) -> None:
    data = sorted(samples)
    print(
        f"  {name:<34} median {statistics.median(data):8.1f} us   p99 {pct(data, 99):8.1f} us"
        f"   ({size:,} bytes)"
    )


def _strict_loads(data: bytes) -> Any:
    def reject(token: str) -> Any:
        raise ValueError(f"non-JSON token {token}")

    return json.loads(data, parse_constant=reject)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args(argv)

    snapshot, source = realistic_snapshot()
    with_nan, _ = realistic_snapshot(with_nan=True)
    n_gpus = len(snapshot.gpus or [])
    n_procs = len(snapshot.processes or [])
    print(
        f"python {sys.version.split()[0]}, msgspec {msgspec.__version__}, orjson {orjson.__version__}"
    )
    print(f"snapshot: {n_gpus} GPUs from {source}, {n_procs} processes, cpu (192 cores), memory,")
    print("          chassis (8 fans), 3 disks")
    print(f"timing: {args.runs} runs x {args.iterations} calls, per call\n")

    encoders = {
        "msgspec (smicast.encode)": encode_msgspec,
        "orjson OPT_SORT_KEYS (+to_builtins)": encode_orjson,
        "json.dumps sort_keys (+sanitize)": encode_json,
    }
    reference = encode_msgspec(snapshot)
    print("JSON encode of one Snapshot")
    for name, encode in encoders.items():
        out = encode(snapshot)
        report(name, time_us(lambda e=encode: e(snapshot), args.runs, args.iterations), len(out))
    builtins = msgspec.to_builtins(snapshot)
    dumps_only = time_us(
        lambda: orjson.dumps(builtins, option=orjson.OPT_SORT_KEYS), args.runs, args.iterations
    )
    report("orjson dumps only (dict ready)", dumps_only, len(reference))
    to_builtins = time_us(lambda: msgspec.to_builtins(snapshot), args.runs, args.iterations)
    report("msgspec.to_builtins only", to_builtins, 0)

    print("\nwire rules (NaN/Inf in gpus[0]; sorted keys; same bytes as msgspec?)")
    for name, encode in encoders.items():
        data = encode(with_nan)
        parsed = _strict_loads(data)
        nan_ok = parsed["gpus"][0]["utilization"] is None
        inf_ok = parsed["gpus"][0]["power_consumption"] is None
        same = encode(snapshot) == reference
        print(
            f"  {name:<34} NaN->null {nan_ok!s:<5} Inf->null {inf_ok!s:<5} "
            f"identical bytes {same!s:<5}"
        )
    sample = {"big": 1e21, "tiny": 1e-7}
    print(
        f"  float text: msgspec {msgspec.json.encode(sample).decode()}  "
        f"orjson {orjson.dumps(sample).decode()}  "
        f"json {json.dumps(sample, separators=(',', ':'))}  (all-smi's serde_json: 1e21, 1e-7)"
    )

    print("\nother renderers on the same snapshot")
    text = render_metrics(snapshot)
    report(
        "Prometheus render_metrics",
        time_us(lambda: render_metrics(snapshot), args.runs, args.iterations),
        len(text.encode()),
    )
    sections = list(Section)
    csv_text = render_csv([snapshot], sections)
    report(
        "CSV render_csv (all sections)",
        time_us(lambda: render_csv([snapshot], sections), args.runs, args.iterations // 4 or 1),
        len(csv_text.encode()),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
