"""The viewer's sources: the local collector on a schedule, a remote agent over /events, the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from smicast.api.state import ApiState
from smicast.collect import Collector
from smicast.include import ALL_SECTIONS, Section
from smicast.record.source_sse import parse_source
from smicast.view.model import SourceEvent, ViewModel
from smicast.view.replay import ReplaySource
from smicast.view.sources import FrameSource, LocalSource, RemoteSource
from tests.api_harness import running
from tests.fakes import FailingReader, StaticReader, make_gpu, make_snapshot


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_local_source_collects_on_a_fixed_schedule_and_keeps_errors() -> None:
    readers = [StaticReader(Section.GPU, [make_gpu()]), FailingReader(Section.CPU)]
    collector = Collector(readers, timeout_s=1, hostname="here")
    clock = FakeClock()
    source = LocalSource(
        collector,
        {Section.GPU, Section.CPU},
        interval_s=2.0,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert isinstance(source, FrameSource) and source.signals_processes

    async def main() -> list[SourceEvent]:
        it = source.events()
        return [await anext(it) for _ in range(3)]

    events = asyncio.run(main())
    assert [e.host for e in events] == ["here"] * 3
    assert clock.now == 54.0  # two intervals between three collections, no drift
    model = ViewModel()
    model.apply(events[-1], now_s=0)
    host = model.hosts["here"]
    assert len(host.gpus) == 1
    assert [(e.section, e.kind) for e in host.errors] == [("cpu", "error")]
    simulated = LocalSource(collector, {Section.GPU}, simulated=True)
    assert not simulated.signals_processes  # simulated pids are not processes here


class CountingCollector(Collector):
    """A real collector that counts its collections."""

    def __init__(self) -> None:
        super().__init__([StaticReader(Section.GPU, [make_gpu()])], timeout_s=1, hostname="here")
        self.calls = 0

    def collect(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().collect(*args, **kwargs)  # type: ignore[arg-type]


def test_local_source_prefetch_collects_before_the_loop_and_yields_that_frame_first() -> None:
    collector = CountingCollector()
    clock = FakeClock()
    source = LocalSource(
        collector, {Section.GPU}, interval_s=1.0, monotonic=clock.monotonic, sleep=clock.sleep
    )
    source.prefetch()  # no event loop yet: the viewer calls it before Textual starts
    source.prefetch()  # a second call does not start a second collection
    deadline = time.monotonic() + 5
    while collector.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert collector.calls == 1

    async def main() -> list[SourceEvent]:
        it = source.events()
        return [await anext(it) for _ in range(2)]

    events = asyncio.run(main())
    assert [e.host for e in events] == ["here", "here"] and events[0].snapshot is not None
    assert collector.calls == 2  # the prefetched frame, then one more: none collected twice
    assert sum(clock.sleeps) == pytest.approx(1.0)  # one interval between the two


def test_remote_source_follows_a_real_agent_and_reports_a_lost_connection() -> None:
    state = ApiState(interval_s=0.5, sections=ALL_SECTIONS, collector=None)  # type: ignore[arg-type]
    with running(state) as server:
        url = parse_source(f"http://127.0.0.1:{server.port}")
        source = RemoteSource(url, ALL_SECTIONS)
        assert not source.signals_processes and source.host == url.label

        async def main() -> list[SourceEvent]:
            it = source.events()
            got: list[SourceEvent] = []
            first = asyncio.ensure_future(anext(it))
            await asyncio.sleep(0.3)  # connected and waiting
            server.publish(make_snapshot(hostname="remote-node"))
            got.append(await asyncio.wait_for(first, 10))
            server.stop()  # the agent goes away: the source says so and keeps trying
            got.append(await asyncio.wait_for(anext(it), 10))
            await it.aclose()
            return got

        events = asyncio.run(main())
    frame, lost = events
    assert frame.snapshot is not None and frame.snapshot.hostname == "remote-node"
    assert lost.snapshot is None and lost.error and url.label in lost.error


def view(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smicast", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_view_options_and_terminals() -> None:
    out = view("view", "--simulate", "nvidia:2")
    assert out.returncode == 1 and "needs a terminal" in out.stderr
    out = view("view", "--speed", "20", "--replay", "x")
    assert out.returncode == 2 and "--speed must be between 0.25 and 8" in out.stderr
    out = view("view", "--host", "ftp://x")
    assert out.returncode == 2 and "--host" in out.stderr
    out = view("view", "--replay", "a", "--host", "http://x")
    assert out.returncode == 2 and "not allowed with" in out.stderr
    out = view()  # bare smicast without a terminal: help, as before
    assert "view" in out.stderr and "usage" in out.stderr

    assert ReplaySource.kind == "replay" and not ReplaySource.signals_processes


def test_a_simulated_fault_reaches_the_errors_panel() -> None:
    from smicast.readers.fault_spec import parse_fault
    from smicast.readers.registry import SimulateSpec, build_readers
    from smicast.view import render

    sections = frozenset({Section.GPU, Section.MEMORY})
    readers = build_readers(
        sections, simulate=SimulateSpec("nvidia", 2), faults=[parse_fault("exception")]
    )
    source = LocalSource(Collector(readers, timeout_s=2, hostname="sim"), sections)

    async def main() -> SourceEvent:
        return await anext(source.events())

    model = ViewModel()
    model.apply(asyncio.run(main()), now_s=0)
    host = model.hosts["sim"]
    assert host.errors and host.errors[0].section == "gpu"
    assert "gpu " in render.events_panel(host, 120).plain
