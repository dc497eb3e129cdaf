"""/metrics text back into a Snapshot: an all-smi exposition, and smicast's own round trip."""

from __future__ import annotations

from smicast.fleet.metrics_text import MAX_DEVICES, parse_metrics
from smicast.prometheus import render_metrics
from tests.fakes import make_cpu, make_gpu, make_memory, make_process, make_snapshot
from tests.fleet_harness import DATA

NOW = 1_780_000_000.0


def test_all_smi_exposition() -> None:
    snap = parse_metrics((DATA / "all-smi-metrics.prom").read_text(), "node-m:9090", NOW)
    assert snap.hostname == "node-m"
    assert snap.gpus is not None and len(snap.gpus) == 2  # type: ignore[arg-type]
    gpu = snap.gpus[0]  # type: ignore[index]
    assert gpu.host_id == "node-m:9090" and gpu.instance == "node-m"
    assert gpu.name.startswith("NVIDIA") and gpu.uuid.startswith("GPU-")
    assert gpu.total_memory > gpu.used_memory > 0 and gpu.temperature > 0
    assert gpu.detail.get("driver_version")
    assert snap.cpus and snap.memory and snap.chassis and snap.processes
    assert all(p.user for p in snap.processes)  # type: ignore[union-attr]


def test_round_trip_of_what_a_view_shows() -> None:
    original = make_snapshot(
        hostname="n1",
        gpus=[make_gpu("A", uuid="GPU-a"), make_gpu("B", uuid="GPU-b", utilization=12.5)],
        cpus=[make_cpu()],
        memory=[make_memory()],
        processes=[make_process(user='we"ird\\user', device_uuid="GPU-b")],
    )
    snap = parse_metrics(render_metrics(original, ready=True), "n1:9090", NOW)
    for before, after in zip(original.gpus, snap.gpus, strict=True):  # type: ignore[arg-type]
        assert (after.uuid, after.name, after.utilization) == (
            before.uuid,
            before.name,
            before.utilization,
        )
        assert (after.used_memory, after.total_memory, after.temperature) == (
            before.used_memory,
            before.total_memory,
            before.temperature,
        )
        assert after.power_consumption == before.power_consumption
    assert snap.processes[0].user == 'we"ird\\user'  # type: ignore[index]
    assert snap.memory[0].total_bytes == original.memory[0].total_bytes  # type: ignore[index]


def test_bounded_and_tolerant() -> None:
    lines = [
        f'all_smi_gpu_utilization{{gpu="g", instance="h", gpu_uuid="u{i}", gpu_index="{i}"}} 1'
        for i in range(MAX_DEVICES + 50)
    ]
    lines += ["all_smi_gpu_utilization{broken 1", "garbage", 'all_smi_up{instance="h"} NaN']
    snap = parse_metrics("\n".join(lines), "h:1", NOW)
    assert len(snap.gpus) == MAX_DEVICES  # type: ignore[arg-type]
