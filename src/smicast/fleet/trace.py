"""Fleet frames: many hosts' snapshots as one schema-1 frame, the way all-smi records a cluster.

all-smi's `record --source remote` writes one frame per interval with
`hostname: "remote"` holding every host's devices, each device's `host_id`
naming its agent (`host:port`), and lists the agents in the header's `hosts`.
Its replay makes a tab per `host_id`, so a trace written this way is a fleet
in all-smi's viewer and in smicast's, and any schema-1 reader can read it.

Processes carry no host; they are tied to their host through `device_uuid`.
A host's reader errors keep their section with the host named in the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
from msgspec import UNSET

from smicast.include import Section
from smicast.schema import ProcessInfo, ReaderError, Snapshot, utc_timestamp

FLEET_HOSTNAME: Final = "remote"  # all-smi's name for a frame of many hosts
_HOSTED: Final = ("gpus", "cpus", "memory", "chassis", "storage")


def is_fleet_frame(snap: Snapshot) -> bool:
    return snap.hostname == FLEET_HOSTNAME


def _rehost(items: Iterable[Any], host_id: str) -> list[Any]:
    return [
        item if item.host_id == host_id else msgspec.structs.replace(item, host_id=host_id)
        for item in items
    ]


def fleet_frame(
    latest: Mapping[str, Snapshot], sections: frozenset[Section], now_s: float
) -> Snapshot:
    """One frame of every host in `latest` (label -> its newest snapshot)."""
    fields: dict[str, list[Any]] = {name: [] for name in _HOSTED}
    processes: list[ProcessInfo] = []
    errors: list[ReaderError] = []
    for label, snap in latest.items():
        for name in _HOSTED:
            items = getattr(snap, name)
            if items is not UNSET:
                fields[name].extend(_rehost(items, label))
        if snap.processes is not UNSET:
            processes.extend(snap.processes)
        if snap.errors is not UNSET:
            errors.extend(
                msgspec.structs.replace(e, message=f"{label}: {e.message}") for e in snap.errors
            )
    wanted: dict[str, Any] = {
        s.json_key: fields[s.json_key] for s in sections if s.json_key in fields
    }
    if Section.PROCESS in sections:
        wanted["processes"] = processes
    if errors:
        wanted["errors"] = errors
    return Snapshot(hostname=FLEET_HOSTNAME, timestamp=utc_timestamp(now_s), **wanted)


def split_fleet_frame(snap: Snapshot) -> list[tuple[str, Snapshot]]:
    """A fleet frame back into (host, snapshot) pairs, in the order hosts first appear."""
    by_host: dict[str, dict[str, list[Any]]] = {}
    gpu_host: dict[str, str] = {}
    for name in _HOSTED:
        items = getattr(snap, name)
        if items is UNSET:
            continue
        for item in items:
            by_host.setdefault(item.host_id, {}).setdefault(name, []).append(item)
            if name == "gpus":
                gpu_host[item.uuid] = item.host_id
    if snap.processes is not UNSET:
        for proc in snap.processes:
            host = gpu_host.get(proc.device_uuid)
            if host is not None:
                by_host[host].setdefault("processes", []).append(proc)
    if snap.errors is not UNSET:
        for err in snap.errors:
            host, sep, message = err.message.partition(": ")
            if sep and host in by_host:
                by_host[host].setdefault("errors", []).append(
                    msgspec.structs.replace(err, message=message)
                )
    out = []
    for host, sections in by_host.items():
        hostname = next(
            (items[0].hostname for name, items in sections.items() if name in _HOSTED), host
        )
        present = {name for name in _HOSTED if getattr(snap, name) is not UNSET}
        if snap.processes is not UNSET:
            present.add("processes")
        fields: dict[str, Any] = {name: sections.get(name, []) for name in present}
        if "errors" in sections:
            fields["errors"] = sections["errors"]
        out.append((host, Snapshot(hostname=hostname, timestamp=snap.timestamp, **fields)))
    return out
