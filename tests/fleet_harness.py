"""Agents for fleet tests: real `smicast api` servers (simulated GPUs), a /metrics-only
agent serving an all-smi exposition, hostile agents; and a fleet viewer run to a condition.

Each agent runs on its own event loop thread on 127.0.0.1; an agent can be stopped and
started again on the same port (a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from smicast.api.cors import CorsPolicy
from smicast.api.server import Server, open_tcp
from smicast.api.state import ApiState
from smicast.collect import Collector
from smicast.fleet.source import FleetSource
from smicast.include import Section
from smicast.readers.registry import build_readers, parse_simulate
from smicast.view.model import ViewModel

DATA = Path(__file__).parent / "data" / "fleet"
SECTIONS = frozenset({Section.GPU, Section.MEMORY, Section.PROCESS})


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Agent:
    """A real smicast API server with simulated NVIDIA GPUs, collecting every `interval_s`."""

    def __init__(self, name: str, *, interval_s: float = 0.1, gpus: int = 2) -> None:
        self.name, self.interval_s, self.gpus = name, interval_s, gpus
        self.port = 0
        self.state: ApiState | None = None
        self._thread: _LoopThread | None = None
        self._stop: asyncio.Event | None = None
        self._task: Any = None

    def start(self) -> Agent:
        sockets = open_tcp("127.0.0.1", self.port)
        self.port = sockets[0].getsockname()[1]
        readers = build_readers(
            SECTIONS, simulate=parse_simulate(f"nvidia:{self.gpus}"), hostname=self.name
        )
        self.state = ApiState(
            interval_s=self.interval_s,
            sections=SECTIONS,
            collector=Collector(readers, timeout_s=1, hostname=self.name),
            hostname=self.name,
            dashboard=False,
        )
        server = Server(self.state, sockets, policy=CorsPolicy(), announce=lambda line: None)
        self._thread = thread = _LoopThread()

        async def begin() -> None:
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(server.run(self._stop))

        thread.run(begin())
        return self

    @property
    def published(self) -> int:
        return self.state.frames_published if self.state is not None else 0

    def stop(self) -> None:
        if self._thread is None:
            return
        thread, stop = self._thread, self._stop
        assert stop is not None

        async def end() -> None:
            stop.set()
            await self._task

        thread.run(end())
        thread.close()
        self._thread = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"


class AppAgent:
    """Any aiohttp application on 127.0.0.1 (a /metrics-only agent, a hostile one)."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self._thread = _LoopThread()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

        async def begin() -> web.AppRunner:
            runner = web.AppRunner(
                app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
            )
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=ssl_context).start()
            return runner

        self._runner = self._thread.run(begin())

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._thread.run(self._runner.cleanup())
        self._thread.close()


def metrics_only_app(exposition: bytes | None = None) -> web.Application:
    """An older all-smi agent: /metrics and nothing else."""
    body = exposition if exposition is not None else (DATA / "all-smi-metrics.prom").read_bytes()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


def stream_app(produce: Callable[[web.StreamResponse], Awaitable[None]]) -> web.Application:
    """An agent whose /events body is whatever `produce` writes."""

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await produce(resp)
        return resp

    app = web.Application()
    app.router.add_get("/events", events)
    return app


class Feeder:
    """Feeds a fleet into a view model in the background; `until()` waits for a condition."""

    def __init__(self, source: FleetSource, model: ViewModel | None = None) -> None:
        self.source = source
        self.model = model if model is not None else ViewModel()
        self._task: asyncio.Task[None] | None = None

    async def _feed(self) -> None:
        async for event in self.source.events():
            self.model.apply(event, time.monotonic())

    async def __aenter__(self) -> Feeder:
        self._task = asyncio.create_task(self._feed())
        return self

    async def until(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert self._task is not None and not self._task.done(), "the fleet source ended"
            assert time.monotonic() < deadline, f"condition not reached in time: {self._laggards()}"
            await asyncio.sleep(0.02)

    def _laggards(self) -> list[str]:
        return [
            f"{link.label}: {link.state} {link.error} frames={link.frames}"
            for link in self.source.links.values()
        ]

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
