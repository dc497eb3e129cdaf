"""The fleet tabs as Rich renderables: one renderable per panel, whatever the fleet's size.

The GPU grid is one renderable with a cell per GPU coloured by utilization; runs of
cells of one colour share one segment. The host table lists the hosts that need
attention first (not live, then alerts, then busiest) and only as many as fit; the
filter (`f`) finds the rest. Every string from an agent goes through `inert()`.
"""

from __future__ import annotations

from typing import Final

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text

from smicast.view.alerts import Level
from smicast.view.fleet_summary import FleetView, HostRow
from smicast.view.render import bar, fmt_bytes, fmt_num, level_style
from smicast.view.text import SpanStyles, inert, span_segments

CELL: Final = "■"
_STATE_STYLE: Final = {
    "live": "green",
    "stale": "yellow",
    "connecting": "cyan",
    "reconnecting": "yellow",
    "offline": "bold red",
}
_LEVEL_STYLE: Final = {Level.OK: "", Level.WARN: "bold yellow", Level.CRIT: "bold red"}
# Utilization buckets of the grid: 0-9, 10-19, ... 90-100, and "no reading".
_BUCKET_STYLE: Final = (
    "grey35",
    "blue",
    "blue",
    "cyan",
    "cyan",
    "green",
    "green",
    "yellow",
    "yellow",
    "red",
)


_NO_READING: Final = "grey19"


