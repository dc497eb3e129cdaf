"""The panels as Rich renderables: sizes from 80x24 to 300x100, 1 to 64 GPUs, sparklines."""

from __future__ import annotations

import pytest
from rich.console import Console, RenderableType
from rich.text import Span, Text

from smicast.view import render
from smicast.view.model import Ring, SourceEvent, ViewModel
from smicast.view.processes import COLUMN_KEYS, ProcessView, column_at, process_table
from smicast.view.text import Lines, built_text
from tests.view_support import simulated_frames

MODELS: dict[int, ViewModel] = {}


def model_of(count: int) -> ViewModel:
    if count not in MODELS:
        model = ViewModel()
        for i, frame in enumerate(simulated_frames(count, 3)):
            model.apply(SourceEvent("node", frame), now_s=float(i))
        MODELS[count] = model
    return MODELS[count]


def lines_of(renderable: RenderableType, width: int) -> list[str]:
    console = Console(width=width, color_system=None, legacy_windows=False)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get().splitlines()


@pytest.mark.parametrize("count", [1, 8, 9, 16, 64])
@pytest.mark.parametrize("width", [78, 120, 197, 297])
def test_gpu_panel_fits_every_width(count: int, width: int) -> None:
    host = model_of(count).first()
    lines = lines_of(render.gpu_panel(host, width, height=24), width)
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    assert all(f"{i} " in text for i in range(count))
    if count > render.COMPACT_ABOVE_GPUS:
        columns = max(1, min(count, width // render.COMPACT_COLUMN_CELLS))
        assert len(lines) == -(-count // columns)  # one compact row per GPU
    else:
        columns = max(1, min(count, width // 80))
        assert len(lines) == 2 * -(-count // columns)  # two-line blocks on a short terminal
        tall = lines_of(render.gpu_panel(host, width, height=60), width)
        assert len(tall) == 3 * -(-count // columns)


def test_sixteen_gpus_fit_a_200_by_60_terminal_with_room_to_spare() -> None:
    lines = lines_of(render.gpu_panel(model_of(16).first(), 197, height=60), 197)
    assert len(lines) == 8  # two columns, one row per GPU


@pytest.mark.parametrize("width", [78, 158, 298])
def test_host_bar_cpu_and_events_fit(width: int) -> None:
    host = model_of(8).first()
    for renderable in (
        render.host_bar(host, "local", 10.0, width),
        render.cpu_panel(host, width),
        render.events_panel(host, width),
    ):
        assert all(len(line) <= width for line in lines_of(renderable, width))
    assert "GPUs 8" in lines_of(render.host_bar(host, "local", 10.0, width), width)[0]


def test_sparkline_has_a_fixed_five_minute_axis() -> None:
    ring = Ring()
    for _ in range(30):
        ring.push(100.0)
    line = render.sparkline(ring, 30)
    assert line == " " * 27 + "███"  # 30 of 300 samples: the last tenth of the line
    for _ in range(600):
        ring.push(50.0)
    assert render.sparkline(ring, 30) == "▄" * 30
    assert render.sparkline(ring, 0) == ""


def test_bar_and_missing_values() -> None:
    assert render.bar(None, 5).plain == "·····"
    assert render.bar(100.0, 5).plain == "█████"
    assert render.bar(50.0, 4).plain == "██··"


def test_process_header_click_targets_match_the_table() -> None:
    host = model_of(8).first()
    assert host is not None
    view = ProcessView()
    table = process_table(view, view.rows(host.processes), len(host.processes), 120)
    header = table.plain.splitlines()[1]
    for key, title in zip(
        COLUMN_KEYS, ("PID", "USER", "GPU", "GPU MEM", "CPU %", "COMMAND"), strict=True
    ):
        at = header.index(title) if key != "gpu" else header.index(" GPU ") + 1
        assert column_at(at, 120) == key


def test_built_text_is_the_text_rich_would_build() -> None:
    spans = [Span(0, 3, "bold"), Span(4, 9, "red")]
    fast = built_text("GPU0 █▉·°C", list(spans), "dim")
    assert fast == Text("GPU0 █▉·°C", style="dim", spans=spans)
    assert fast.style == "dim" and fast.no_wrap and fast.cell_len == 10
    # not all printable: Rich's own constructor (it drops the bell, keeps the line break)
    slow = built_text("a\x07b\nc", [Span(0, 1, "bold")])
    assert slow.plain == "ab\nc" and slow.spans == [Span(0, 1, "bold")]
    joined = Lines([fast, Text("next", style="bold")])
    assert joined.plain == "GPU0 █▉·°C\nnext" and joined.parts[0] is fast
    assert joined == Text("\n").join([fast, Text("next", style="bold")])


def test_a_column_is_cut_or_padded_with_its_styles_clipped() -> None:
    line = render.LineBuilder()
    line.add_fitted(Text("abcdefgh", spans=[Span(0, 2, "bold"), Span(6, 8, "red")]), 5)
    line.add("|")
    line.add_fitted(Text("xy", style="green"), 4)
    line.add("|")
    text = line.text()
    assert text.plain == "abcd…|xy  |"
    assert text.spans == [Span(0, 2, "bold"), Span(6, 8, "green")]  # "gh" was cut away


@pytest.mark.parametrize("count", [2, 12])  # blocks, then compact rows
def test_a_p_state_from_detail_is_shown_inert(count: int) -> None:
    from tests.fakes import make_gpu, make_snapshot

    hostile = "\x1b[2J\x1b]52;c;eA==\x07P0"
    gpus = [
        make_gpu(f"G{i}", performance_state=None, detail={"performance_state": hostile})
        for i in range(count)
    ]
    model = ViewModel()
    model.apply(SourceEvent("node", make_snapshot(gpus=gpus)), now_s=0.0)
    text = render.gpu_panel(model.first(), 200, 60)
    assert "\x1b" not in text.plain and "\x07" not in text.plain
    assert "^[[2J" in text.plain[:4000]
