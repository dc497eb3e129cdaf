"""A history ring: the last readings of one series, and the bucket maxima a sparkline draws.

`HISTORY_SAMPLES` readings per series: at the viewer's fastest interval (0.5 s) that is
more than 5 minutes, at 1 s about 17.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Final

HISTORY_SAMPLES: Final = 1024


class Ring:
    """The last `size` readings of one series; None marks a missing reading."""

    __slots__ = ("_buckets", "_values", "drawn", "pushes")

    def __init__(self, size: int = HISTORY_SAMPLES) -> None:
        self._values: deque[float | None] = deque(maxlen=size)
        self.pushes = 0  # readings ever pushed: what a drawing of the ring is valid for
        self.drawn: tuple[object, str] | None = None  # a view's cached drawing of it
        # bucket size -> (maxima of whole buckets, maximum of the bucket being filled)
        self._buckets: dict[int, tuple[deque[float | None], list[float | None]]] = {}

    def push(self, value: float | None) -> None:
        self._values.append(value)
        self.pushes += 1
        if not self._buckets:  # no view draws this series: nothing more to keep
            return
        for size, (done, filling) in self._buckets.items():
            filling.append(value)
            if len(filling) == size:
                done.append(_peak(filling))
                filling.clear()

    def peaks(self, size: int, n: int) -> list[float | None]:
        """The maxima of the last `n` buckets of `size` readings, the newest (partial) last.

        Buckets are aligned to the readings' count, so a finished bucket never changes
        and a sparkline costs O(1) a reading to keep, not a pass over its whole window.
        """
        if size not in self._buckets:
            if len(self._buckets) >= 8:
                self._buckets.clear()  # a few widths are in use at a time
            done: deque[float | None] = deque(maxlen=max(n, len(self._values) // size + 1))
            filling: list[float | None] = []
            first = self.pushes - len(self._values)  # the count of the oldest reading held
            for i, value in enumerate(self._values, start=first):
                if i % size == 0 and i != first and filling:
                    done.append(_peak(filling))
                    filling = []
                filling.append(value)
            if len(filling) == size:
                done.append(_peak(filling))
                filling = []
            self._buckets[size] = (done, filling)
        done, filling = self._buckets[size]
        if done.maxlen is not None and done.maxlen < n:
            done = deque(done, maxlen=n)
            self._buckets[size] = (done, filling)
        out = list(done)
        if filling:
            out.append(_peak(filling))
        return out[-n:]

    def last(self, n: int) -> list[float | None]:
        if n <= 0:
            return []
        values = self._values
        if n >= len(values):
            return list(values)
        return list(islice(values, len(values) - n, None))

    def latest(self) -> float | None:
        return self._values[-1] if self._values else None

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        self._values.clear()
        self._buckets.clear()
        self.pushes = 0
        self.drawn = None


def _peak(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None
