"""A recorded fleet played back: each fleet frame split into one frame per host."""

from __future__ import annotations

from collections.abc import AsyncIterator

from smicast.fleet.trace import FLEET_HOSTNAME, is_fleet_frame, split_fleet_frame
from smicast.view.model import SourceEvent
from smicast.view.replay import ReplaySource, Trace


def is_fleet_trace(trace: Trace) -> bool:
    """A trace `record --hosts` (or all-smi's remote `record`) wrote."""
    return FLEET_HOSTNAME in trace.hostnames[:64]


class FleetReplaySource(ReplaySource):
    """The replay controls of `ReplaySource`; every host of a frame becomes its own event."""

    async def events(self) -> AsyncIterator[SourceEvent]:
        async for event in super().events():
            snap = event.snapshot
            if snap is None or not is_fleet_frame(snap):
                yield event
                continue
            for host, part in split_fleet_frame(snap):
                yield SourceEvent(host, part, rewound=event.rewound)
