"""Every `--fault` scenario against `snapshot`, `record` and `api`, all three at once.

Each scenario is active from 0.8 s to 2.0 s after the readers are built. `snapshot`
and `record` run as child processes while an in-process API server on 127.0.0.1
(port 0) collects from the same scenario and a raw client reads its `/events`.
Asserted for each: no collection waits past its timeout (the cadence holds, the
commands take no longer than their schedule), no frame is lost, the `errors`
entries and the self-metrics say what happened, and the section recovers.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smicast.api.state import ApiState
from smicast.collect import Collector
from smicast.include import Section
from smicast.readers.fault_spec import parse_fault
from smicast.readers.faults import CHURN_FAN_RPM, GPU_IS_LOST
from smicast.readers.registry import SimulateSpec, build_readers
from smicast.record.reader import iter_frames
from tests.api_harness import SseReader, raw_request, running

DEVICES = 4
INTERVAL_S = 0.4
TIMEOUT_S = 0.3
WINDOW = "@0.8s+1.2s"  # active 0.8 s .. 2.0 s after the readers are built
RUN_S = 3.2
SECTIONS = frozenset({Section.GPU, Section.MEMORY, Section.PROCESS})
# A hang that leaked past the timeout would cost the rest of the window (0.8 s or more).
LATE_S = 0.5

Frame = dict[str, Any]


def gpu_errors(frame: Frame) -> list[tuple[str, str]]:
    return [(e["kind"], e["message"]) for e in frame.get("errors", []) if e["section"] == "gpu"]


@dataclass(frozen=True)
class Scenario:
    spec: str
    faulty: Callable[[Frame], bool]  # this frame shows the fault
    kind: str | None = None  # the errors entry and the self-metric's kind, if any


def _hung(frame: Frame) -> bool:
    errors = gpu_errors(frame)
    return "gpus" not in frame and bool(errors) and errors[0][0] == "timeout"


def _lost(frame: Frame) -> bool:
    return len(frame.get("gpus", [])) == DEVICES - 1 and any(
        kind == "error" and GPU_IS_LOST in message for kind, message in gpu_errors(frame)
    )


def _no_temperature(frame: Frame) -> bool:
    return bool(frame.get("gpus")) and all(g["temperature"] == 0 for g in frame["gpus"])


def _churning(frame: Frame) -> bool:
    fans = {g["fan_speed_rpm"] for g in frame.get("gpus", [])}
    return len(fans) == 1 and fans <= set(CHURN_FAN_RPM)


def _hidden(frame: Frame) -> bool:
    procs = frame.get("processes", [])
    return bool(procs) and all(p["process_name"] == "" and p["command"] == "" for p in procs)


def _panicked(frame: Frame) -> bool:
    return "gpus" not in frame and any(kind == "panic" for kind, _ in gpu_errors(frame))


SCENARIOS = [
    Scenario("init-hang", _hung, "timeout"),
    Scenario("read-hang", _hung, "timeout"),
    Scenario("gpu-lost:1", _lost, "error"),
    Scenario("unsupported:temperature", _no_temperature),
    Scenario("churn", _churning),
    Scenario("proc-hidden", _hidden),
    Scenario("exception", _panicked, "panic"),
]


def check_frames(frames: list[Frame], scenario: Scenario) -> None:
    """The fault shows while it lasts, only as the scenario says, and clears."""
    flags = [scenario.faulty(f) for f in frames]
    assert any(flags), f"{scenario.spec} never showed"
    assert not flags[-1], f"{scenario.spec} did not clear"
    last = frames[-1]
    assert "errors" not in last and len(last["gpus"]) == DEVICES
    for frame in frames:
        assert frame["memory"], "the other sections keep reporting"
        if scenario.kind is None:
            assert "errors" not in frame
    # One stretch of faulty frames, not scattered ones.
    first = flags.index(True)
    assert not any(flags[first + flags[first:].index(False) :])


def child_env() -> dict[str, str]:
    return {**os.environ, "SMICAST_NO_GPU": "1", "PYTHONUNBUFFERED": "1"}


def start_children(scenario: Scenario, tmp_path: Path) -> tuple[subprocess.Popen[bytes], ...]:
    common = [
        "--simulate", f"nvidia:{DEVICES}", "--fault", scenario.spec + WINDOW,
        "--timeout-ms", str(round(TIMEOUT_S * 1000)), "--include", "gpu,memory,process",
    ]  # fmt: skip
    snapshot = ["snapshot", *common, "--samples", "8", "--interval", str(INTERVAL_S), "--no-pretty"]
    record = [
        "record", *common, "-o", str(tmp_path / "t.ndjson"), "--interval", str(INTERVAL_S),
        "--duration", str(RUN_S),
    ]  # fmt: skip
    return tuple(
        subprocess.Popen(
            [sys.executable, "-m", "smicast", *argv],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for argv in (snapshot, record)
    )


def api_frames(scenario: Scenario) -> tuple[list[Frame], list[int], list[float], str]:
    readers = build_readers(
        SECTIONS,
        simulate=SimulateSpec("nvidia", DEVICES),
        faults=[parse_fault(scenario.spec + WINDOW)],
    )
    collector = Collector(readers, timeout_s=TIMEOUT_S, hostname="node-1")
    state = ApiState(interval_s=INTERVAL_S, sections=SECTIONS, collector=collector)
    with running(state, manual=False) as server:
        sse = SseReader(raw_request(server.port, "/events?include=gpu,memory,process"))
        assert sse.status == 200
        events, arrivals = [], []
        while len(events) < round(RUN_S / INTERVAL_S):
            events += sse.events(1)
            arrivals.append(time.monotonic())
        sse.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        conn.close()
    frames = [json.loads(e["data"]) for e in events]
    return frames, [int(e["id"]) for e in events], arrivals, metrics


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.spec for s in SCENARIOS])
def test_scenario_across_snapshot_record_and_api(scenario: Scenario, tmp_path: Path) -> None:
    began = time.monotonic()
    snapshot, record = start_children(scenario, tmp_path)
    try:
        frames, ids, arrivals, metrics = api_frames(scenario)
    finally:
        snap_out, snap_err = snapshot.communicate(timeout=60)
        _, record_err = record.communicate(timeout=60)

    # api: a frame every interval, none lost, the fault counted by kind, then cleared.
    check_frames(frames, scenario)
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) < INTERVAL_S + LATE_S, gaps
    label = 'smicast_reader_errors_total{reader="simulated-nvidia",section="gpu",kind="%s"}'
    for kind in ("timeout", "error", "panic"):
        assert (label % kind in metrics) == (kind == scenario.kind), (kind, metrics)

    # snapshot: every sample written, none waited past its timeout.
    assert snapshot.returncode == 0, snap_err
    samples = json.loads(snap_out)
    assert len(samples) == 8
    check_frames(samples, scenario)

    # record: the schedule held (no frame lost to a hang), the fault shows, then clears.
    assert record.returncode == 0, record_err
    recorded = [
        json.loads(line)
        for line in (tmp_path / "t.ndjson").read_text().splitlines()
        if '"schema"' in line and '"hostname"' in line and '"timestamp"' in line
    ]
    assert len(recorded) == len(list(iter_frames([tmp_path / "t.ndjson"])))
    assert len(recorded) >= round(RUN_S / INTERVAL_S) - 1
    check_frames(recorded, scenario)

    if scenario.kind == "panic":  # a bug is logged once, with its traceback
        assert snap_err.count(b"Traceback") == 1, snap_err
        assert record_err.count(b"Traceback") == 1, record_err
    # Both children finished on their schedule: nothing waited for a hang.
    assert time.monotonic() - began < 15
