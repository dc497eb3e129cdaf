"""Every `--fault` scenario against `snapshot`, `record` and `api`, all three at once.

Each scenario is active from 0.8 s to 2.4 s after the readers are built. `snapshot`
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
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
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
from smicast.schema import Snapshot
from tests.api_harness import SseReader, raw_request, running

DEVICES = 4
INTERVAL_S = 0.4
TIMEOUT_S = 0.3
WINDOW = "@0.8s+1.6s"  # active 0.8 s .. 2.4 s after the readers are built
RUN_S = 3.6
FRAMES = round(RUN_S / INTERVAL_S)
SECTIONS = frozenset({Section.GPU, Section.MEMORY, Section.PROCESS})
# A hang that leaked past the timeout would hold a collection to the end of the window,
# 1.2 s or more; on a loaded machine an honest one can still run late by some tenths.
LATE_S = 0.7

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
    after = frames[len(flags) - flags[::-1].index(True) :]
    assert any("errors" not in f and len(f["gpus"]) == DEVICES for f in after), "no recovery"
    for frame in frames:
        assert frame["memory"], "the other sections keep reporting"
        if scenario.kind is None:
            assert "errors" not in frame


def child_env() -> dict[str, str]:
    return {**os.environ, "SMICAST_NO_GPU": "1", "PYTHONUNBUFFERED": "1"}


def start_children(scenario: Scenario, tmp_path: Path) -> tuple[subprocess.Popen[bytes], ...]:
    common = [
        "--simulate", f"nvidia:{DEVICES}", "--fault", scenario.spec + WINDOW,
        "--timeout-ms", str(round(TIMEOUT_S * 1000)), "--include", "gpu,memory,process",
    ]  # fmt: skip
    snapshot = [
        "snapshot", *common, "--samples", str(FRAMES), "--interval", str(INTERVAL_S), "--no-pretty"
    ]  # fmt: skip
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


@dataclass
class ApiRun:
    frames: list[Frame]
    ids: list[int]
    arrivals_s: list[float]  # when each frame reached the client
    collect_s: list[float]  # how long each collection took
    metrics: str


def api_run(scenario: Scenario) -> ApiRun:
    readers = build_readers(
        SECTIONS,
        simulate=SimulateSpec("nvidia", DEVICES),
        faults=[parse_fault(scenario.spec + WINDOW)],
    )
    collector = Collector(readers, timeout_s=TIMEOUT_S, hostname="node-1")
    collect_s: list[float] = []
    collect = collector.collect

    def timed(sections: Iterable[Section]) -> Snapshot:
        began = time.monotonic()
        try:
            return collect(sections)
        finally:
            collect_s.append(time.monotonic() - began)

    collector.collect = timed  # type: ignore[method-assign]
    state = ApiState(interval_s=INTERVAL_S, sections=SECTIONS, collector=collector)
    with running(state, manual=False) as server:
        sse = SseReader(raw_request(server.port, "/events?include=gpu,memory,process"))
        assert sse.status == 200
        events, arrivals = [], []
        while len(events) < FRAMES:
            events += sse.events(1)
            arrivals.append(time.monotonic())
        sse.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        conn.close()
    frames = [json.loads(e["data"]) for e in events]
    return ApiRun(frames, [int(e["id"]) for e in events], arrivals, collect_s, metrics)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.spec for s in SCENARIOS])
def test_scenario_across_snapshot_record_and_api(scenario: Scenario, tmp_path: Path) -> None:
    began = time.monotonic()
    snapshot, record = start_children(scenario, tmp_path)
    try:
        api = api_run(scenario)
    finally:
        snap_out, snap_err = snapshot.communicate(timeout=60)
        _, record_err = record.communicate(timeout=60)

    # api: no collection waited past its timeout, a frame every interval, none lost, the
    # fault counted by kind, then cleared.
    assert max(api.collect_s) < TIMEOUT_S + LATE_S, api.collect_s
    gaps = [b - a for a, b in itertools.pairwise(api.arrivals_s)]
    assert 0.5 * INTERVAL_S < statistics.median(gaps) < 1.5 * INTERVAL_S, gaps
    assert api.ids == list(range(api.ids[0], api.ids[0] + FRAMES))
    check_frames(api.frames, scenario)
    label = 'smicast_reader_errors_total{reader="simulated-nvidia",section="gpu",kind="%s"}'
    for kind in ("timeout", "error", "panic"):
        assert (label % kind in api.metrics) == (kind == scenario.kind), (kind, api.metrics)

    # snapshot: every sample written, none waited past its timeout.
    assert snapshot.returncode == 0, snap_err
    samples = json.loads(snap_out)
    assert len(samples) == FRAMES
    check_frames(samples, scenario)

    # record: the schedule held (no frame lost to a hang), the fault shows, then clears.
    assert record.returncode == 0, record_err
    recorded = [
        json.loads(line)
        for line in (tmp_path / "t.ndjson").read_text().splitlines()
        if '"schema"' in line and '"hostname"' in line and '"timestamp"' in line
    ]
    assert len(recorded) == len(list(iter_frames([tmp_path / "t.ndjson"])))
    # A leaked hang would cost three ticks or more; a loaded machine may skip one or two.
    assert len(recorded) >= FRAMES - 2
    check_frames(recorded, scenario)

    if scenario.kind == "panic":  # a bug is logged once, with its traceback
        assert snap_err.count(b"Traceback") == 1, snap_err
        assert record_err.count(b"Traceback") == 1, record_err
    # Both children finished on their schedule, not after a hang.
    assert time.monotonic() - began < 30
