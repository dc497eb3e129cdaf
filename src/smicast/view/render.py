"""The viewer's panels as Rich renderables, one per panel, from a `HostView` and a width.

Pure functions of the model (no Textual), so they are tested and reused without a
terminal. Every untrusted string goes through `inert()`. Up to 8 GPUs get a block
each (two lines: readings, then bars and sparklines of the last 5 minutes); more
get one compact row each; a wide terminal lays blocks and rows out in columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rich.text import Span, Text

from smicast.record.format import format_clock
from smicast.view.alerts import Level
from smicast.view.model import GpuView, HostView, Ring
from smicast.view.processes import fit
from smicast.view.replay import ReplayStatus
from smicast.view.text import Lines, built_text, clean, inert

COMPACT_ABOVE_GPUS: Final = 8
# A compact row's narrowest column: a 160-column terminal holds two, so 64 GPUs take 32
# lines and leave room for the CPU cores and the processes on a 50-line screen.
COMPACT_COLUMN_CELLS: Final = 79
SPARK_WINDOW_SAMPLES: Final = 300  # 5 minutes at 1 s; more at faster intervals are bucketed
_SPARKS: Final = " ▁▂▃▄▅▆▇█"
_LEVEL_STYLE: Final = {Level.OK: "", Level.WARN: "bold yellow", Level.CRIT: "bold red"}
GIB: Final = 1 << 30


def level_style(value: float | None, warn: float, crit: float) -> str:
    if value is None:
        return "dim"
    return "red" if value >= crit else "yellow" if value >= warn else "green"


class LineBuilder:
    """A Text built from (string, style) pieces in one go: far cheaper than Text.append per cell."""

    __slots__ = ("_parts", "_pos", "_spans")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._spans: list[Span] = []
        self._pos = 0

    def add(self, piece: str, style: str = "") -> None:
        if style and piece:
            self._spans.append(Span(self._pos, self._pos + len(piece), style))
        self._parts.append(piece)
        self._pos += len(piece)

    def add_text(self, text: Text) -> None:
        base = self._pos
        if text.style:
            self._spans.append(Span(base, base + len(text.plain), text.style))
        self._spans.extend(Span(base + sp.start, base + sp.end, sp.style) for sp in text.spans)
        self._parts.append(text.plain)
        self._pos += len(text.plain)

    def add_fitted(self, text: Text, cells: int) -> None:
        """`text` cut with an ellipsis, or padded, to exactly `cells` cells (a column)."""
        plain = text.plain
        fitted = fit(plain, cells)
        keep = len(plain) if len(fitted) >= len(plain) and fitted.startswith(plain) else cells - 1
        base = self._pos
        if text.style and keep > 0:
            self._spans.append(Span(base, base + keep, text.style))
        for start, end, style in text.spans:
            if start < keep:
                self._spans.append(Span(base + start, base + min(end, keep), style))
        self._parts.append(fitted)
        self._pos += len(fitted)

    def add_bar(self, value: float | None, width: int, warn: float = 70, crit: float = 90) -> None:
        """A bar of `width` cells for a 0..100 value; eighths of a cell for the fraction."""
        width = max(1, width)
        if value is None:
            self.add("·" * width, "dim")
            return
        filled = max(0.0, min(100.0, value)) * width / 100
        whole = int(filled)
        part = int((filled - whole) * 8)
        body = "█" * whole + (" ▏▎▍▌▋▊▉"[part] if whole < width and part else "")
        self.add(body, level_style(value, warn, crit))
        self.add("·" * (width - len(body)), "dim")

    @property
    def cells(self) -> int:
        return self._pos  # every piece here is one cell a character

    def text(self, style: str = "") -> Text:
        return built_text("".join(self._parts), self._spans, style)


def bar(value: float | None, width: int, *, warn: float = 70, crit: float = 90) -> Text:
    line = LineBuilder()
    line.add_bar(value, width, warn, crit)
    return line.text()


def sparkline(ring: Ring, width: int, *, top: float = 100.0) -> str:
    """At least the last 5 minutes of `ring` in `width` cells, newest on the right, kept
    with the ring until it changes.

    The time axis is fixed (each cell is the maximum of the same number of readings,
    and cells before the first reading are blank), so the line scrolls, not stretches.
    """
    if width <= 0:
        return ""
    key = (ring.pushes, width, top)
    if ring.drawn is None or ring.drawn[0] != key:
        ring.drawn = (key, _sparkline(ring, width, top))
    return ring.drawn[1]


def _sparkline(ring: Ring, width: int, top: float) -> str:
    per_cell = -(-SPARK_WINDOW_SAMPLES // width)  # readings a cell: width x this >= 5 minutes
    peaks = ring.peaks(per_cell, width)
    scale = 8 / (top or 1.0)
    sparks = _SPARKS
    chars = [" "] * (width - len(peaks))
    for peak in peaks:
        chars.append(
            " " if peak is None or peak < 0 else sparks[min(8, max(1, round(peak * scale)))]
        )
    return "".join(chars)


def fmt_num(value: float | None, unit: str, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def fmt_bytes(n: int) -> str:
    return f"{n / GIB:.1f}G" if n >= GIB else f"{n / (1 << 20):.0f}M"


def fmt_age(age_s: float | None) -> str:
    if age_s is None:
        return "waiting"
    return f"{age_s:.1f}s" if age_s < 60 else f"{age_s / 60:.0f}m"


# ---------------------------------------------------------------- host bar


def host_bar(host: HostView | None, source_label: str, now_s: float, width: int) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    if host is None:
        line.append("waiting for the first frame from ", style="dim")
        line.append_text(inert(source_label))
        return line
    line.append_text(inert(host.hostname or host.key, style="bold"))
    cpu, mem, power = host.cpu_utilization(), host.memory_utilization(), host.chassis_power_w()
    narrow = width < 100
    cells = 6 if narrow else 10
    line.append("  CPU ")
    line.append_text(bar(cpu, cells))
    line.append(f" {fmt_num(cpu, '%'):>4}")
    line.append("  MEM ")
    line.append_text(bar(mem, cells))
    line.append(f" {fmt_num(mem, '%'):>4}")
    mems = host.memories
    if mems and not narrow:
        used, total = sum(m.used_bytes for m in mems), sum(m.total_bytes for m in mems)
        line.append(f" {fmt_bytes(used)}/{fmt_bytes(total)}", style="dim")
    line.append(f"  PWR {fmt_num(power, 'W')}")
    line.append(f"  GPUs {len(host.gpus)}")
    age = host.age_s(now_s)
    line.append("  age ")
    line.append(fmt_age(age), style="bold red" if host.source_error else "")
    line.append("  ")
    line.append_text(inert(source_label, style="dim"))
    if host.source_error:
        error = Text("  ! ", style="bold red")
        error.append_text(inert(host.source_error, style="red"))
        return _lines([line, error])
    return line


# ---------------------------------------------------------------- GPUs


def _notes(gpu: GpuView, level: Level, errors: Sequence[str]) -> list[tuple[str, str]]:
    """(text, style) pieces after a GPU's readings: alert level, throttling, reader errors."""
    notes: list[tuple[str, str]] = []
    if level is not Level.OK:
        notes.append((f" {level.label.upper()}", _LEVEL_STYLE[level]))
    info = gpu.info
    slowdown = info.temperature_threshold_slowdown
    if slowdown and info.temperature >= slowdown:
        notes.append((" THROTTLE", "bold red"))
    for key in gpu.throttle_keys:
        value = info.detail.get(key, "")
        if value not in ("", "0", "None", "none", "0x0"):
            notes.append((" " + clean(f"{key}={value}", 40), "yellow"))
    for message in errors:
        notes.append((" " + clean(message, 60), "red"))
    return notes


