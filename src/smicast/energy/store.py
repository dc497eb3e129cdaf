"""The energy totals on disk: one small JSON file in the state directory.

Written whole and atomically (a 0600 temporary file beside it, fsync, rename; never
through a symbolic link), so a crash leaves the previous totals or the new ones.
Reading never stops the agent: a missing, unreadable, oversized, corrupt or foreign
file (another host, another format version) starts every counter from zero with one
warning that says why. The file names its host: a state directory copied to another
machine does not hand that machine's counters a head start.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Final

import msgspec

from smicast.energy.meter import MAX_DEVICES, EnergyKey, Scope
from smicast.fsutil import atomic_write
from smicast.schema import utc_timestamp

log = logging.getLogger("smicast.energy")

STATE_FILE: Final = "energy.json"
FORMAT: Final = "smicast-energy"
VERSION: Final = 1
MAX_STATE_BYTES: Final = 4 * 1024 * 1024
MAX_UUID_CHARS: Final = 256
_READ_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class _Entry(msgspec.Struct, frozen=True):
    scope: Scope
    joules: Annotated[float, msgspec.Meta(ge=0)]
    uuid: Annotated[str, msgspec.Meta(max_length=MAX_UUID_CHARS)] = ""


class _Head(msgspec.Struct, frozen=True):
    format: str = ""
    version: int = 0
    host: str = ""


class _StateFile(msgspec.Struct, frozen=True):
    format: str
    version: int
    host: str
    saved_at: str
    counters: Annotated[list[_Entry], msgspec.Meta(max_length=MAX_DEVICES)]


class EnergyStore:
    def __init__(
        self, directory: Path, hostname: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self.hostname = hostname
        self._clock = clock
        self._lock = threading.Lock()  # a periodic save and the final one never interleave
        self._failing = False

    def load(self) -> dict[EnergyKey, float]:
        """The saved totals of this host; {} (and one warning) when there are none to trust."""
        try:
            raw = self._read()
        except FileNotFoundError:
            log.warning("energy: no saved totals at %s; counters start at zero", self.path)
            return {}
        except OSError as exc:
            why = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
            log.warning("energy: cannot read %s (%s); counters start at zero", self.path, why)
            return {}
        problem, totals = _parse(raw, self.hostname)
        if problem:
            log.warning("energy: ignoring %s: %s; counters start at zero", self.path, problem)
            return {}
        log.info("energy: carried over %d totals from %s", len(totals), self.path)
        return totals

    def _read(self) -> bytes:
        fd = os.open(self.path, _READ_FLAGS)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            chunks, size = [], 0
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_STATE_BYTES:
                    raise OSError(errno.EFBIG, f"larger than {MAX_STATE_BYTES} bytes")
            return b"".join(chunks)
        finally:
            os.close(fd)

    def save(self, totals: Mapping[EnergyKey, float]) -> bool:
        """Write `totals` (this host's); False, with a warning the first time, on failure."""
        entries = [
            _Entry(scope=key.scope, joules=round(joules, 3), uuid=key.device)
            for key, joules in sorted(totals.items())
            if key.host == self.hostname
            and math.isfinite(joules)
            and joules > 0
            # A GPU without a usable UUID cannot be told apart after a restart.
            and (key.scope is not Scope.GPU or 0 < len(key.device) <= MAX_UUID_CHARS)
        ][:MAX_DEVICES]
        body = _StateFile(
            format=FORMAT,
            version=VERSION,
            host=self.hostname,
            saved_at=utc_timestamp(self._clock()),
            counters=entries,
        )
        data = msgspec.json.format(msgspec.json.encode(body), indent=1) + b"\n"
        with self._lock:
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                atomic_write(self.path, data)
            except OSError as exc:
                if not self._failing:
                    log.warning(
                        "energy: cannot save totals (%s); they stay in memory only until it works",
                        exc.strerror or exc,
                    )
                self._failing = True
                return False
        if self._failing:
            log.info("energy: saving totals to %s works again", self.path)
            self._failing = False
        return True


def _parse(raw: bytes, hostname: str) -> tuple[str | None, dict[EnergyKey, float]]:
    """(problem, totals): a problem names why the file is not used."""
    try:
        head = msgspec.json.decode(raw, type=_Head)
    except msgspec.DecodeError:
        return "not a JSON object (corrupt or cut short)", {}
    if head.format != FORMAT:
        return f"not an smicast energy file (format {head.format[:64]!r})", {}
    if head.version != VERSION:
        return f"format version {head.version}, this smicast reads {VERSION}", {}
    if head.host != hostname:
        return f"written on host {head.host[:256]!r}, this is {hostname!r}", {}
    try:
        state = msgspec.json.decode(raw, type=_StateFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"corrupt ({str(exc)[:200]})", {}
    totals: dict[EnergyKey, float] = {}
    for entry in state.counters:
        if not math.isfinite(entry.joules):
            return "corrupt (a total is not a finite number)", {}
        if (entry.scope is Scope.GPU) != bool(entry.uuid):
            return "corrupt (a GPU total without a UUID, or a host total with one)", {}
        key = EnergyKey(entry.scope, hostname, entry.uuid)
        totals[key] = totals.get(key, 0.0) + entry.joules
    return None, totals
