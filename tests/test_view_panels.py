"""The panel widget's painting: panels out of view wait until they are scrolled to,
and the direct span painter gives exactly what Rich's Text.render gives."""

from __future__ import annotations

import asyncio

from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.app import App, ComposeResult
from textual.geometry import Region

from smicast.view import render
from smicast.view.app import ViewerApp
from smicast.view.model import HostView, SourceEvent, ViewModel
from smicast.view.panels import SHRINK_AFTER, MainArea, Panel, _line_regions, narrow_cells
from tests.test_view_app import settle
from tests.view_support import ListSource, simulated_frames


class OnePanel(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.lines = [Text(f"row {i}") for i in range(5)]

    def compose(self) -> ComposeResult:
        yield Panel(lambda width: render._lines(list(self.lines)), id="p", title="P")


def test_panels_out_of_view_are_drawn_when_a_scroll_or_a_hidden_panel_reveals_them() -> None:
    frames = simulated_frames(64, 3)

    async def main() -> None:
        source = ListSource([SourceEvent("node", frames[0])])
        app = ViewerApp(ViewModel(), source)
        async with app.run_test(size=(160, 30)) as pilot:
            await settle(pilot, lambda: app.model.hosts.get("node") is not None)
            await pilot.pause(0.15)
            procs = app.query_one("#processes", Panel)
            gpus = app.query_one("#gpus", Panel)
            shown = procs._lines
            source.push(SourceEvent("node", frames[1]))
            await settle(pilot, lambda: app.model.hosts["node"].frames == 2)
            await pilot.pause(0.15)
            # 64 GPUs in two columns (33 lines) fill a 30-line screen: the table below is not drawn
            assert gpus.in_view() and not procs.in_view()
            assert procs.stale and procs._lines is shown
            app.query_one(MainArea).scroll_end(animate=False)
            await settle(pilot, lambda: not procs.stale)
            assert procs.in_view() and procs._lines is not shown

            app.query_one(MainArea).scroll_home(animate=False)
            source.push(SourceEvent("node", frames[2]))
            await settle(pilot, lambda: app.model.hosts["node"].frames == 3 and procs.stale)
            await pilot.press("1")  # hiding the GPU panel brings the table into view
            await settle(pilot, lambda: not procs.stale)

    asyncio.run(main())


def test_direct_painting_matches_text_render() -> None:
    model = ViewModel()
    for frame in simulated_frames(8, 3):
        model.apply(SourceEvent("node", frame), 0.0)
    host = model.first()
    lines = [
        *render.gpu_panel(host, 158, 50).parts,  # type: ignore[attr-defined]
        *render.gpu_panel(model_with(64), 158, 50).parts,  # type: ignore[attr-defined]
        render.cpu_panel(host, 158),
        Text("plain"),
        Text(""),
        Text("gap then span", spans=[Span(4, 8, "bold"), Span(9, 13, Style(color="red"))]),
    ]

    async def main() -> None:
        app = OnePanel()
        async with app.run_test(size=(160, 20)) as pilot:
            await pilot.pause()
            panel = app.query_one(Panel)
            under = Style(bgcolor="blue") + Style(italic=True)
            checked = 0
            for line in lines:
                for part in line.split("\n"):
                    fast = panel._segments(part, under)
                    assert fast is not None
                    styled = Text(part.plain, spans=[Span(0, len(part.plain), under), *part.spans])
                    slow = list(styled.render(app.console))
                    assert _cells(fast) == _cells(slow), part.plain
                    checked += 1
            assert checked > 50  # 8 GPU blocks, 64 GPUs in two columns, cores, the rest
            overlapping = Text("abcdef", spans=[Span(0, 4, "red"), Span(2, 6, "bold")])
            assert panel._segments(overlapping, under) is None  # Rich combines those

    asyncio.run(main())


def model_with(gpus: int) -> HostView:
    model = ViewModel()
    for frame in simulated_frames(gpus, 2):
        model.apply(SourceEvent("node", frame), 0.0)
    host = model.first()
    assert host is not None
    return host


def _cells(segments: list[Segment]) -> list[tuple[str, Style | None]]:
    """One (character, style) per cell: how segments are cut does not show on screen."""
    return [(ch, seg.style) for seg in segments for ch in seg.text]


def test_a_panel_grows_at_once_and_shrinks_late_by_a_row_at_once_by_many() -> None:
    sizes = [5]
    drawn = [0]

    def draw(width: int) -> Text:
        drawn[0] += 1  # new readings every frame
        return Text("\n".join([str(drawn[0])] * sizes[0]))

    class Heights(App[None]):
        def compose(self) -> ComposeResult:
            yield Panel(draw, id="p", title="P")

    async def main() -> None:
        app = Heights()
        async with app.run_test(size=(40, 30)) as pilot:
            panel = app.query_one("#p", Panel)
            seen = []
            for n in [5, 7, 6, 6, *[6] * SHRINK_AFTER, 2]:
                sizes[0] = n
                panel.update()
                await pilot.pause()
                seen.append(panel.size.height - 1)  # the title border takes a line
            # grows at once (7); one row less waits until the 7 is out of the last drawings;
            # four rows less is a filter or a hidden section: at once
            assert seen[:4] == [5, 7, 7, 7]
            assert seen[-2:] == [6, 2]

    asyncio.run(main())


def test_narrow_cells_counts_the_panels_characters_and_leaves_wide_ones_to_rich() -> None:
    assert narrow_cells("GPU0 █▉·· 42% ▁▂▃ 61°C …") == 24
    assert narrow_cells("plain ascii") == 11
    assert narrow_cells("学习 job") is None  # two cells a character: measured by Rich


def test_a_redraw_refreshes_only_the_lines_that_changed() -> None:
    rows = ["a", "b", "c", "d", "e"]

    class Lined(App[None]):
        def compose(self) -> ComposeResult:
            yield Panel(lambda w: Text("\n".join(rows)), id="p", title="P")

    async def main() -> None:
        app = Lined()
        async with app.run_test(size=(40, 20)) as pilot:
            panel = app.query_one("#p", Panel)
            await pilot.pause()
            panel.update()  # drawn for the laid-out width (a resize marks it to draw again)
            panel.repaint()
            await pilot.pause()
            rows[1], rows[2], rows[4] = "B", "C", "E"
            assert panel.update()
            assert panel._changed_lines == [1, 2, 4]
            assert _line_regions([1, 2, 4], 38) == [Region(0, 1, 38, 2), Region(0, 4, 38, 1)]
            panel.repaint()
            await pilot.pause()
            assert [s.text.strip() for s in (panel.render_line(y) for y in range(5))] == [
                "a",
                "B",
                "C",
                "d",
                "E",
            ]
            assert not panel.update() and panel._changed_lines == []  # nothing new
            rows.append("f")  # a line more: the whole panel (and the layout)
            assert panel.update() and panel._changed_lines is None
            panel.repaint()
            await pilot.pause()
            assert panel.size.height == 7  # the title border and six lines

    asyncio.run(main())


def test_a_panel_with_a_version_draws_only_when_it_or_the_width_changes() -> None:
    drawn: list[int] = []
    version = [1]

    def draw(width: int) -> Text:
        drawn.append(width)
        return Text(f"v{version[0]}")

    class Versioned(App[None]):
        def compose(self) -> ComposeResult:
            yield Panel(draw, id="p", version=lambda: version[0])

    async def main() -> None:
        app = Versioned()
        async with app.run_test(size=(40, 10)) as pilot:
            panel = app.query_one("#p", Panel)
            await pilot.pause()
            panel.update()
            before = len(drawn)
            assert not panel.update() and not panel.update()
            assert len(drawn) == before  # same version, same width: not drawn again
            version[0] = 2
            assert panel.update() and len(drawn) == before + 1
            panel.repaint()
            await pilot.pause()
            assert panel.render_line(0).text.startswith("v2")
            await pilot.resize_terminal(30, 10)
            await pilot.pause()
            panel.update()
            assert drawn[-1] == 30  # a new width is drawn again

    asyncio.run(main())
