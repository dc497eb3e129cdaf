"""Readers whose set-up touches hardware: built on the first read, in the collector's worker.

A probe in a constructor is a read without a timeout: `nvmlInit()` on a GPU that
fell off the bus blocks for good, and so would every command before its first
line of output. `DeferredReader` holds only a name, a section and a `build`
function; the first `read()` calls `build` on the collector's worker thread, so
the collector's timeout bounds set-up exactly as it bounds a read. While `build`
is stuck the section reports `timeout`; when it returns, the next read uses the
reader it built, without a restart.

`build` returns None when the hardware is not there at all (no NVIDIA library, no
amdgpu card): the reader is then `absent` and the collector stops calling it.
An exception leaves it unbuilt and is reported like a failed read; the next
read tries `build` again.

A GPU reader is also asked for its processes, from the process reader's worker. That
call waits for a set-up in progress (under the process reader's own timeout) rather
than answer before the GPUs are known: on the first frame both run at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from smicast.include import Section
from smicast.readers import GpuProcess, GpuReader, Item, Reader

R = TypeVar("R", bound=Reader)


class DeferredReader(Generic[R]):
    def __init__(self, name: str, section: Section, build: Callable[[], R | None]) -> None:
        self.name = name
        self.section = section
        self._build = build
        self._reader: R | None = None
        self.absent = False  # set once `build` has said the hardware is not here
        self._building = threading.Lock()

    @property
    def reader(self) -> R | None:
        """The built reader, or None while set-up has not finished (or found nothing)."""
        return self._reader

    @property
    def ready(self) -> bool:
        """Set up: built, and (a reader that sets itself up again, e.g. after a reload) ready."""
        reader = self._reader
        return self.absent or (reader is not None and bool(getattr(reader, "ready", True)))

    def _set_up(self) -> R | None:
        reader = self._reader
        if reader is not None or self.absent:
            return reader
        with self._building:
            if self._reader is None and not self.absent:
                built = self._build()
                if built is None:
                    self.absent = True
                self._reader = built
            return self._reader

    def read(self) -> Sequence[Item]:
        reader = self._set_up()
        return [] if reader is None else reader.read()


class DeferredGpuReader(DeferredReader[GpuReader]):
    """A GPU reader set up on first read; its processes are known once it is set up."""

    def read_processes(self) -> Sequence[GpuProcess]:
        reader = self._set_up()
        return [] if reader is None else reader.read_processes()
