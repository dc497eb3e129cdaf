"""A real Prometheus sees the energy counter rise for every GPU and survive an agent restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.support import (
    SmicastServer,
    free_port,
    http_get,
    require_tool,
    running,
    smicast_server,
    wait_until,
)
from tests.integration.test_prometheus_server import CONFIG, Prometheus
from tests.integration.test_promtool import check_metrics

pytestmark = pytest.mark.integration

GPUS = 8
ENERGY = 'all_smi_energy_consumed_joules_total{scope="gpu"}'
TIMEOUT_S = 30


def per_gpu(prometheus: Prometheus, promql: str) -> dict[str, float]:
    try:
        found = prometheus.query(promql)
    except (OSError, AssertionError):
        return {}  # not listening or not ready yet
    return {s["metric"]["gpu_uuid"]: float(s["value"][1]) for s in found}


def test_energy_counter_rises_and_survives_a_restart(tmp_path: Path) -> None:
    binary = require_tool("prometheus")
    port = free_port()
    args = ("--simulate", f"nvidia:{GPUS}", "--state-dir", str(tmp_path / "state"))
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(port=port))
    web = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{web}",
        "--log.level=warn",
    ]
    with running(argv, tmp_path / "prometheus.log"):
        prometheus = Prometheus(f"http://127.0.0.1:{web}", tmp_path / "prometheus.log")

        first = tmp_path / "first"
        first.mkdir()
        with smicast_server(first, *args, port=port):
            rising = wait_until(
                lambda: (
                    got
                    if len(got := per_gpu(prometheus, f"increase({ENERGY}[1m]) > 0")) == GPUS
                    else None
                ),
                TIMEOUT_S,
                f"increase({ENERGY}[1m]) > 0 for {GPUS} GPUs",
                prometheus.log_path,
                interval_s=0.25,
            )
            assert all(v > 0 for v in rising.values())
            before = per_gpu(prometheus, ENERGY)
        stopped_at = time.time()

        second = tmp_path / "second"
        second.mkdir()
        with smicast_server(second, *args, port=port):
            wait_until(
                lambda: (
                    True
                    if len(fresh := per_gpu(prometheus, f"timestamp({ENERGY})")) == GPUS
                    and min(fresh.values()) > stopped_at
                    else None
                ),
                TIMEOUT_S,
                "the restarted agent's counters in Prometheus",
                prometheus.log_path,
                interval_s=0.25,
            )
            after = per_gpu(prometheus, ENERGY)
            resets = per_gpu(prometheus, f"resets({ENERGY}[5m])")

    assert set(after) == set(before)
    assert all(after[uuid] >= before[uuid] for uuid in before), (before, after)
    assert resets == dict.fromkeys(before, 0.0)


def test_energy_family_passes_promtool(smicast: SmicastServer) -> None:
    require_tool("promtool")
    wait_until(
        lambda: True if b"\nall_smi_energy" in http_get(f"{smicast.url}/metrics").body else None,
        TIMEOUT_S,
        "energy counters on /metrics",
    )
    body = check_metrics(smicast.url)
    assert body.count(b'\nall_smi_energy_consumed_joules_total{host="') >= GPUS + 1
    assert b"# TYPE all_smi_energy_consumed_joules_total counter\n" in body
