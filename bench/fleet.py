"""Fleet viewer benchmark: N simulated agents, the viewer over /events and over /metrics.

    python bench/fleet.py [--fleets 256x1,1000x3] [--gpus 8] [--window 20] [--runs 3]
                          [--no-render] [--no-metrics]

For each fleet HOSTSxINTERVAL, a child process serves HOSTS agents, each a real
`smicast api` server (the same Server, frame bus and SSE code) on its own 127.0.0.1
port with its own host name, publishing simulated NVIDIA GPUs and their processes
every INTERVAL seconds (starts staggered over one interval). Each frame's
`timestamp` carries the publish time to the microsecond.

This process is the viewer, on the event loop `smicast view` runs (uvloop where it is
installed): the fleet source (one client per host) feeding the view model, and, unless
--no-render, the cluster tab rendered to a string at most twice a second when something
changed, as the fleet app does. It prints:

- first complete view: seconds from the viewer's start until every host has a frame;
- viewer CPU: this process's CPU time over --window seconds of steady state, as % of
  one core, and per host-update (a frame received and applied);
- frame to screen p99: from an agent publishing a frame to the render that shows it, and
  (in viewer) from the viewer applying it to that render;
- frames received vs sent in the window (sent counted by the agents), and lost (seq gaps
  and `lag` events);
- kill/restart (first fleet only): host 0's server is stopped: seconds until its tile is
  offline; then started again on the same port: frames the new process sent vs received.

Then the same fleet is watched by polling /metrics at the same interval (all-smi's
method: fetch, parse the exposition into the same model) for the CPU comparison.
Each figure is the median of --runs runs. Agents and viewer share this machine's cores,
so the viewer's own CPU time is what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from bench._common import percentile, raise_nofile  # noqa: E402

# -- the agents (child process) ----------------------------------------------------


async def serve_agents(count: int, interval_s: float, gpus: int) -> None:
    import msgspec

    from smicast.api.server import Server, open_tcp
    from smicast.api.state import ApiState
    from smicast.include import Section
    from smicast.readers.simulated import SimulatedReader
    from smicast.schema import MemoryInfo, Snapshot

    sections = frozenset({Section.GPU, Section.MEMORY, Section.PROCESS})
    begin = time.monotonic() + 1.0
    ports = [0] * count
    states: list[ApiState | None] = [None] * count
    stops: list[asyncio.Event] = [asyncio.Event() for _ in range(count)]
    tasks: list[asyncio.Task[None] | None] = [None] * count

    async def frames(i: int, name: str):  # type: ignore[no-untyped-def]
        # Four simulated frames per agent, cycled with a fresh timestamp: the agents' side
        # shares the cores with the viewer, so it does no more work than serving needs.
        reader = SimulatedReader("nvidia", gpus, seed=i, hostname=name)
        mem = MemoryInfo(
            available_bytes=1 << 40, free_bytes=1 << 40, host_id=name, hostname=name,
            instance=name, time="", total_bytes=2 << 40, used_bytes=1 << 40,
        )  # fmt: skip
        variants = []
        for _ in range(4):
            procs = [p.info for p in reader.read_processes() if p.info is not None]
            variants.append(
                Snapshot(
                    hostname=name, timestamp="", gpus=reader.read(), memory=[mem], processes=procs
                )
            )
        offset = begin + i * interval_s / count
        k = max(0, int((time.monotonic() - offset) / interval_s) + 1)  # the next slot
        while True:
            due = offset + k * interval_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            k = max(k + 1, int((time.monotonic() - offset) / interval_s) + 1)
            now = time.time()
            stamp = (
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
            )
            yield msgspec.structs.replace(variants[k % 4], timestamp=stamp)

    def start(i: int) -> None:
        name = f"bench-{i:04d}"
        sockets = open_tcp("127.0.0.1", ports[i])
        ports[i] = sockets[0].getsockname()[1]
        state = ApiState(
            interval_s=interval_s, sections=sections, collector=None, hostname=name,
            dashboard=False, max_subscribers=8,
        )  # fmt: skip
        states[i], stops[i] = state, asyncio.Event()
        server = Server(state, sockets, frames=frames(i, name), announce=lambda line: None)
        tasks[i] = asyncio.create_task(server.run(stops[i]))

    for i in range(count):
        start(i)
    await asyncio.sleep(0.2)
    print(json.dumps({"ports": ports}), flush=True)
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        verb, _, arg = line.strip().partition(" ")
        if verb == "kill":
            i = int(arg)
            stops[i].set()
            await tasks[i]  # type: ignore[misc]
            print(json.dumps({"killed": i}), flush=True)
        elif verb == "start":
            start(int(arg))
            print(json.dumps({"started": int(arg)}), flush=True)
        elif verb == "count":
            print(
                json.dumps({"sent": [s.frames_published if s else 0 for s in states]}), flush=True
            )
    for stop in stops:
        stop.set()


class Agents:
    def __init__(self, count: int, interval_s: float, gpus: int) -> None:
        cmd = [
            sys.executable,
            __file__,
            "--serve-agents",
            f"{count}x{interval_s}",
            "--gpus",
            str(gpus),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ports: list[int] = self._ask(None)["ports"]

    def _ask(self, command: str | None) -> dict:  # type: ignore[type-arg]
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the agents process exited")
        return json.loads(line)  # type: ignore[no-any-return]

    async def ask(self, command: str) -> dict:  # type: ignore[type-arg]
        return await asyncio.to_thread(self._ask, command)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the viewer (this process) ---------------------------------------------------


async def watch(
    agents: Agents,
    interval_s: float,
    *,
    transport: str,
    window_s: float,
    render: bool,
    kill: bool,
    first_view_timeout_s: float,
) -> dict[str, float]:
    from rich.console import Console

    from smicast.fleet.client import ClientOptions
    from smicast.fleet.hosts import parse_host
    from smicast.fleet.link import HostState, Transport
    from smicast.fleet.source import FleetSource
    from smicast.view.fleet_app import FLEET_REDRAWS_PER_S
    from smicast.view.fleet_render import cluster_panel
    from smicast.view.fleet_summary import FleetView
    from smicast.view.model import ViewModel

    started = time.monotonic()
    hosts = [parse_host(f"127.0.0.1:{p}") for p in agents.ports]
    options = ClientOptions(poll_interval_s=interval_s, min_backoff_s=0.2, max_backoff_s=1.0)
    source = FleetSource(hosts, options)
    if transport == "metrics":
        for link in source.links.values():
            link.transport = Transport.METRICS
    links = list(source.links.values())
    model = ViewModel()
    fleet = FleetView(model, source.links)
    sent_at: list[float] = []  # publish times of frames applied since the last render
    applied_at: list[float] = []  # when the viewer applied them
    latencies: list[float] = []  # publish -> screen
    local: list[float] = []  # applied -> screen: the viewer's own share
    console = Console(file=io.StringIO(), width=200, height=60, color_system="truecolor")
    dirty = asyncio.Event()

    async def consume() -> None:
        async for event in source.events():
            now = time.time()
            model.apply(event, now)
            if event.snapshot is not None or event.frame is not None:
                sent = model.hosts[event.host].frame_epoch_s  # the frame's timestamp, parsed
                if sent is not None:
                    sent_at.append(sent)
                    applied_at.append(now)
                dirty.set()

    async def screen() -> None:
        while True:
            await dirty.wait()
            dirty.clear()
            if render:
                console.file = io.StringIO()
                console.print(cluster_panel(fleet, time.monotonic(), time.time(), 200, 60))
            shown = time.time()
            latencies.extend(shown - s for s in sent_at)
            local.extend(shown - a for a in applied_at)
            sent_at.clear()
            applied_at.clear()
            await asyncio.sleep(1 / FLEET_REDRAWS_PER_S)  # as often as the fleet app redraws

    tasks = [asyncio.create_task(consume()), asyncio.create_task(screen())]
    try:
        deadline = started + first_view_timeout_s
        while not all(link.frames for link in links):
            if time.monotonic() > deadline:
                break  # measured anyway; the row says how many hosts had shown up
            await asyncio.sleep(0.02)
        first_view_s = time.monotonic() - started
        shown = sum(1 for link in links if link.frames)
        await asyncio.sleep(2 * interval_s)  # settle
        latencies.clear()
        local.clear()
        frames0 = sum(link.frames for link in links)
        lost0 = sum(link.lost for link in links)
        sent0 = sum((await agents.ask("count"))["sent"])
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(window_s)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        updates = sum(link.frames for link in links) - frames0
        sent = sum((await agents.ask("count"))["sent"]) - sent0
        result = {
            "first_view_s": first_view_s,
            "cpu_pct": cpu / wall * 100,
            "cpu_us_per_update": cpu / max(1, updates) * 1e6,
            "p99_s": percentile(sorted(latencies), 99) if latencies else float("nan"),
            "p99_local_s": percentile(sorted(local), 99) if local else float("nan"),
            "received": updates,
            "sent": sent,
            "lost": sum(link.lost for link in links) - lost0,
            "shown": shown,
        }
        if kill:
            victim = links[0]
            restarts = victim.restarts
            t0 = time.monotonic()
            await agents.ask("kill 0")
            while victim.state_at(time.monotonic()) is not HostState.OFFLINE:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            result["offline_after_s"] = time.monotonic() - t0  # from the kill command
            before = victim.frames
            await agents.ask("start 0")
            while victim.restarts == restarts or victim.frames - before < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            result["restart_received"] = victim.frames - before
            result["restart_sent"] = int(victim.last_event_id or 0)  # ids 1..N of the new process
        return result
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def median(runs: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--fleets", default="256x1,1000x3", help="HOSTSxINTERVAL,... (default 256x1,1000x3)"
    )
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--window", type=float, default=20.0, help="steady-state seconds measured")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-render", action="store_true", help="model only, no cluster-tab render")
    ap.add_argument("--no-metrics", action="store_true", help="skip the /metrics polling side")
    ap.add_argument(
        "--first-view-timeout", type=float, default=60.0, help="measure anyway after this long"
    )
    ap.add_argument("--serve-agents", help=argparse.SUPPRESS)
    args = ap.parse_args()
    raise_nofile()
    from smicast.commands.view import event_loop as viewer_loop  # uvloop, as `smicast view`

    if args.serve_agents:
        count, interval = args.serve_agents.split("x")
        asyncio.run(serve_agents(int(count), float(interval), args.gpus))
        return
    print(f"fleet bench: {args.gpus} GPUs per host, {args.window:g} s window, median of {args.runs}; "
          f"render {'off' if args.no_render else 'on'}; {os.cpu_count()} CPUs (shared)")  # fmt: skip
    header = (
        f"{'fleet':<12} {'via':<8} {'first view':>10} {'viewer CPU':>10} {'CPU/update':>11}"
        f" {'p99 to screen':>13} {'(in viewer)':>11} {'received/sent':>14} {'lost':>5}"
    )
    print(header)
    for index, spec in enumerate(args.fleets.split(",")):
        count, interval = int(spec.split("x")[0]), float(spec.split("x")[1])
        for transport in ("sse", *(() if args.no_metrics else ("metrics",))):
            runs = []
            for _ in range(args.runs):
                agents = Agents(count, interval, args.gpus)
                try:
                    kill = index == 0 and transport == "sse"
                    with asyncio.Runner(loop_factory=viewer_loop) as runner:
                        runs.append(
                            runner.run(
                                watch(agents, interval, transport=transport, window_s=args.window,
                                      render=not args.no_render, kill=kill,
                                      first_view_timeout_s=args.first_view_timeout)
                            )
                        )  # fmt: skip
                finally:
                    agents.close()
            shown = median(runs, "shown")
            first = f"{median(runs, 'first_view_s'):>9.2f}s"
            if shown < count:
                first = f">{args.first_view_timeout:g}s ({shown:.0f}/{count})"
            print(
                f"{count}x{interval:g}s".ljust(12) + f" {transport:<8} {first:>10}"
                f" {median(runs, 'cpu_pct'):>9.1f}% {median(runs, 'cpu_us_per_update'):>9.0f}us"
                f" {median(runs, 'p99_s'):>12.3f}s {median(runs, 'p99_local_s'):>10.3f}s"
                f" {median(runs, 'received'):>7.0f}/{median(runs, 'sent'):<6.0f} {median(runs, 'lost'):>5.0f}",
                flush=True,
            )
            if "offline_after_s" in runs[0]:
                print(
                    f"  kill host 0: offline after {median(runs, 'offline_after_s'):.3f} s; restarted:"
                    f" received {median(runs, 'restart_received'):.0f} of the"
                    f" {median(runs, 'restart_sent'):.0f} frames the new process sent",
                    flush=True,
                )


if __name__ == "__main__":
    main()