def _bucket(value: float | None) -> str:
    if value is None:
        return _NO_READING
    return _BUCKET_STYLE[9 if value >= 90 else 0 if value < 10 else int(value) // 10]


class GpuGrid:
    """A cell per GPU, `width` to a line, coloured by utilization.

    Rendered straight to segments, one per run of a colour: 8,000 GPUs cost a few
    thousand segments and no text layout (a `Text` of them took ten times longer).
    """

    def __init__(self, cells: list[float | None], width: int) -> None:
        self.cells = cells
        self.width = max(8, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(1, min(self.width, options.max_width))
        styles: dict[str, Style] = {}
        cells = self.cells
        buckets = _BUCKET_STYLE
        for start in range(0, len(cells), width):
            run_name, run = "", 0
            for value in cells[start : start + width]:
                # _bucket() inlined: this loop runs once per GPU per redraw
                if value is None:
                    name = _NO_READING
                else:
                    name = buckets[9 if value >= 90 else 0 if value < 10 else int(value) // 10]
                if name != run_name and run:
                    yield Segment(CELL * run, _style(styles, console, run_name))
                    run = 0
                run_name = name
                run += 1
            if run:
                yield Segment(CELL * run, _style(styles, console, run_name))
            yield Segment.line()


def _style(cache: dict[str, Style], console: Console, name: str) -> Style:
    style = cache.get(name)
    if style is None:
        style = cache[name] = console.get_style(name)
    return style


def gpu_grid(cells: list[float | None], width: int) -> GpuGrid:
    return GpuGrid(cells, width)


def _attention(row: HostRow) -> tuple[int, int, float, str]:
    return (row.state == "live", -row.alert, -(row.util_pct or 0.0), row.key)


def totals_line(fleet: FleetView, rows: list[HostRow], now_s: float) -> Text:
    t = fleet.totals(rows, now_s)
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{t.hosts} hosts ", style="bold")
    for state in ("live", "stale", "connecting", "reconnecting", "offline"):
        n = t.states.get(state, 0)
        if n:
            line.append(f"{state} {n} ", style=_STATE_STYLE[state])
    line.append(f"│ {t.gpus} GPUs  util ")
    line.append(fmt_num(t.util_pct, "%"), style=level_style(t.util_pct, 70, 90))
    line.append(f"  mem {fmt_bytes(t.mem_used)}/{fmt_bytes(t.mem_total)}")
    line.append(f"  power {t.power_w / 1000:.1f} kW  energy {t.energy_j / 3.6e6:.3f} kWh")
    if fleet.filter_text:
        line.append("  filter: ", style="dim")
        line.append_text(inert(fleet.filter_text, style="bold"))
    return line


class HostTable:
    """The host rows, painted straight to segments (as a Text with a span a column, the
    table cost more to draw than the rest of the cluster tab). Lines past the width end
    in an ellipsis, as a no-wrap Text's do."""

    def __init__(self, rows: list[HostRow], width: int, max_rows: int) -> None:
        self.rows = rows
        self.width = width
        self.max_rows = max_rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, rows = self.width, self.rows
        shown = sorted(rows, key=_attention)[: max(1, self.max_rows)]
        name_w = max(12, min(40, width // 4))
        bar_w = max(5, min(20, width // 8))
        styles: dict[str, Style] = {}
        combined: SpanStyles = {}
        plain = _style(styles, console, "")
        max_cells = options.max_width
        header = (
            f"{'HOST':<{name_w}} {'STATE':<12} {'VIA':<8} {'GPUs':>4}  {'UTIL':<{bar_w + 5}}"
            f" {'MEMORY':>15} {'POWER':>8}"
        )
        yield from _fitted([Segment(header, _style(styles, console, "bold"))], max_cells)
        yield Segment.line()
        for r in shown:
            name = inert(r.key, limit=name_w - 1)
            line = [*_text_segments(name, console, styles, combined)]
            line.append(Segment(" " * max(1, name_w + 1 - name.cell_len), plain))
            line.append(
                Segment(f"{r.state:<12}", _style(styles, console, _STATE_STYLE.get(r.state, "")))
            )
            line.append(Segment(f" {r.transport:<8} {r.gpus:>4}  ", plain))
            line.extend(_text_segments(bar(r.util_pct, bar_w), console, styles, combined))
            line.append(
                Segment(
                    f" {fmt_num(r.util_pct, '%'):>4} {fmt_bytes(r.mem_used):>7}/"
                    f"{fmt_bytes(r.mem_total):<7} {fmt_num(r.power_w, 'W'):>8}",
                    plain,
                )
            )
            if r.alert is not Level.OK:
                line.append(
                    Segment(f" {r.alert.label}", _style(styles, console, _LEVEL_STYLE[r.alert]))
                )
            if r.error and r.state != "live":
                line.append(Segment("  ", plain))
                line.extend(
                    _text_segments(
                        inert(r.error, style="dim red", limit=120), console, styles, combined
                    )
                )
            yield from _fitted(line, max_cells)
            yield Segment.line()
        if len(rows) > len(shown):
            more = f"… {len(rows) - len(shown)} more hosts (f filters by name)"
            yield from _fitted([Segment(more, _style(styles, console, "dim"))], max_cells)
            yield Segment.line()


def _text_segments(
    text: Text, console: Console, styles: dict[str, Style], combined: SpanStyles
) -> list[Segment]:
    """A one-line Text's segments: straight from its spans where they follow each other
    (`span_segments`), else through Rich's renderer."""
    base = text.style
    under = base if isinstance(base, Style) else _style(styles, console, base)
    return span_segments(text, under, console, combined) or list(
        Text(text.plain, spans=[Span(0, len(text.plain), base), *text.spans]).render(console)
    )


def _fitted(line: list[Segment], max_cells: int) -> list[Segment]:
    """The line cut to `max_cells` with an ellipsis, as Text's overflow="ellipsis" does."""
    if Segment.get_line_length(line) <= max_cells:
        return line
    cut = Segment.adjust_line_length(line, max(0, max_cells - 1), pad=False)
    style = cut[-1].style if cut else None
    return [*cut, Segment("…", style)]


def host_table(rows: list[HostRow], width: int, max_rows: int) -> HostTable:
    return HostTable(rows, width, max_rows)


def cluster_panel(
    fleet: FleetView, now_s: float, wall_s: float, width: int, height: int
) -> RenderableType:
    rows = [fleet.row(h, now_s, wall_s) for h in fleet.hosts()]
    cells = fleet.gpu_cells()
    grid_w = max(8, width - 2)
    grid_lines = -(-len(cells) // grid_w) if cells else 0
    legend = Text("GPU utilization: ", style="dim")
    for low in range(0, 100, 20):
        legend.append(CELL, style=_bucket(low))
        legend.append(f"{low}+ ", style="dim")
    legend.append(CELL, style=_bucket(None))
    legend.append("n/a", style="dim")
    room = max(5, height - grid_lines - 6)
    return Group(
        totals_line(fleet, rows, now_s),
        legend,
        gpu_grid(cells, grid_w),
        host_table(rows, width, room),
    )


def users_panel(fleet: FleetView, width: int, max_rows: int = 200) -> Text:
    users = fleet.users()
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(
        f"{'USER':<20} {'HOSTS':>5} {'GPUs':>5} {'PROCS':>6} {'VRAM':>9}  TOP COMMAND\n",
        style="bold",
    )
    if not users:
        out.append("no GPU processes (agents need --processes)", style="dim")
    for u in users[:max_rows]:
        user = inert(u.user, limit=19)
        out.append_text(user)
        out.append(" " * max(1, 21 - user.cell_len))
        out.append(f"{len(u.hosts):>5} {len(u.gpus):>5} {u.procs:>6} {fmt_bytes(u.vram):>9}  ")
        out.append_text(inert(u.top_command, style="dim", limit=max(10, width - 52)))
        out.append("\n")
    return out


def alerts_panel(fleet: FleetView, width: int, max_rows: int = 200) -> Text:
    active, log = fleet.alerts()
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"Active alerts ({len(active)})\n", style="bold")
    if not active:
        out.append("none\n", style="dim")
    for host, gpu, level in active[:max_rows]:
        out.append(f"{level.label:<5} ", style=_LEVEL_STYLE[level])
        out.append_text(inert(host.key, limit=40))
        out.append("  ")
        out.append_text(inert(gpu, limit=60))
        out.append("\n")
    out.append("\nRecent changes\n", style="bold")
    for t in log:
        out.append(f"{t.after.label:<5} ", style=_LEVEL_STYLE[t.after])
        out.append_text(inert(f"{t.host}: {t.message()}", limit=max(20, width - 8)))
        out.append("\n")
    return out


def host_tabs(fleet: FleetView, width: int) -> Text:
    """The host tab bar: every filtered host, the selected one highlighted (n / p move)."""
    selected = fleet.selected_host()
    line = Text(no_wrap=True, overflow="ellipsis")
    for host in fleet.hosts():
        style = "reverse bold" if selected is not None and host.key == selected.key else "dim"
        line.append_text(inert(f" {host.hostname or host.key} ", style=style, limit=40))
        if line.cell_len > width:
            break
    return line
