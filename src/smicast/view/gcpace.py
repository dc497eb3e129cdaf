"""When the terminal viewer collects garbage: on its own clock, not inside a key's handling.

CPython collects when allocations pass a threshold, and a key that changes the layout
allocates more than anything else the viewer does: with 64 GPUs, half of the slowest
key presses had a full collection of 17 to 37 ms inside them. So once the first frame
is on the screen, `GcPacer.start()`:

- freezes what is alive then (Textual's DOM and CSS, every module: about 50,000
  objects), so no collection walks it again;
- raises the threshold of the youngest generation to `SAFETY_THRESHOLD` allocations,
  a backstop that only a burst far beyond the viewer's own ever reaches;
- collects the young generations every `young_every_s` and everything every
  `full_every_s`, from the event loop, between the viewer's other work.

Garbage cycles therefore live at most a second (or until the backstop), and memory
stays bounded. A fleet viewer, which allocates for hundreds of hosts a second, is
paced the same way.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Final, Protocol

SAFETY_THRESHOLD: Final = 100_000


class Collector(Protocol):
    """The parts of the `gc` module the pacer uses (a fake in tests)."""

    def freeze(self) -> None: ...
    def collect(self, generation: int = 2) -> int: ...
    def get_threshold(self) -> tuple[int, int, int]: ...
    def set_threshold(
        self, threshold0: int, threshold1: int = ..., threshold2: int = ...
    ) -> None: ...


class GcPacer:
    def __init__(
        self,
        *,
        young_every_s: float = 1.0,
        full_every_s: float = 30.0,
        collector: Collector = gc,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.young_every_s = young_every_s
        self.full_every_s = full_every_s
        self._gc = collector
        self._clock = clock
        self._handle: asyncio.TimerHandle | None = None
        self._last_full = 0.0
        self.collections = [0, 0, 0]  # by the oldest generation collected

    def start(self) -> None:
        """Freeze what is alive and take over the timing; call it from the event loop."""
        if self._handle is not None:
            return
        self._gc.freeze()
        _, threshold1, threshold2 = self._gc.get_threshold()
        self._gc.set_threshold(SAFETY_THRESHOLD, threshold1, threshold2)
        self._last_full = self._clock()
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.young_every_s, self._tick)

    def _tick(self) -> None:
        now = self._clock()
        generation = 2 if now - self._last_full >= self.full_every_s else 1
        if generation == 2:
            self._last_full = now
        self._gc.collect(generation)
        self.collections[generation] += 1
        self._schedule()
