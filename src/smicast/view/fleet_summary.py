"""What the fleet tabs show, computed from the view model. Plain Python, no Textual.

`FleetView` reads the `ViewModel` (every host's latest frame and alerts) and,
for a live fleet, each host's link (state, transport). It keeps the host-name
filter, the selected host, and an energy meter fed with every frame (the same
integrator the API uses), and answers: cluster totals, a row per host, a
utilization cell per GPU, GPU processes grouped by user, and alerts.

A replayed fleet has no links: a host's state is `live` while its frames are
recent (two of its intervals) and `stale` after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from smicast.energy.meter import EnergyMeter, Scope
from smicast.fleet.link import HostLink, HostState
from smicast.view.alerts import Level, Transition
from smicast.view.model import HostView, ViewModel, reading

MAX_USERS: Final = 1000
MAX_FILTER_CHARS: Final = 128


@dataclass(frozen=True)
class HostRow:
    key: str
    hostname: str
    state: str
    transport: str
    gpus: int
    util_pct: float | None
    mem_used: int
    mem_total: int
    power_w: float | None
    alert: Level
    error: str | None


@dataclass(frozen=True)
class Totals:
    hosts: int
    states: dict[str, int]
    gpus: int
    util_pct: float | None
    mem_used: int
    mem_total: int
    power_w: float
    energy_j: float


@dataclass
class UserRow:
    user: str
    hosts: set[str] = field(default_factory=set)
    gpus: set[tuple[str, str]] = field(default_factory=set)
    procs: int = 0
    vram: int = 0
    top_command: str = ""
    top_vram: int = -1


class FleetView:
    def __init__(self, model: ViewModel, links: Mapping[str, HostLink] | None = None) -> None:
        self.model = model
        self.links = links or {}
        self.filter_text = ""
        self.selected: str | None = None
        self.energy = EnergyMeter()
        self._metered: dict[str, int] = {}  # frames of each host already integrated
        self._energy_j = 0.0
        self._energy_at: float | None = None
        # Per host, what its latest frame says (rows and grid cells), keyed by its frame count:
        # a redraw of 1,000 hosts recomputes only the hosts that sent something.
        self._frame_cache: dict[str, tuple[int, HostRow, list[float | None]]] = {}
        # The row last shown per host (frame facts plus state, transport, error): most
        # redraws change none of them for most hosts.
        self._rows: dict[str, tuple[HostRow, HostRow]] = {}

    # -- input ------------------------------------------------------------------
    def meter(self) -> None:
        """Integrate power of every host frame not seen yet (frames between two calls are
        skipped; the integrator bridges gaps up to 10 s). A replay uses the frames' own
        time, a live fleet the time each frame arrived."""
        replay = not self.links
        for host in self.model:
            readings = host.readings
            if readings is None or self._metered.get(host.key) == host.frames:
                continue
            self._metered[host.key] = host.frames
            at = host.frame_epoch_s if replay else host.received_s
            if at is not None:
                self.energy.observe(readings, at)

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()[:MAX_FILTER_CHARS]
        hosts = self.hosts()
        if hosts and self.selected not in {h.key for h in hosts}:
            self.selected = hosts[0].key

    # -- hosts ------------------------------------------------------------------
    def hosts(self) -> list[HostView]:
        """Hosts whose label or host name contains the filter (case-insensitive)."""
        needle = self.filter_text.lower()
        views = list(self.model)
        if needle:
            views = [h for h in views if needle in h.key.lower() or needle in h.hostname.lower()]
        return views

    def selected_host(self) -> HostView | None:
        hosts = self.hosts()
        if not hosts:
            return None
        for host in hosts:
            if host.key == self.selected:
                return host
        return hosts[0]

    def move(self, step: int) -> HostView | None:
        hosts = self.hosts()
        if not hosts:
            return None
        keys = [h.key for h in hosts]
        at = keys.index(self.selected) if self.selected in keys else 0
        self.selected = keys[(at + step) % len(keys)]
        return hosts[(at + step) % len(keys)]

    def state(self, host: HostView, now_s: float, wall_s: float) -> tuple[str, str]:
        """(state, transport) of a host: from its link when live, from its age in a replay."""
        link = self.links.get(host.key)
        if link is not None:
            return link.state_at(now_s).value, (link.transport or "-")
        age = host.age_s(wall_s)
        return (HostState.LIVE.value if age is not None and age < 10 else "stale"), "replay"

    def _frame_facts(self, host: HostView) -> tuple[HostRow, list[float | None]]:
        cached = self._frame_cache.get(host.key)
        if cached is not None and cached[0] == host.frames:
            return cached[1], cached[2]
        gpus = [g.reading for g in host.gpu_list()]  # never builds a lazy frame
        cells = [reading(g.utilization) for g in gpus]
        utils = [u for u in cells if u is not None]
        powers = [p for g in gpus if (p := reading(g.power_consumption)) is not None]
        row = HostRow(
            key=host.key,
            hostname=host.hostname,
            state="",
            transport="",
            gpus=len(gpus),
            util_pct=sum(utils) / len(utils) if utils else None,
            mem_used=sum(g.used_memory for g in gpus),
            mem_total=sum(g.total_memory for g in gpus),
            power_w=sum(powers) if powers else None,
            alert=max(host.alert_levels().values(), default=Level.OK),
            error=None,
        )
        self._frame_cache[host.key] = (host.frames, row, cells)
        return row, cells

    def row(self, host: HostView, now_s: float, wall_s: float) -> HostRow:
        state, transport = self.state(host, now_s, wall_s)
        link = self.links.get(host.key)
        facts, _ = self._frame_facts(host)
        error = (link.error if link is not None else None) or host.source_error
        cached = self._rows.get(host.key)
        if (
            cached is not None
            and cached[0] is facts
            and cached[1].state == state
            and cached[1].transport == transport
            and cached[1].error == error
        ):
            return cached[1]
        f = facts
        row = HostRow(
            f.key, f.hostname, state, transport, f.gpus, f.util_pct, f.mem_used, f.mem_total,
            f.power_w, f.alert, error,
        )  # fmt: skip
        self._rows[host.key] = (facts, row)
        return row

    def totals(self, rows: list[HostRow], now_s: float) -> Totals:
        states: dict[str, int] = {}
        for r in rows:
            states[r.state] = states.get(r.state, 0) + 1
        weighted = [(r.util_pct, r.gpus) for r in rows if r.util_pct is not None]
        gpu_count = sum(n for _, n in weighted)
        energy = self._energy(rows, now_s)
        return Totals(
            hosts=len(rows),
            states=states,
            gpus=sum(r.gpus for r in rows),
            util_pct=sum(u * n for u, n in weighted) / gpu_count if gpu_count else None,
            mem_used=sum(r.mem_used for r in rows),
            mem_total=sum(r.mem_total for r in rows),
            power_w=sum(r.power_w or 0.0 for r in rows),
            energy_j=energy,
        )

    def _energy(self, rows: list[HostRow], now_s: float) -> float:
        """GPU energy of the listed hosts since the viewer started; summed once a second."""
        if self._energy_at is None or now_s - self._energy_at >= 1.0 or now_s < self._energy_at:
            self.meter()
            self._energy_j = self.energy.session_j(Scope.GPU, {r.hostname for r in rows})
            self._energy_at = now_s
        return self._energy_j

    def gpu_cells(self) -> list[float | None]:
        """Every filtered GPU's utilization, host by host: the grid."""
        return [cell for h in self.hosts() for cell in self._frame_facts(h)[1]]

    # -- users and alerts -------------------------------------------------------
    def users(self) -> list[UserRow]:
        """GPU processes of the filtered hosts grouped by user, most GPU memory first
        (each host's latest frame is built for its process list, once per frame)."""
        by_user: dict[str, UserRow] = {}
        for host in self.hosts():
            for proc in host.processes:
                user = proc.user or "?"
                row = by_user.get(user)
                if row is None:
                    if len(by_user) >= MAX_USERS:
                        continue
                    row = by_user[user] = UserRow(user)
                row.hosts.add(host.key)
                row.gpus.add((host.key, proc.device_uuid))
                row.procs += 1
                row.vram += proc.used_memory
                if proc.used_memory > row.top_vram:
                    row.top_vram, row.top_command = proc.used_memory, proc.command
        return sorted(by_user.values(), key=lambda r: (-r.vram, r.user))

    def alerts(self) -> tuple[list[tuple[HostView, str, Level]], list[Transition]]:
        """(active alerts: host, GPU label, level; the latest transitions, newest first)."""
        active: list[tuple[HostView, str, Level]] = []
        log: list[Transition] = []
        for host in self.hosts():
            levels = host.alert_levels()
            for gpu in host.gpu_list():
                level = levels.get(gpu.key)
                if level is not None:
                    active.append((host, gpu.label, level))
            log.extend(host.alerts.log)
        active.sort(key=lambda a: (-a[2], a[0].key))
        log.sort(key=lambda t: t.at_s, reverse=True)
        return active, log[:50]
