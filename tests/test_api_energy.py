"""The energy counter through the API: `/metrics`, `/energy`, and `smicast api` restarts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from smicast.api.state import ApiState
from smicast.energy.account import EnergyAccount
from smicast.energy.store import STATE_FILE, EnergyStore
from smicast.include import Section
from tests.api_harness import running
from tests.fakes import make_gpu, make_snapshot
from tests.test_api_http import FakeClock, get
from tests.test_api_process import free_port, reap

ALL = frozenset(Section)
ENERGY_LINE = re.compile(r"^all_smi_energy_consumed_joules_total\{(.*)\} (\d+\.\d{3})$", re.M)


def energy_state(tmp_path: Path, clock: FakeClock) -> ApiState:
    account = EnergyAccount(EnergyStore(tmp_path, "mockhost"), spawn=lambda work: work())
    return ApiState(interval_s=1.0, sections=ALL, collector=None, monotonic=clock, energy=account)


def two_gpus(watts: float) -> object:
    return make_snapshot(
        gpus=[
            make_gpu("A100", power_consumption=watts),
            make_gpu("H100", power_consumption=watts / 2),
        ]
    )


def test_metrics_carry_the_counter_last_among_all_smi_families(tmp_path: Path) -> None:
    clock = FakeClock()
    with running(energy_state(tmp_path, clock)) as server:
        server.publish(two_gpus(300.0))  # type: ignore[arg-type]
        status, _, body = get(server.port, "/metrics")
        assert "all_smi_energy" not in body.decode()  # one reading: no energy yet
        clock.now += 2.0
        server.publish(two_gpus(300.0))  # type: ignore[arg-type]
        status, _, body = get(server.port, "/metrics")
    text = body.decode()
    assert status == 200
    assert ENERGY_LINE.findall(text) == [
        ('host="mockhost", scope="gpu", gpu_index="0", gpu_uuid="GPU-A100-UUID"', "600.000"),
        ('host="mockhost", scope="gpu", gpu_index="1", gpu_uuid="GPU-H100-UUID"', "300.000"),
        ('host="mockhost", scope="cpu"', "130.000"),
    ]
    families = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    all_smi = [name for name, _ in families if name.startswith("all_smi_")]
    assert all_smi[-1] == "all_smi_energy_consumed_joules_total"
    assert ("all_smi_energy_consumed_joules_total", "counter") in families
    assert text.index("all_smi_energy") < text.index("smicast_")


def test_energy_route_for_the_dashboard(tmp_path: Path) -> None:
    clock = FakeClock()
    with running(energy_state(tmp_path, clock)) as server:
        for _ in range(3):
            server.publish(two_gpus(3600.0))  # type: ignore[arg-type]
            clock.now += 1.0
        status, headers, body = get(server.port, "/energy")
        head_status, _, head_body = get(server.port, "/energy", method="HEAD")
    assert status == head_status == 200 and head_body == b""
    assert headers["content-type"].startswith("application/json")
    assert headers["cache-control"] == "no-store"
    report = json.loads(body)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["since"])
    gpu0 = report["devices"][0]
    assert gpu0 == {
        "scope": "gpu",
        "host": "mockhost",
        "gpu_index": 0,
        "gpu_uuid": "GPU-A100-UUID",
        "session_kwh": 0.002,
        "total_kwh": 0.002,
        "measured": False,
    }


def test_no_energy_while_serving_a_recording() -> None:
    state = ApiState(interval_s=1.0, sections=ALL, collector=None)
    with running(state) as server:
        server.publish(two_gpus(300.0))  # type: ignore[arg-type]
        server.publish(two_gpus(300.0))  # type: ignore[arg-type]
        status, _, report = get(server.port, "/energy")
        _, _, body = get(server.port, "/metrics")
    assert status == 200 and json.loads(report) == {"since": None, "devices": []}
    assert b"all_smi_energy" not in body


def api_process(state_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SMICAST_STATE_DIR": str(state_dir / "unused")}
    argv = ["--port", str(port), "--bind", "127.0.0.1", "--simulate", "nvidia:2"]
    argv += ["--interval", "0.2", "--state-dir", str(state_dir)]
    return subprocess.Popen(
        [sys.executable, "-m", "smicast", "api", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def gpu_totals(
    proc: subprocess.Popen[str], port: int, deadline_s: float = 30.0
) -> dict[str, float]:
    """The GPU counters once both simulated GPUs have one."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            _, _, body = get(port, "/metrics")
        except OSError:
            body = b""
        found = {
            re.search(r'gpu_uuid="([^"]+)"', labels).group(1): float(value)  # type: ignore[union-attr]
            for labels, value in ENERGY_LINE.findall(body.decode())
            if 'scope="gpu"' in labels
        }
        if len(found) == 2:
            return found
        time.sleep(0.1)
    proc.kill()
    _, stderr = proc.communicate(timeout=10)
    raise AssertionError(f"no energy counters in time; exit {proc.returncode}:\n{stderr[-3000:]}")


def test_counter_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    proc = api_process(tmp_path, port)
    try:
        before = gpu_totals(proc, port)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        reap(proc)
    saved = tmp_path / STATE_FILE
    assert saved.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "unused").exists()  # --state-dir wins over SMICAST_STATE_DIR
    at_exit = {
        c["uuid"]: c["joules"] for c in json.loads(saved.read_text())["counters"] if c["uuid"]
    }
    assert all(at_exit[uuid] >= before[uuid] for uuid in before)

    proc = api_process(tmp_path, port)
    try:
        after = gpu_totals(proc, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        reap(proc)
    assert all(after[uuid] >= at_exit[uuid] for uuid in before), (at_exit, after)
