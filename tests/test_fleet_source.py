"""The fleet source against real agents: three smicast APIs and a /metrics-only all-smi agent."""

from __future__ import annotations

import asyncio
import time

from smicast.fleet.client import ClientOptions
from smicast.fleet.hosts import parse_host
from smicast.fleet.link import HostState, Transport
from smicast.fleet.source import FleetSource
from tests.fleet_harness import Agent, AppAgent, Feeder, metrics_only_app

FAST = ClientOptions(poll_interval_s=0.2, min_backoff_s=0.05, max_backoff_s=0.3)


def test_fleet_shows_every_agent_with_its_transport_and_survives_a_restart() -> None:
    agents = [Agent(f"node-{i}").start() for i in range(3)]
    legacy = AppAgent(metrics_only_app())
    try:
        hosts = [parse_host(a.url) for a in agents] + [parse_host(legacy.url)]
        source = FleetSource(hosts, FAST)
        links = source.links

        async def scenario() -> None:
            async with Feeder(source) as feed:
                model = feed.model
                await feed.until(
                    lambda: (
                        all(link.frames >= 2 for link in links.values()) and len(model.hosts) == 4
                    )
                )
                transports = {label: link.transport for label, link in links.items()}
                assert transports == {
                    agents[0].url: Transport.SSE,
                    agents[1].url: Transport.SSE,
                    agents[2].url: Transport.SSE,
                    legacy.url: Transport.METRICS,
                }
                assert {h.hostname for h in model} == {"node-0", "node-1", "node-2", "node-m"}
                assert len(model.hosts[legacy.url].gpus) == 2
                assert all(
                    link.state_at(time.monotonic()) is HostState.LIVE for link in links.values()
                )

                victim = agents[1]
                link = links[victim.url]
                await asyncio.to_thread(victim.stop)
                killed_at = time.monotonic()
                await feed.until(lambda: link.state is HostState.OFFLINE, timeout_s=3)
                assert time.monotonic() - killed_at < 3
                received_before = link.frames

                await asyncio.to_thread(victim.start)  # the same port, a new process
                await feed.until(lambda: link.state is HostState.LIVE and victim.published >= 3)
                await feed.until(lambda: int(link.last_event_id or 0) >= 3)
                # Frames 1..N of the new process all arrived: none lost, none twice.
                assert link.frames - received_before == int(link.last_event_id or 0)
                assert link.restarts == 1 and link.lost == 0
                others = [links[a.url] for a in (agents[0], agents[2])]
                assert all(o.state is HostState.LIVE for o in others)

        asyncio.run(scenario())
    finally:
        for agent in agents:
            agent.stop()
        legacy.stop()


def test_an_agent_with_only_snapshot_is_polled() -> None:
    from aiohttp import web

    from smicast.encode import snapshot_json
    from tests.fakes import make_gpu, make_snapshot

    body = snapshot_json(make_snapshot(hostname="snap-only", gpus=[make_gpu()]))

    async def snapshot(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/snapshot", snapshot)
    agent = AppAgent(app)
    try:
        source = FleetSource([parse_host(agent.url)], FAST)
        link = source.links[agent.url]

        async def scenario() -> None:
            async with Feeder(source) as feed:
                await feed.until(lambda: link.frames >= 2)
                assert link.transport is Transport.SNAPSHOT
                assert feed.model.hosts[agent.url].hostname == "snap-only"

        asyncio.run(scenario())
    finally:
        agent.stop()
