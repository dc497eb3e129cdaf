"""The viewer's panels as Rich renderables, one per panel, from a `HostView` and a width.

Pure functions of the model (no Textual), so they are tested and reused without a
terminal. Every untrusted string goes through `inert()`. Up to 8 GPUs get a block
each (two lines: readings, then bars and sparklines of the last 5 minutes); more
get one compact row each; a wide terminal lays blocks and rows out in columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from smicast.record.format import format_clock
from smicast.view.alerts import Level
from smicast.view.model import GpuView, HostView, Ring
from smicast.view.replay import ReplayStatus
from smicast.view.text import inert

COMPACT_ABOVE_GPUS: Final = 8
SPARK_WINDOW_SAMPLES: Final = 300  # 5 minutes at 1 s; more at faster intervals are bucketed
_SPARKS: Final = " ▁▂▃▄▅▆▇█"
_LEVEL_STYLE: Final = {Level.OK: "", Level.WARN: "bold yellow", Level.CRIT: "bold red"}
GIB: Final = 1 << 30


def level_style(value: float | None, warn: float, crit: float) -> str:
    if value is None:
        return "dim"
    return "red" if value >= crit else "yellow" if value >= warn else "green"


def bar(value: float | None, width: int, *, warn: float = 70, crit: float = 90) -> Text:
    """A bar of `width` cells for a 0..100 value; eighths of a cell for the fractional part."""
    width = max(1, width)
    if value is None:
        return Text("·" * width, style="dim")
    filled = max(0.0, min(100.0, value)) * width / 100
    whole = int(filled)
    part = int((filled - whole) * 8)
    body = "█" * whole + (" ▏▎▍▌▋▊▉"[part] if whole < width and part else "")
    text = Text(body, style=level_style(value, warn, crit))
    text.append("·" * (width - len(body)), style="dim")
    return text


def sparkline(ring: Ring, width: int, *, top: float = 100.0, style: str = "cyan") -> Text:
    """The last 5 minutes of `ring` (more when wider) in `width` cells, newest on the right.

    The time axis is fixed (each cell is the maximum of `window / width` samples, and
    cells before the first sample are blank), so the line scrolls rather than stretches.
    """
    if width <= 0:
        return Text()
    window = max(SPARK_WINDOW_SAMPLES, width)
    values = ring.last(window)
    values = [*([None] * (window - len(values))), *values]
    step = window / width
    top = top or 1.0
    chars = []
    for i in range(width):
        bucket = [v for v in values[int(i * step) : int((i + 1) * step)] if v is not None]
        if not bucket:
            chars.append(" ")
        else:
            chars.append(_SPARKS[min(8, max(1, round(max(0.0, max(bucket)) / top * 8)))])
    return Text("".join(chars), style=style)


def fmt_num(value: float | None, unit: str, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def fmt_bytes(n: int) -> str:
    return f"{n / GIB:.1f}G" if n >= GIB else f"{n / (1 << 20):.0f}M"


def fmt_age(age_s: float | None) -> str:
    if age_s is None:
        return "waiting"
    return f"{age_s:.1f}s" if age_s < 60 else f"{age_s / 60:.0f}m"


# ---------------------------------------------------------------- host bar


def host_bar(host: HostView | None, source_label: str, now_s: float, width: int) -> RenderableType:
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
        return Group(line, error)
    return line


# ---------------------------------------------------------------- GPUs


def _notes(gpu: GpuView, level: Level, errors: Sequence[str]) -> Text:
    notes = Text()
    info = gpu.info
    if level is not Level.OK:
        notes.append(f" {level.label.upper()}", style=_LEVEL_STYLE[level])
    slowdown = info.temperature_threshold_slowdown
    if slowdown and info.temperature >= slowdown:
        notes.append(" THROTTLE", style="bold red")
    for key, value in info.detail.items():
        if "throttl" in key.lower() and value not in ("", "0", "None", "none", "0x0"):
            notes.append(" ")
            notes.append_text(inert(f"{key}={value}", style="yellow", limit=40))
    for message in errors:
        notes.append(" ")
        notes.append_text(inert(message, style="red", limit=60))
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
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"GPU{gpu.index} ", style="bold")
    head.append_text(inert(info.name, style="bold", limit=40))
    pstate = _pstate(info.performance_state, info.detail)
    if pstate:
        head.append(f"  {pstate}", style="dim")
    temp = gpu.temperature.latest()
    head.append("  ")
    head.append(fmt_num(temp, "°C"), style=level_style(temp, 80, 90))
    power = gpu.power.latest()
    head.append(f"  {fmt_num(power, 'W')}")
    limit = _watts(info.detail.get("power_limit_current", ""))
    if limit is not None:
        head.append(f"/{limit:.0f}W", style="dim")
    if info.frequency:
        head.append(f"  {info.frequency} MHz", style="dim")
    head.append_text(_notes(gpu, level, errors))

    util, mem = gpu.util.latest(), gpu.memory.latest()
    half = max(20, (width - 2) // 2)
    cells = max(4, min(20, half // 3))
    spark = max(0, half - cells - 17)
    body = Text(no_wrap=True, overflow="ellipsis")
    body.append(" UTIL ")
    body.append_text(bar(util, cells))
    body.append(f" {fmt_num(util, '%'):>4} ")
    body.append_text(sparkline(gpu.util, spark, style="green"))
    body.append("  MEM ")
    body.append_text(bar(mem, cells))
    body.append(f" {fmt_num(mem, '%'):>4} ")
    body.append_text(sparkline(gpu.memory, spark, style="magenta"))
    lines = [head, body]
    if not dense:
        temps = Text(no_wrap=True, overflow="ellipsis")
        spark_t = max(0, half - 13)
        temps.append(f" TEMP {fmt_num(temp, '°C'):>6} ")
        temps.append_text(sparkline(gpu.temperature, spark_t, top=100, style="yellow"))
        temps.append(f"  PWR {fmt_num(power, 'W'):>6} ")
        top_w = max((v for v in gpu.power.last(SPARK_WINDOW_SAMPLES) if v is not None), default=1.0)
        temps.append_text(sparkline(gpu.power, spark_t, top=top_w, style="blue"))
        lines.append(temps)
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
    row = Text(no_wrap=True, overflow="ellipsis")
    row.append(f"{gpu.index:>3} ", style="bold")
    row.append_text(inert(info.name.removeprefix("NVIDIA "), limit=14 if width < 90 else 22))
    row.pad_right(max(0, (18 if width < 90 else 26) - row.cell_len))
    row.append_text(bar(util, cells))
    row.append(f"{fmt_num(util, '%'):>5} ")
    row.append_text(bar(mem, cells, warn=80, crit=95))
    row.append(f"{fmt_num(mem, '%'):>5} ")
    row.append(f"{fmt_num(temp, '°C'):>5}", style=level_style(temp, 80, 90))
    row.append(f"{fmt_num(power, 'W'):>6} ")
    row.append(f"{_pstate(info.performance_state, info.detail):<3}", style="dim")
    notes = _notes(gpu, level, errors)
    spark = width - row.cell_len - notes.cell_len - 2
    if spark >= 6:
        row.append(" ")
        row.append_text(sparkline(gpu.util, min(spark, 60), style="green"))
    row.append_text(notes)
    return row


def _columns(
    items: Sequence[list[Text]], width: int, min_col: int, *, down_first: bool = False
) -> RenderableType:
    """Items in as many columns as fit; across then down, or down each column first."""
    n = max(1, min(len(items), width // min_col))
    if n == 1:
        return Group(*[line for item in items for line in item])
    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in range(n):
        grid.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    rows = -(-len(items) // n)
    blank = [Text()]
    for r in range(rows):
        picks = [r + c * rows if down_first else r * n + c for c in range(n)]
        grid.add_row(*[Group(*(items[i] if i < len(items) else blank)) for i in picks])
    return grid


def gpu_panel(host: HostView | None, width: int, height: int = 50) -> RenderableType:
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
    min_col = 96
    n = max(1, min(len(gpus), width // min_col))
    inner = width // n - 1
    rows = [[_gpu_row(g, levels.get(g.key, Level.OK), (), inner)] for g in gpus]
    if gpu_errors:
        rows.append([inert("; ".join(gpu_errors), style="red")])
    return _columns(rows, width, min_col, down_first=True)


# ---------------------------------------------------------------- CPU cores


def cpu_panel(host: HostView | None, width: int) -> RenderableType:
    cores = [c for cpu in (host.cpus if host else []) for c in cpu.per_core_utilization]
    if not cores:
        return Text("no per-core CPU readings", style="dim")
    cell = 17  # " 123 ▇▇▇▇▇▇ 100% "
    per_line = max(1, width // cell)
    text = Text(no_wrap=True)
    for i, core in enumerate(cores):
        util = core.utilization
        text.append(f"{core.core_id:>4} ", style="dim")
        text.append_text(bar(util, 6))
        text.append(f"{fmt_num(util, '%'):>5}")
        text.append("\n" if (i + 1) % per_line == 0 and i + 1 < len(cores) else " ")
    return text


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


def events_panel(host: HostView | None, width: int, max_lines: int = 12) -> RenderableType:
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
    return Group(*lines[:max_lines])
