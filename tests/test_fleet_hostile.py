"""Hostile agents cost only their own tile: an endless line, a 1 GB frame, invalid JSON, garbage."""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc
from collections.abc import Awaitable, Callable

from aiohttp import web

from smicast.fleet.client import ClientOptions
from smicast.fleet.hosts import parse_host
from smicast.fleet.link import HostState
from smicast.fleet.source import FleetSource
from tests.fleet_harness import Agent, AppAgent, Feeder, stream_app

GIB = 1 << 30
BOUND = 1 << 20
OPTIONS = ClientOptions(max_frame_bytes=BOUND, min_backoff_s=0.05, max_backoff_s=0.2)

Produce = Callable[[web.StreamResponse], Awaitable[None]]


class Sent:
    def __init__(self) -> None:
        self.bytes = 0


def endless_line(sent: Sent) -> Produce:
    async def produce(resp: web.StreamResponse) -> None:
        chunk = b"x" * (256 << 10)
        await resp.write(b"retry: 100\n\ndata: ")
        while sent.bytes < GIB:  # never a newline; stops when the client hangs up
            await resp.write(chunk)
            sent.bytes += len(chunk)

    return produce


def huge_frame(sent: Sent) -> Produce:
    async def produce(resp: web.StreamResponse) -> None:
        line = b"data: " + b"7" * (64 << 10) + b"\n"
        await resp.write(b"event: snapshot\nid: 1\ndata: [\n")
        while sent.bytes < GIB:  # one event of 1 GB in 64 KiB data lines
            await resp.write(line)
            sent.bytes += len(line)

    return produce


def invalid_json(sent: Sent) -> Produce:
    async def produce(resp: web.StreamResponse) -> None:
        for i in range(1, 1000):
            await resp.write(b'event: snapshot\nid: %d\ndata: {"schema": 1, oops\n\n' % i)
            sent.bytes += 1
            await asyncio.sleep(0.02)

    return produce


def garbage(sent: Sent) -> Produce:
    async def produce(resp: web.StreamResponse) -> None:
        rng = os.urandom
        for _ in range(200):
            await resp.write(rng(4096).replace(b"\n", b"\r") + b"\n\n")
            sent.bytes += 4096
            await asyncio.sleep(0.01)

    return produce


def test_hostile_agents_cost_only_their_tiles() -> None:
    sent = {name: Sent() for name in ("endless", "huge", "invalid", "garbage")}
    makers = {
        "endless": endless_line,
        "huge": huge_frame,
        "invalid": invalid_json,
        "garbage": garbage,
    }
    hostile = {name: AppAgent(stream_app(makers[name](sent[name]))) for name in makers}
    good = Agent("good").start()
    try:
        hosts = [parse_host(a.url) for a in hostile.values()] + [parse_host(good.url)]
        source = FleetSource(hosts, OPTIONS)
        links = {name: source.links[a.url] for name, a in hostile.items()}
        good_link = source.links[good.url]

        async def scenario() -> None:
            tracemalloc.start()
            try:
                async with Feeder(source) as feed:
                    await feed.until(
                        lambda: (
                            links["endless"].invalid >= 1
                            and links["huge"].invalid >= 1
                            and links["invalid"].invalid >= 3
                            and sent["garbage"].bytes > 100_000
                            and good_link.frames >= 10
                        ),
                        timeout_s=20,
                    )
                    _, peak = tracemalloc.get_traced_memory()
                    now = time.monotonic()
                    assert good_link.state_at(now) is HostState.LIVE and good_link.error is None
                    for name in ("endless", "huge"):
                        assert "MiB" in (links[name].error or "") or links[name].state in (
                            HostState.RECONNECTING,
                            HostState.OFFLINE,
                        )
                        assert links[name].frames == 0
                        assert sent[name].bytes < 64 * BOUND  # the viewer hung up early
                    assert "invalid frame" in (links["invalid"].error or "")
                    assert links["invalid"].frames == 0 and links["garbage"].frames == 0
                    for name, agent in hostile.items():  # a tile with an error, no frame
                        view = feed.model.hosts.get(agent.url)
                        assert view is None or view.snapshot is None, name
                    assert peak < 48 << 20
            finally:
                tracemalloc.stop()

        asyncio.run(scenario())
    finally:
        good.stop()
        for agent in hostile.values():
            agent.stop()