def _pstate(info_pstate: int | None, detail: dict[str, str]) -> str:
    if info_pstate is not None:
        return f"P{info_pstate}"
    return detail.get("performance_state", "")


def _watts(text: str) -> float | None:
    try:
        return float(text.strip().removesuffix("W").strip())
    except ValueError:
        return None


def _gpu_block(
    gpu: GpuView, level: Level, errors: Sequence[str], width: int, dense: bool
) -> list[Text]:
    info = gpu.info
    head = LineBuilder()
    head.add(f"GPU{gpu.index} ", "bold")
    head.add(clean(info.name, 40), "bold")
    pstate = _pstate(info.performance_state, info.detail)
    if pstate:
        head.add(f"  {clean(pstate, 16)}", "dim")
    temp = gpu.temperature.latest()
    head.add("  ")
    head.add(fmt_num(temp, "°C"), level_style(temp, 80, 90))
    power = gpu.power.latest()
    head.add(f"  {fmt_num(power, 'W')}")
    limit = _watts(info.detail.get("power_limit_current", ""))
    if limit is not None:
        head.add(f"/{limit:.0f}W", "dim")
    if info.frequency:
        head.add(f"  {info.frequency} MHz", "dim")
    for piece, style in _notes(gpu, level, errors):
        head.add(piece, style)

    util, mem = gpu.util.latest(), gpu.memory.latest()
    half = max(20, (width - 2) // 2)
    cells = max(4, min(20, half // 3))
    spark = max(0, half - cells - 17)
    body = LineBuilder()
    body.add(" UTIL ")
    body.add_bar(util, cells)
    body.add(f" {fmt_num(util, '%'):>4} ")
    body.add(sparkline(gpu.util, spark), "green")
    body.add("  MEM ")
    body.add_bar(mem, cells)
    body.add(f" {fmt_num(mem, '%'):>4} ")
    body.add(sparkline(gpu.memory, spark), "magenta")
    lines = [head.text(), body.text()]
    if not dense:
        temps = LineBuilder()
        spark_t = max(0, half - 13)
        temps.add(f" TEMP {fmt_num(temp, '°C'):>6} ")
        temps.add(sparkline(gpu.temperature, spark_t, top=100), "yellow")
        temps.add(f"  PWR {fmt_num(power, 'W'):>6} ")
        top_w = max((v for v in gpu.power.last(SPARK_WINDOW_SAMPLES) if v is not None), default=1.0)
        temps.add(sparkline(gpu.power, spark_t, top=top_w), "blue")
        lines.append(temps.text())
    return lines


def _gpu_row(gpu: GpuView, level: Level, errors: Sequence[str], width: int) -> Text:
    info = gpu.info
    util, mem, temp, power = (
        gpu.util.latest(),
        gpu.memory.latest(),
        gpu.temperature.latest(),
        gpu.power.latest(),
    )
    cells = 6 if width < 90 else 10
    row = LineBuilder()
    row.add(f"{gpu.index:>3} ", "bold")
    name_cells = 13 if width < 90 else 21  # and a space before the bar
    row.add(fit(clean(info.name.removeprefix("NVIDIA "), name_cells), name_cells) + " ")
    row.add_bar(util, cells)
    row.add(f"{fmt_num(util, '%'):>5} ")
    row.add_bar(mem, cells, 80, 95)
    row.add(f"{fmt_num(mem, '%'):>5} ")
    row.add(f"{fmt_num(temp, '°C'):>5}", level_style(temp, 80, 90))
    row.add(f"{fmt_num(power, 'W'):>6} ")
    row.add(f"{clean(_pstate(info.performance_state, info.detail), 8):<3}", "dim")
    notes = _notes(gpu, level, errors)
    spark = width - row.cells - sum(len(piece) for piece, _ in notes) - 2
    if spark >= 6:
        row.add(" ")
        row.add(sparkline(gpu.util, min(spark, 60)), "green")
    for piece, style in notes:
        row.add(piece, style)
    return row.text()


def _columns(
    items: Sequence[list[Text]], width: int, min_col: int, *, down_first: bool = False
) -> Text:
    """Items in as many columns as fit; across then down, or down each column first.

    Lines are joined side by side by hand: a Rich table measures every cell on every
    draw, which costs more than drawing the GPUs themselves.
    """
    n = max(1, min(len(items), width // min_col))
    if n == 1:
        return _lines([line for item in items for line in item])
    col = (width - (n - 1)) // n
    rows = -(-len(items) // n)
    out: list[Text] = []
    blank = Text()
    for r in range(rows):
        picks = [r + c * rows if down_first else r * n + c for c in range(n)]
        chosen = [items[i] for i in picks if i < len(items)]
        for k in range(max(len(item) for item in chosen)):
            line = LineBuilder()
            for c, item in enumerate(chosen):
                part = item[k] if k < len(item) else blank
                if c < len(chosen) - 1:
                    line.add_fitted(part, col)
                    line.add(" ")
                else:
                    line.add_text(part)
            out.append(line.text())
    return _lines(out)


def _lines(lines: list[Text]) -> Text:
    """One Text of many lines: drawn in one pass, where a Group draws each line apart."""
    return Lines(lines)


def gpu_panel(host: HostView | None, width: int, height: int = 50) -> Text:
    """GPU blocks (up to 8) or compact rows; `height` is the terminal's: a short one gets
    two-line blocks, without the temperature and power sparklines."""
    if host is None or not host.gpus:
        return Text("no GPUs in this frame", style="dim")
    levels = host.alert_levels()
    gpu_errors = [e.message for e in host.errors if e.section == "gpu"]
    gpus = host.gpu_list()
    if len(gpus) <= COMPACT_ABOVE_GPUS:
        col = 78
        n = max(1, min(len(gpus), width // col))
        inner = width // n - 1
        dense = height < 40
        blocks = [
            _gpu_block(g, levels.get(g.key, Level.OK), gpu_errors, inner, dense) for g in gpus
        ]
        return _columns(blocks, width, col)
    min_col = COMPACT_COLUMN_CELLS
    n = max(1, min(len(gpus), width // min_col))
    inner = width // n - 1
    rows = [[_gpu_row(g, levels.get(g.key, Level.OK), (), inner)] for g in gpus]
    if gpu_errors:
        rows.append([inert("; ".join(gpu_errors), style="red")])
    return _columns(rows, width, min_col, down_first=True)


# ---------------------------------------------------------------- CPU cores


def cpu_panel(host: HostView | None, width: int) -> Text:
    cores = [c for cpu in (host.cpus if host else []) for c in cpu.per_core_utilization]
    if not cores:
        return Text("no per-core CPU readings", style="dim")
    cell = 17  # " 123 ▇▇▇▇▇▇ 100% "
    per_line = max(1, width // cell)
    text = LineBuilder()
    for i, core in enumerate(cores):
        util = core.utilization
        text.add(f"{core.core_id:>4} ", "dim")
        text.add_bar(util, 6)
        text.add(f"{fmt_num(util, '%'):>5}")
        text.add("\n" if (i + 1) % per_line == 0 and i + 1 < len(cores) else " ")
    return text.text()


def replay_bar(status: ReplayStatus | None) -> Text:
    if status is None:
        return Text()
    state = "playing" if status.playing else "paused"
    loop = " | loop" if status.loop else ""
    return Text(
        f"REPLAY | {format_clock(status.offset_s)} / {format_clock(status.duration_s)} | "
        f"frame {status.position + 1} / {status.frames} | {status.speed:g}x | {state}{loop}",
        style="bold reverse",
        no_wrap=True,
        overflow="ellipsis",
    )


def events_panel(host: HostView | None, width: int, max_lines: int = 12) -> Text:
    """The frame's reader errors, then active alerts, then the latest alert transitions."""
    lines: list[Text] = []
    for err in host.errors if host else []:
        line = Text(f"{err.section} {err.kind}: ", style="bold red")
        line.append_text(inert(err.message, style="red"))
        lines.append(line)
    if host is not None:
        for key, level in host.alert_levels().items():
            gpu = host.gpus.get(key)
            label = gpu.label if gpu else key
            line = Text(f"{level.label.upper()} ", style=_LEVEL_STYLE[level])
            line.append_text(inert(label))
            lines.append(line)
        for t in list(host.alerts.log)[-max(0, max_lines - len(lines)) :][::-1]:
            line = Text(format_clock(t.at_s % 86400) + " ", style="dim")
            line.append_text(inert(t.message(), style=_LEVEL_STYLE[t.after] or "green"))
            lines.append(line)
    if not lines:
        return Text("no reader errors, no alerts", style="dim")
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return _lines(lines[:max_lines])
