"""A fleet as one frame source: every host's client, one session, one bounded mailbox.

`FleetSource` satisfies the viewer's `FrameSource` protocol, so the view model
takes a fleet as it takes one machine. Each host's newest news waits in a
mailbox of one slot per host: a view that falls behind sees every host's latest
frame, never a growing queue (`coalesced` counts what it skipped). `links`
holds each host's state and transport for the tiles.

One aiohttp session serves every TCP host (connections are not capped by the
pool, since each pushed stream holds one; the number of hosts is); a Unix-socket
host has a session of its own. Connects in flight are bounded by one semaphore.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Final

from smicast.fleet.client import ClientOptions, HostClient
from smicast.fleet.hosts import MAX_HOSTS, HostSpec
from smicast.fleet.link import HostLink, HostState
from smicast.readings import LazyFrame
from smicast.schema import Snapshot
from smicast.view.model import SourceEvent

if TYPE_CHECKING:
    import aiohttp

MAX_CONNECTS_IN_FLIGHT: Final = 64


def adaptive_interval_s(hosts: int) -> float:
    """all-smi's poll interval for a fleet of this size: 3, 4, 5 or 6 seconds."""
    return 3.0 if hosts <= 10 else 4.0 if hosts <= 50 else 5.0 if hosts <= 100 else 6.0


class FleetSource:
    kind = "fleet"
    signals_processes = False  # the pids are other machines' processes

    def __init__(
        self,
        hosts: Sequence[HostSpec],
        options: ClientOptions | None = None,
        *,
        max_connects: int = MAX_CONNECTS_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if len(hosts) > MAX_HOSTS:
            raise ValueError(f"at most {MAX_HOSTS} hosts")
        self.options = options or ClientOptions(poll_interval_s=adaptive_interval_s(len(hosts)))
        self.links: dict[str, HostLink] = {h.label: HostLink(h) for h in hosts}
        self.label = f"{len(hosts)} hosts"
        self.clock = clock
        self.rng = rng or random.Random()
        self.max_connects = max_connects
        self.coalesced = 0
        self._pending: dict[str, SourceEvent] = {}
        self._wake: asyncio.Event | None = None

    # -- what the clients call ----------------------------------------------------
    def _offer(self, event: SourceEvent) -> None:
        if event.host in self._pending:
            self.coalesced += 1
        self._pending[event.host] = event
        if self._wake is not None:
            self._wake.set()

    def _emit(self, link: HostLink, frame: Snapshot | LazyFrame) -> None:
        if isinstance(frame, LazyFrame):
            self._offer(SourceEvent(link.label, frame=frame))
        else:
            self._offer(SourceEvent(link.label, frame))

    def _notify(self, link: HostLink) -> None:
        """A host's state changed without a frame: its view hears of the problem."""
        if link.error is not None and link.label not in self._pending:
            self._offer(SourceEvent(link.label, error=link.error))
        elif self._wake is not None:
            self._wake.set()

    def state_counts(self, now_s: float | None = None) -> dict[HostState, int]:
        now = self.clock() if now_s is None else now_s
        counts = dict.fromkeys(HostState, 0)
        for link in self.links.values():
            counts[link.state_at(now)] += 1
        return counts

    # -- the FrameSource protocol ---------------------------------------------------
    async def events(self) -> AsyncIterator[SourceEvent]:
        import aiohttp

        self._wake = asyncio.Event()
        connects = asyncio.Semaphore(self.max_connects)
        tcp = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        sessions: list[aiohttp.ClientSession] = [aiohttp.ClientSession(connector=tcp)]
        tasks: list[asyncio.Task[None]] = []
        try:
            for link in self.links.values():
                session = sessions[0]
                if link.spec.unix_path is not None:
                    session = aiohttp.ClientSession(
                        connector=aiohttp.UnixConnector(path=link.spec.unix_path)
                    )
                    sessions.append(session)
                client = HostClient(
                    link,
                    session,
                    connects,
                    self._emit,
                    self.options,
                    clock=self.clock,
                    rng=self.rng,
                    notify=self._notify,
                )
                tasks.append(asyncio.create_task(_guarded(client)))
            while True:
                await self._wake.wait()
                self._wake.clear()
                pending, self._pending = self._pending, {}
                for event in pending.values():
                    yield event
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for session in sessions:
                await session.close()


async def _guarded(client: HostClient) -> None:
    """A bug in one host's handling must cost only that host."""
    while True:
        try:
            await client.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # shown in the tile, never ends the viewer
            client.link.fail(f"internal error: {type(exc).__name__}: {exc}", HostState.OFFLINE)
            await asyncio.sleep(client.options.max_backoff_s)
