"""One updating status line for a person watching `record` on a terminal.

Only when stderr or stdout is a terminal: a recording run from a script or a
service writes nothing extra. Redrawn at most four times a second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Final, TextIO

from smicast.record.format import format_clock
from smicast.record.writer import WriterStats

_REDRAW_EVERY_S: Final = 0.25
_CLEAR_LINE: Final = "\r\x1b[K"


def terminal_stream() -> TextIO | None:
    """stderr if it is a terminal, else stdout if that is one, else None."""
    for stream in (sys.stderr, sys.stdout):
        try:
            if stream is not None and stream.isatty():
                return stream
        except ValueError:  # closed
            continue
    return None


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def status_line(stats: WriterStats, elapsed_s: float, duration_s: float) -> str:
    parts = [
        f"{stats.frames} frames",
        f"raw {human_bytes(stats.raw_bytes)}",
        f"written {human_bytes(stats.written_bytes)}",
        f"elapsed {format_clock(elapsed_s)}",
    ]
    if duration_s:
        parts.append(f"remaining {format_clock(max(0.0, duration_s - elapsed_s))}")
    return "record: " + ", ".join(parts)


class Progress:
    def __init__(
        self,
        stream: TextIO | None,
        *,
        duration_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.duration_s = duration_s
        self._monotonic = monotonic
        self._started = monotonic()
        self._drawn_at: float | None = None

    def update(self, stats: WriterStats, *, force: bool = False) -> None:
        if self.stream is None:
            return
        elapsed_s = self._monotonic() - self._started
        if (
            not force
            and self._drawn_at is not None
            and elapsed_s - self._drawn_at < _REDRAW_EVERY_S
        ):
            return
        self._drawn_at = elapsed_s
        self.stream.write(_CLEAR_LINE + status_line(stats, elapsed_s, self.duration_s))
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (a warning) without tearing the status line."""
        if self.stream is not None and self._drawn_at is not None:
            self.stream.write(_CLEAR_LINE)
            self.stream.flush()
            self._drawn_at = None  # redraw on the next update, below the message
        print(text, file=sys.stderr, flush=True)

    def finish(self, stats: WriterStats) -> None:
        if self.stream is None:
            return
        self.update(stats, force=True)
        self.stream.write("\n")
        self.stream.flush()
