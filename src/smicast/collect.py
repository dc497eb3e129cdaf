"""Run the readers concurrently with a timeout each, and assemble a Snapshot.

Every reader owns one daemon worker thread. A call is handed to it and waited
for at most `timeout_s`; a reader still stuck in an earlier call is not called
again until it returns (it reports `timeout` meanwhile), so a wedged driver
costs one parked thread, never a pile of them, and never stalls the caller.
Daemon threads also mean a stuck reader cannot keep the process from exiting.
Readers set themselves up on their first read (`readers.setup`), so a hung probe
(`nvmlInit`) is bounded the same way; a reader that found no hardware is `absent`
and is no longer called.

Error kinds: `timeout`; `error` for what a reader expects to go wrong (`ReadError`,
an `OSError` from the kernel); `panic` for any other exception, a bug, which is
also logged with its traceback the first time that reader raises that type.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field

import msgspec

from smicast.encode import with_process_limits
from smicast.include import Section, ordered
from smicast.readers import (
    WALL_CLOCK,
    Clock,
    Item,
    PartialReadError,
    Reader,
    ReadError,
    default_hostname,
)
from smicast.schema import ChassisInfo, GpuInfo, ReaderError, Snapshot, utc_timestamp

DEFAULT_TIMEOUT_S = 5.0
MAX_LOGGED_BUG_TYPES = 16  # per reader: a bug is logged once per exception type

log = logging.getLogger("smicast.collect")


@dataclass
class ReaderStats:
    """What `/metrics` says about one reader's freshness."""

    name: str
    section: Section
    last_success_s: float | None = None  # wall-clock time of the last good read
    last_duration_s: float | None = None
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count


class _Slot:
    """One reader, its worker thread and the call in flight (if any)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.pending: Future[Sequence[Item]] | None = None
        self.started_at = 0.0
        self.stats = ReaderStats(reader.name, reader.section)
        self.stats_lock = threading.Lock()  # written on the collector's thread, read on others
        self.logged_bugs: set[str] = set()
        self._requests: queue.SimpleQueue[Future[Sequence[Item]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self.pending is not None and not self.pending.done()

    def absent(self) -> bool:
        """The reader found no hardware to read (`readers.setup.DeferredReader`)."""
        return bool(getattr(self.reader, "absent", False))

    def stage(self) -> str:
        """` during set-up` while the reader has not finished setting up, else ``."""
        return "" if getattr(self.reader, "ready", True) else " during set-up"

    def call(self, now: float) -> Future[Sequence[Item]]:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name=f"smicast-reader-{self.reader.name}", daemon=True
            )
            self._thread.start()
        fut: Future[Sequence[Item]] = Future()
        self.pending, self.started_at = fut, now
        self._requests.put(fut)
        return fut

    def _work(self) -> None:
        while True:
            fut = self._requests.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(self.reader.read())
            except BaseException as exc:  # reported as an `errors` entry, never lost
                fut.set_exception(exc)


def backfill_chassis_power(
    chassis: list[ChassisInfo], gpus: Sequence[GpuInfo]
) -> list[ChassisInfo]:
    """all-smi's rule: no chassis power reading but GPUs drawing power -> their sum."""
    gpu_watts = sum(
        g.power_consumption
        for g in gpus
        if g.power_consumption is not None and g.power_consumption >= 0
    )
    if gpu_watts <= 0:
        return chassis
    return [
        msgspec.structs.replace(c, total_power_watts=gpu_watts)
        if c.total_power_watts is None
        else c
        for c in chassis
    ]


