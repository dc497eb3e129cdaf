"""The fleet tabs: a live fleet of real agents through the app's Pilot, and a replayed fleet trace."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from smicast.encode import snapshot_json
from smicast.fleet.client import ClientOptions
from smicast.fleet.hosts import parse_host
from smicast.fleet.link import HostLink, HostState, Transport
from smicast.fleet.source import FleetSource
from smicast.fleet.trace import fleet_frame
from smicast.include import Section
from smicast.record.format import header_line
from smicast.view.alerts import Level
from smicast.view.fleet_app import FleetApp, make_app
from smicast.view.fleet_render import cluster_panel, host_table
from smicast.view.fleet_sources import FleetReplaySource, is_fleet_trace
from smicast.view.fleet_summary import FleetView, HostRow
from smicast.view.model import SourceEvent, ViewModel
from smicast.view.replay import Trace
from tests.fleet_harness import Agent, AppAgent, metrics_only_app
from tests.view_support import T0, simulated_frames

FAST = ClientOptions(poll_interval_s=1.0, min_backoff_s=0.05, max_backoff_s=0.3)


def text_of(renderable: object, width: int = 160) -> str:
    console = Console(width=width, color_system=None)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get()


def test_live_fleet_tabs_filter_and_host_tab() -> None:
    agents = [Agent(f"node-{i}", interval_s=1.0).start() for i in range(2)]
    legacy = AppAgent(metrics_only_app())
    try:
        hosts = [parse_host(a.url) for a in agents] + [parse_host(legacy.url)]
        source = FleetSource(hosts, FAST)
        model = ViewModel()
        app = make_app(model, source, theme="textual-dark")
        assert isinstance(app, FleetApp)

        async def drive() -> None:
            async with app.run_test(size=(160, 50)) as pilot:
                for _ in range(100):
                    await pilot.pause(0.1)
                    if len(model.hosts) == 3 and all(h.frames >= 2 for h in model):
                        break
                assert app.first_frame_at is not None  # a pushed (lazy) frame counts
                cluster = text_of(app.query_one("#cluster").render())
                assert "3 hosts" in cluster and "live 3" in cluster
                assert "6 GPUs" in cluster  # two per agent, two in the all-smi exposition
                for label, via in ((agents[0].url, "sse"), (legacy.url, "metrics")):
                    line = next(ln for ln in cluster.splitlines() if label in ln)
                    assert via in line
                users = text_of(app.query_one("#users").render())
                assert "USER" in users and "no GPU processes" not in users
                await pilot.press("f", *"e-1", "enter")  # host names node-0, node-1, node-m
                await pilot.pause(0.2)
                cluster = text_of(app.query_one("#cluster").render())
                assert "1 hosts" in cluster and agents[1].url in cluster
                assert agents[0].url not in cluster
                await pilot.press("n")
                await pilot.pause(0.2)
                host = app.host()
                assert host is not None and host.hostname == "node-1"
                # The host tab reads the whole frame, built from the pushed bytes on demand.
                assert host.snapshot is not None and host.snapshot.processes
                gpus = text_of(app.query_one("#gpus").render())
                assert host.gpu_list()[0].info.name in gpus
                await pilot.press("q")

        asyncio.run(drive())
    finally:
        for agent in agents:
            agent.stop()
        legacy.stop()


def test_a_recorded_fleet_replays_as_a_fleet(tmp_path: Path) -> None:
    a = simulated_frames(4, 3, hostname="node-a")
    b = simulated_frames(2, 3, hostname="node-b")
    sections = frozenset({Section.GPU, Section.CPU, Section.MEMORY, Section.PROCESS})
    path = tmp_path / "fleet.ndjson"
    lines = [header_line(["a:9090", "b:9090"], 1000)]
    for i in range(3):
        frame = fleet_frame({"a:9090": a[i], "b:9090": b[i]}, sections, T0 + i)
        lines.append(snapshot_json(frame) + b"\n")
    path.write_bytes(b"".join(lines))
    trace = Trace([path])
    assert is_fleet_trace(trace)
    source = FleetReplaySource(trace, speed=8.0)
    model = ViewModel()

    async def play() -> None:
        events = source.events()
        for _ in range(6):
            event = await anext(events)
            model.apply(event, T0)
        await events.aclose()  # type: ignore[attr-defined]

    asyncio.run(play())
    assert [h.key for h in model] == ["a:9090", "b:9090"]
    assert [len(h.gpus) for h in model] == [4, 2]
    assert {h.hostname for h in model} == {"node-a", "node-b"}
    fleet = FleetView(model)
    shown = text_of(cluster_panel(fleet, 0.0, T0 + 3, 160, 40))
    assert "2 hosts" in shown and "6 GPUs" in shown and "replay" in shown


def test_a_host_row_follows_its_link_and_frames() -> None:
    spec = parse_host("node-a:9090")
    link = HostLink(spec)
    model = ViewModel()
    fleet = FleetView(model, {spec.label: link})
    frames = simulated_frames(2, 2, hostname="node-a")
    model.apply(SourceEvent(spec.label, frames[0]), now_s=T0)
    host = model.hosts[spec.label]
    first = fleet.row(host, 0.0, T0)
    assert (first.state, first.transport, first.error, first.gpus) == ("connecting", "-", None, 2)
    assert fleet.row(host, 0.0, T0) is first  # nothing changed: the same row
    link.transport = Transport.SSE
    link.frame(1.0)
    live = fleet.row(host, 1.0, T0)
    assert (live.state, live.transport) == ("live", "sse") and live.util_pct == first.util_pct
    link.fail("connection refused", HostState.OFFLINE)
    down = fleet.row(host, 1.5, T0)
    assert (down.state, down.error) == ("offline", "connection refused")
    link.frame(2.0)
    model.apply(SourceEvent(spec.label, frames[1]), now_s=T0 + 1)
    back = fleet.row(host, 2.0, T0 + 1)
    assert (back.state, back.error) == ("live", None)
    gpus = host.gpu_list()
    assert back.mem_used == sum(g.info.used_memory for g in gpus)


def test_the_host_table_paints_rows_inert_styled_and_cut_to_the_width() -> None:
    def row(key: str, state: str, error: str | None = None, alert: Level = Level.OK) -> HostRow:
        return HostRow(
            key=key, hostname=key, state=state, transport="sse", gpus=8, util_pct=95.0,
            mem_used=1 << 30, mem_total=2 << 30, power_w=300.0, alert=alert, error=error,
        )  # fmt: skip

    rows = [
        row("node-live", "live"),
        row("[bold]x[/bold]\x1b[31m", "offline", error="connection refused", alert=Level.CRIT),
        row("node-extra", "live"),
    ]
    table = host_table(rows, 200, 2)
    plain = text_of(table, width=200).splitlines()
    assert plain[0].split() == ["HOST", "STATE", "VIA", "GPUs", "UTIL", "MEMORY", "POWER"]
    down = next(ln for ln in plain if "offline" in ln)  # needs attention: listed first
    assert plain.index(down) == 1
    assert "[bold]x[/bold]" in down and "\x1b" not in down  # markup and escapes stay text
    assert down.rstrip().endswith("crit  connection refused")
    assert plain[-1] == "… 1 more hosts (f filters by name)"
    console = Console(width=200, color_system="truecolor")
    segments = list(console.render(table))
    assert console.get_style("bold red") in {
        s.style for s in segments if s.text.startswith("offline")
    }
    assert console.get_style("dim red") in {s.style for s in segments if "refused" in s.text}
    narrow = text_of(host_table(rows, 200, 5), width=60).splitlines()
    assert all(len(ln) <= 60 for ln in narrow) and narrow[1].endswith("…")
