"""The agent's energy account: a meter fed every frame, saved now and then and at exit.

NVML's energy counters are not part of the Snapshot (schema 1 is all-smi's, field for
field); the GPU readers keep the counters they read with each frame, and `counters`
hands them over when the frame is observed. Saving runs off the event loop (an fsync
on a slow disk must not stall publishing); at most one save is in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

from smicast.energy.meter import EnergyMeter, EnergyRow
from smicast.energy.store import EnergyStore, log
from smicast.schema import Snapshot, utc_timestamp

__all__ = ["SAVE_EVERY_S", "EnergyAccount", "nvml_counters", "open_account"]

SAVE_EVERY_S: Final = 60.0
JOULES_PER_KWH: Final = 3_600_000.0

Spawn = Callable[[Callable[[], None]], None]


def nvml_counters(readers: Iterable[object]) -> dict[str, int]:
    """Every reader's latest energy counters (millijoules by GPU UUID), where it keeps some."""
    found: dict[str, int] = {}
    for reader in readers:
        # A reader set up on its first read wraps the one that keeps the counters.
        for candidate in (reader, getattr(reader, "reader", None)):
            counters = getattr(candidate, "energy_counters_mj", None)
            if callable(counters):
                found.update(counters())
                break
    return found


def _daemon_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="smicast-energy-save", daemon=True).start()


class EnergyAccount:
    def __init__(
        self,
        store: EnergyStore | None,
        *,
        counters: Callable[[], Mapping[str, int]] = dict,
        save_every_s: float = SAVE_EVERY_S,
        spawn: Spawn = _daemon_thread,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.meter = EnergyMeter(store.load() if store is not None else None)
        self.since = utc_timestamp(clock())
        self._counters = counters
        self._save_every_s = save_every_s
        self._spawn = spawn
        self._next_save_at: float | None = None
        self._saving = threading.Event()

    def observe(self, snapshot: Snapshot, at: float) -> None:
        """Feed one frame taken at monotonic time `at`; start a save when one is due."""
        self.meter.observe(snapshot, at, self._counters())
        if self.store is None:
            return
        if self._next_save_at is None:
            self._next_save_at = at + self._save_every_s
        elif at >= self._next_save_at and not self._saving.is_set():
            self._next_save_at = at + self._save_every_s
            self._saving.set()
            store, totals = self.store, self.meter.totals()

            def save() -> None:
                try:
                    store.save(totals)
                finally:
                    self._saving.clear()

            self._spawn(save)

    def close(self) -> bool:
        """The final save at shutdown (waits for one in flight); False when it failed."""
        if self.store is None:
            return True
        return self.store.save(self.meter.totals())

    def rows(self) -> list[EnergyRow]:
        return self.meter.rows()

    def report(self) -> dict[str, object]:
        """What the dashboard shows: per device, kWh since this agent started and in total."""
        return {
            "since": self.since,
            "devices": [
                {
                    "scope": row.key.scope.value,
                    "host": row.key.host,
                    **(
                        {"gpu_index": row.gpu_index, "gpu_uuid": row.key.device}
                        if row.key.device
                        else {}
                    ),
                    "session_kwh": row.session_j / JOULES_PER_KWH,
                    "total_kwh": row.total_j / JOULES_PER_KWH,
                    "measured": row.measured,
                }
                for row in self.rows()
            ],
        }


def open_account(state_dir: Path | None, hostname: str, readers: Iterable[object]) -> EnergyAccount:
    """The live agent's account: totals carried over from `state_dir` (or the default)."""
    from smicast.statedir import default_state_dir

    directory = state_dir if state_dir is not None else default_state_dir()
    store = EnergyStore(directory, hostname)
    log.info("energy: totals are kept in %s", store.path)
    return EnergyAccount(store, counters=lambda: nvml_counters(readers))