class Collector:
    """Collects Snapshots from a fixed set of readers. Thread-safe for one caller at a time."""

    def __init__(
        self,
        readers: Iterable[Reader],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Clock = WALL_CLOCK,
        monotonic: Callable[[], float] = time.monotonic,
        hostname: str | None = None,
    ) -> None:
        self._slots = [_Slot(r) for r in readers]
        self.timeout_s = timeout_s
        self._clock = clock
        self._monotonic = monotonic
        self.hostname = hostname or default_hostname()
        self._lock = threading.Lock()
        self.last_duration_s: float | None = None

    @property
    def readers(self) -> list[Reader]:
        return [s.reader for s in self._slots]

    def reader_stats(self) -> list[ReaderStats]:
        """Copies taken under each reader's lock: collection goes on updating the originals."""
        out = []
        for slot in self._slots:
            if not slot.absent():
                with slot.stats_lock:
                    out.append(dataclasses.replace(slot.stats, errors=dict(slot.stats.errors)))
        return out

    def collect(self, sections: Iterable[Section]) -> Snapshot:
        with self._lock:
            return self._collect(frozenset(sections))

    def _collect(self, sections: frozenset[Section]) -> Snapshot:
        started = self._monotonic()
        timestamp = utc_timestamp(self._clock())
        wanted = [s for s in self._slots if s.reader.section in sections and not s.absent()]
        errors: list[ReaderError] = []
        running: list[tuple[_Slot, Future[Sequence[Item]]]] = []
        failed_sections: set[Section] = set()
        for slot in wanted:
            if slot.busy():
                stuck_s = started - slot.started_at
                self._fail(
                    slot,
                    "timeout",
                    f"reader {slot.reader.name} still busy with a call started "
                    f"{stuck_s:.1f} s ago{slot.stage()}",
                    errors,
                )
                failed_sections.add(slot.reader.section)
            else:
                running.append((slot, slot.call(started)))
        wait([f for _, f in running], timeout=self.timeout_s)

        items: dict[Section, list[Item]] = {s: [] for s in sections}
        succeeded: set[Section] = set()
        for slot, fut in running:
            if not fut.done():
                self._fail(
                    slot,
                    "timeout",
                    f"reader exceeded timeout of {round(self.timeout_s * 1000)} ms{slot.stage()}",
                    errors,
                )
                failed_sections.add(slot.reader.section)
                continue
            exc = fut.exception()
            if isinstance(exc, PartialReadError):  # some devices answered: keep them
                self._fail(slot, "error", str(exc), errors)
                got: Sequence[Item] = exc.items
            elif exc is not None:
                self._fail_with(slot, exc, errors)
                failed_sections.add(slot.reader.section)
                continue
            else:
                got = fut.result()
            items[slot.reader.section].extend(got)
            if got:
                succeeded.add(slot.reader.section)
            with slot.stats_lock:
                slot.stats.last_success_s = self._clock()
                slot.stats.last_duration_s = self._monotonic() - slot.started_at

        # A section is present when it was asked for and no reader of it failed, or when
        # one of several readers (GPU vendors) reported devices: healthy vendors keep reporting.
        present = {s for s in sections if s not in failed_sections or s in succeeded}
        fields: dict[str, object] = {s.json_key: items[s] for s in ordered(present)}
        gpus = items.get(Section.GPU, [])
        if Section.CHASSIS in present and gpus:
            fields["chassis"] = backfill_chassis_power(fields["chassis"], gpus)  # type: ignore[arg-type]
        if errors:
            fields["errors"] = sorted(errors, key=lambda e: list(Section).index(Section(e.section)))
        snapshot = Snapshot(timestamp=timestamp, hostname=self.hostname, **fields)  # type: ignore[arg-type]
        self.last_duration_s = self._monotonic() - started
        return with_process_limits(snapshot)

    @classmethod
    def _fail_with(cls, slot: _Slot, exc: BaseException, errors: list[ReaderError]) -> None:
        name = slot.reader.name
        if isinstance(exc, ReadError | OSError):
            cls._fail(slot, "error", f"{name}: {exc}", errors)
            return
        bug = type(exc).__qualname__
        if bug not in slot.logged_bugs and len(slot.logged_bugs) < MAX_LOGGED_BUG_TYPES:
            slot.logged_bugs.add(bug)
            log.error(
                "reader %s raised %s, a bug (reported as kind panic; logged once)",
                name,
                bug,
                exc_info=exc,
            )
        cls._fail(slot, "panic", f"{name}: unexpected {bug}: {exc}", errors)

    @staticmethod
    def _fail(slot: _Slot, kind: str, message: str, errors: list[ReaderError]) -> None:
        with slot.stats_lock:
            slot.stats.errors[kind] = slot.stats.errors.get(kind, 0) + 1
        errors.append(ReaderError(kind=kind, message=message, section=slot.reader.section.value))  # type: ignore[arg-type]
