"""The GPU process table: sorting, filtering, rendering, and signalling a process.

Signalling is for the local source only (a remote or recorded pid is not a
process here), and only where this user may: `os.kill(pid, 0)` asks the kernel
without sending anything. Before the signal is sent, the process's start time is
compared with the frame's, so a pid reused by another process since the frame
was read is never signalled.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from rich.cells import cell_len
from rich.cells import set_cell_size as rich_set_cell_size
from rich.text import Text

from smicast.schema import ProcessInfo
from smicast.view.text import Lines, built_text, clean, inert

MAX_FILTER_CHARS: Final = 128


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    sort: Callable[[ProcessInfo], object]
    justify: str = "right"


COLUMNS: Final = (
    Column("pid", "PID", lambda p: p.pid),
    Column("user", "USER", lambda p: p.user, "left"),
    Column("gpu", "GPU", lambda p: p.device_id),
    Column("memory", "GPU MEM", lambda p: p.used_memory),
    Column("cpu", "CPU %", lambda p: p.cpu_percent if p.cpu_percent is not None else -1.0),
    Column("command", "COMMAND", lambda p: p.command or p.process_name, "left"),
)
COLUMN_KEYS: Final = tuple(c.key for c in COLUMNS)


@dataclass
class ProcessView:
    """What the table shows: sort column and direction, filter text, selected pid."""

    sort_key: str = "memory"
    descending: bool = True
    filter_text: str = ""
    selected_pid: int | None = None

    def sort_by(self, key: str) -> None:
        """Sort by `key`; the same key again turns the direction around."""
        if key not in COLUMN_KEYS:
            raise ValueError(f"unknown column {key!r}")
        if key == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = key, key in ("memory", "cpu")

    def next_sort(self) -> None:
        i = COLUMN_KEYS.index(self.sort_key)
        self.sort_by(COLUMN_KEYS[(i + 1) % len(COLUMN_KEYS)])

    def set_filter(self, text: str) -> None:
        self.filter_text = text[:MAX_FILTER_CHARS]

    def rows(self, processes: Sequence[ProcessInfo]) -> list[ProcessInfo]:
        needle = self.filter_text.lower()
        chosen = [
            p
            for p in processes
            if not needle
            or needle in p.command.lower()
            or needle in p.process_name.lower()
            or needle in p.user.lower()
            or needle == str(p.pid)
        ]
        column = next(c for c in COLUMNS if c.key == self.sort_key)
        chosen.sort(key=lambda p: (column.sort(p), p.pid), reverse=self.descending)
        return chosen

    def move(self, rows: Sequence[ProcessInfo], step: int) -> None:
        if not rows:
            self.selected_pid = None
            return
        pids = [p.pid for p in rows]
        i = pids.index(self.selected_pid) if self.selected_pid in pids else -1
        self.selected_pid = pids[min(max(i + step, 0), len(pids) - 1)]

    def selected(self, rows: Sequence[ProcessInfo]) -> ProcessInfo | None:
        return next((p for p in rows if p.pid == self.selected_pid), None)


def column_widths(width: int) -> list[int]:
    """Cells per column (the command takes what is left); the click targets of the header."""
    fixed = [8, 12, 4, 9, 7]
    return [*fixed, max(10, width - sum(fixed) - len(fixed))]  # one space between columns


def column_at(x: int, width: int) -> str | None:
    """The column under cell `x` of the header line."""
    start = 0
    for column, cells in zip(COLUMNS, column_widths(width), strict=True):
        if start <= x < start + cells + 1:
            return column.key
        start += cells + 1
    return None


HEADER_LINE: Final = 1  # the title is line 0


def fit(text: str, cells: int, justify: str = "left") -> str:
    """`text` cut (with an ellipsis) or padded to exactly `cells` terminal cells."""
    if text.isascii():
        if len(text) > cells:
            text = text[: cells - 1] + "…"
        return text.rjust(cells) if justify == "right" else text.ljust(cells)
    return set_cell_size(text if cell_len(text) <= cells else _cut(text, cells), cells, justify)


def _cut(text: str, cells: int) -> str:
    return set_cell_size(text, cells - 1) + "…"


def set_cell_size(text: str, cells: int, justify: str = "left") -> str:
    fitted = rich_set_cell_size(text, cells)
    if justify == "right":
        stripped = fitted.rstrip(" ")
        return " " * (cells - cell_len(stripped)) + stripped
    return fitted


def process_table(
    view: ProcessView, rows: Sequence[ProcessInfo], total: int, width: int, max_rows: int = 0
) -> Text:
    """Title, header and one line per process (at most `max_rows` when set), as one Text.

    Lines are built as strings with one style span each: a table of a hundred
    processes is redrawn every frame, and Text segments per cell cost several times more.
    """
    widths = column_widths(width)
    title = Text(f"GPU processes {len(rows)}/{total}", style="bold")
    if view.filter_text:
        title.append("  filter: ")
        title.append_text(inert(view.filter_text, style="yellow"))
    arrow = "▼" if view.descending else "▲"
    header = " ".join(
        fit(c.title + (arrow if c.key == view.sort_key else ""), n, c.justify)
        for c, n in zip(COLUMNS, widths, strict=True)
    )
    lines = [title, Text(header, style="bold reverse")]
    shown = rows if max_rows <= 0 else rows[:max_rows]
    w_pid, w_user, w_gpu, w_mem, w_cpu, w_cmd = widths
    for p in shown:
        cpu = "" if p.cpu_percent is None else f"{p.cpu_percent:.1f}"
        line = " ".join(
            (
                fit(str(p.pid), w_pid, "right"),
                fit(clean(p.user), w_user),
                fit(str(p.device_id), w_gpu, "right"),
                fit(f"{p.used_memory / (1 << 20):.0f}M", w_mem, "right"),
                fit(cpu, w_cpu, "right"),
                fit(clean(p.command or p.process_name), w_cmd),
            )
        )
        lines.append(built_text(line, [], "reverse" if p.pid == view.selected_pid else ""))
    if len(shown) < len(rows):
        lines.append(
            Text(f"... {len(rows) - len(shown)} more (sort or filter with /)", style="dim")
        )
    if not rows:
        lines.append(
            Text(
                "no GPU processes" + (" match the filter" if view.filter_text else ""), style="dim"
            )
        )
    return Lines(lines)


# ---------------------------------------------------------------- signals


class SignalRefused(Exception):
    """The process cannot be signalled; the message is what the user sees."""


def _start_time(pid: int) -> int | None:
    import psutil  # type: ignore[import-untyped]  # a dependency; ships no type stubs

    try:
        return int(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def check_signal(
    proc: ProcessInfo,
    *,
    kill: Callable[[int, int], None] = os.kill,
    start_time: Callable[[int], int | None] = _start_time,
) -> None:
    """Raises SignalRefused unless this user may signal `proc` and it is still that process."""
    if proc.pid <= 1 or proc.pid == os.getpid():
        raise SignalRefused(f"pid {proc.pid} is not signalled from here")
    try:
        kill(proc.pid, 0)
    except ProcessLookupError:
        raise SignalRefused(f"pid {proc.pid} has exited") from None
    except PermissionError:
        raise SignalRefused(
            f"not permitted to signal pid {proc.pid} (user {clean(proc.user, 32)})"
        ) from None
    if proc.start_time.isdigit():
        started = start_time(proc.pid)
        if started is not None and abs(started - int(proc.start_time)) > 1:
            raise SignalRefused(f"pid {proc.pid} now belongs to another process")


def send_signal(
    proc: ProcessInfo,
    sig: signal.Signals,
    *,
    kill: Callable[[int, int], None] = os.kill,
    start_time: Callable[[int], int | None] = _start_time,
) -> str:
    """Check, then send; returns what happened for the status line."""
    check_signal(proc, kill=kill, start_time=start_time)
    try:
        kill(proc.pid, sig)
    except ProcessLookupError:
        raise SignalRefused(f"pid {proc.pid} has exited") from None
    except PermissionError:
        raise SignalRefused(f"not permitted to signal pid {proc.pid}") from None
    return f"sent {sig.name} to pid {proc.pid}"
