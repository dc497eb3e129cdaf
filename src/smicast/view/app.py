"""The Textual application of `smicast view`.

Each panel is one widget that renders one Rich renderable built by `render` or
`processes` from the view model; nothing is a widget per cell. Panels are
refreshed when a frame or a key arrives, at most `MAX_REDRAWS_PER_S` times a
second; between frames only the host bar is redrawn, and only while the data is
getting old (so its age keeps counting up when a source goes quiet).

Other views extend the app without editing it: `tabs` takes factories that
build extra tab panes (the host view becomes the first tab), and any module may
push its own screens; `model`, `source` and `request_redraw()` are public.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Final

from rich.console import RenderableType
from rich.style import Style
from rich.text import Span, Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from smicast.record.format import parse_timecode
from smicast.schema import ProcessInfo
from smicast.view import render
from smicast.view.model import HostView, ViewModel
from smicast.view.processes import (
    HEADER_LINE,
    ProcessView,
    SignalRefused,
    column_at,
    process_table,
    send_signal,
)
from smicast.view.replay import ReplaySource
from smicast.view.screens import ConfirmSignalScreen, HelpScreen, PromptScreen
from smicast.view.sources import FrameSource
from smicast.view.text import Lines, inert

MAX_REDRAWS_PER_S: Final = 10
STALE_AFTER_S: Final = 1.5
PANELS: Final = ("gpus", "cpu", "processes", "events")
THEMES: Final = ("textual-dark", "textual-light")

TabFactory = Callable[["ViewerApp"], TabPane]


class Panel(Widget):
    """One panel: shows what `draw(width)` returns.

    `update()` draws the content and says whether it changed, so an unchanged panel
    is not repainted. A Text (every panel of this app) is painted line by line
    through Textual's line API: the panel sets its own height from the line count
    (only when that changes; `height: auto` would render the content once more on
    every refresh just to measure it), Textual asks only for the lines on screen, and
    a line that is the same as in the previous frame reuses its painted strip. Other
    renderables keep `height: auto` and Textual's own rendering.
    """

    def __init__(self, draw: Callable[[int], RenderableType], *, id: str, title: str = "") -> None:
        super().__init__(id=id, classes="panel" if title else "")
        self._draw = draw
        self._chrome = 1 if title else 0  # the title border above the content
        self._lines: list[Text] = []
        self._content: RenderableType | None = None
        self._width = -1
        self._strips: dict[object, Strip] = {}
        self._base: tuple[str, Style] | None = None
        self.sized = True  # False: the height follows the content (a layout refresh redraws)
        if title:
            self.border_title = title

    def _content_width(self) -> int:
        return self.content_size.width or self.app.size.width

    def on_resize(self, event: events.Resize) -> None:
        self._width = -1  # drawn for another width: draw again when painted

    def update(self) -> bool:
        """Draw the content again; True when it differs from what is on the screen."""
        width = self._content_width()
        content = self._draw(width)
        changed = not (
            isinstance(content, Text) and width == self._width and content == self._content
        )
        self._content, self._width = content, width
        if not isinstance(content, Text):
            if self.sized:
                self.sized = False
                self.styles.height = "auto"
            return changed
        if changed:
            if isinstance(content, Lines):
                lines = content.parts or [Text()]
            else:
                lines = list(content.split("\n", allow_blank=True)) or [Text()]
            for line in lines:
                if len(line.plain) > width:  # too long: cut with an ellipsis, as Rich would
                    line.truncate(width, overflow="ellipsis")
            if len(lines) != len(self._lines):
                self.styles.height = len(lines) + self._chrome
            self._lines = lines
            if len(self._strips) > 4 * len(lines) + 64:
                self._strips.clear()  # bounded: only recent lines are worth keeping
        return changed

    def render(self) -> RenderableType:
        if self._content is None or self._width != self._content_width():
            self.update()
        assert self._content is not None
        return self._content

    def render_line(self, y: int) -> Strip:
        if not self.sized:
            return super().render_line(y)
        if self._content is None or self._width < 0:
            self.update()
        width = self._width
        theme = self.app.theme
        if self._base is None or self._base[0] != theme:
            self._base = (theme, self.rich_style)  # the panel's colours; looked up per theme
        base = self._base[1]
        if y >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[y]
        own = line.style
        key = (line.plain, tuple(line.spans), own, width, base)
        strip = self._strips.get(key)
        if strip is None:
            # Text.render() paints spans only: the panel's colours and the line's own style
            # go first as a span under the others.
            under = base + (own if isinstance(own, Style) else Style.parse(own)) if own else base
            styled = Text(line.plain, spans=[Span(0, len(line.plain), under), *line.spans], end="")
            strip = Strip(list(styled.render(self.app.console))).crop_extend(0, width, base)
            self._strips[key] = strip
        return strip


class ProcessPanel(Panel):
    """The process table; a click on the header sorts, a click on a row selects."""

    def on_click(self, event: events.Click) -> None:
        app = self.app
        if not isinstance(app, ViewerApp):
            return
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, line = offset.x, offset.y
        if line == HEADER_LINE:
            key = column_at(x, self.content_size.width)
            if key is not None:
                app.procs.sort_by(key)
                app.request_redraw(now=True)
        elif line > HEADER_LINE:
            rows = app.process_rows()
            index = line - HEADER_LINE - 1
            if 0 <= index < len(rows):
                app.procs.selected_pid = rows[index].pid
                app.request_redraw(now=True)


class MainArea(VerticalScroll, can_focus=False):
    """The scrolled panels; not focusable, so the arrow keys stay the app's (process selection)."""


class ViewerApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "smicast view"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark,h,f1", "help", "this help"),
        Binding("t", "toggle_theme", "light / dark theme"),
        Binding("1", "toggle_panel('gpus')", "show / hide the GPU panel"),
        Binding("2", "toggle_panel('cpu')", "show / hide the per-core CPU panel"),
        Binding("3", "toggle_panel('processes')", "show / hide the process table"),
        Binding("4", "toggle_panel('events')", "show / hide errors and alerts"),
        Binding("s", "next_sort", "sort processes by the next column (or click a header)"),
        Binding("r", "reverse_sort", "reverse the sort order"),
        Binding("slash", "filter", "filter processes (command, name, user or pid)"),
        Binding("escape", "clear_filter", "clear the filter"),
        Binding("down", "select(1)", "select the next process"),
        Binding("up", "select(-1)", "select the previous process"),
        Binding("x", "signal", "signal the selected process (asks first; local only)"),
        Binding("pagedown", "scroll(1)", "scroll down"),
        Binding("pageup", "scroll(-1)", "scroll up"),
        Binding("space", "replay('toggle_pause')", "replay: play / pause"),
        Binding("right_square_bracket", "replay('step', 1)", "replay: next frame (pauses)"),
        Binding("left_square_bracket", "replay('step', -1)", "replay: previous frame (pauses)"),
        Binding("plus,equals_sign", "replay('faster')", "replay: faster (0.25x..8x)"),
        Binding("minus,underscore", "replay('slower')", "replay: slower"),
        Binding("k,right", "replay('seek_by', 10)", "replay: forward 10 s"),
        Binding("j,left", "replay('seek_by', -10)", "replay: back 10 s"),
        Binding("g", "goto", "replay: jump to a time (HH:MM:SS)"),
        Binding("L", "replay('toggle_loop')", "replay: loop on / off"),
    ]

    def __init__(
        self,
        model: ViewModel,
        source: FrameSource,
        *,
        tabs: Sequence[TabFactory] = (),
        theme: str = THEMES[0],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.model = model
        self.source = source
        self.procs = ProcessView()
        self.status_message: Text = Text()
        self._tabs = tabs
        self._clock = clock
        self._monotonic = monotonic
        self._start_theme = theme
        self._last_draw = 0.0
        self._draw_pending = False
        self._asked_term: set[int] = set()
        self.first_frame_at: float | None = None

    # ---------------------------------------------------------------- layout

    def host(self) -> HostView | None:
        return self.model.first()

    def process_rows(self) -> list[ProcessInfo]:
        host = self.host()
        return self.procs.rows(host.processes) if host else []

    def compose(self) -> ComposeResult:
        yield Panel(self._draw_host, id="host-bar")
        yield Panel(self._draw_replay, id="replay-bar")
        main = MainArea(
            Panel(
                lambda w: render.gpu_panel(self.host(), w, self.size.height),
                id="gpus",
                title="GPUs",
            ),
            Panel(lambda w: render.cpu_panel(self.host(), w), id="cpu", title="CPU cores"),
            ProcessPanel(self._draw_processes, id="processes", title="Processes"),
            Panel(
                lambda w: render.events_panel(self.host(), w),
                id="events",
                title="Errors and alerts",
            ),
            id="main",
        )
        if self._tabs:
            with TabbedContent(id="tabs"):
                yield TabPane("Host", main, id="tab-host")
                for factory in self._tabs:
                    yield factory(self)
        else:
            yield main
        yield Panel(self._draw_status, id="status-bar")

    def on_mount(self) -> None:
        self.theme = self._start_theme
        self.query_one("#replay-bar").display = isinstance(self.source, ReplaySource)
        self.run_worker(self._consume(), name="frames", exclusive=True)
        self.set_interval(1.0, self._tick)

    def _draw_host(self, width: int) -> Text:
        return render.host_bar(self.host(), self.source.label, self._clock(), width)

    def _draw_replay(self, width: int) -> Text:
        source = self.source
        return render.replay_bar(source.status() if isinstance(source, ReplaySource) else None)

    def _draw_processes(self, width: int) -> Text:
        host = self.host()
        procs = host.processes if host else []
        rows = self.procs.rows(procs)
        # no more rows than the terminal has lines: the rest are a sort or a filter away
        return process_table(self.procs, rows, len(procs), width, max_rows=self.size.height)

    def _draw_status(self, width: int) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append_text(self.status_message)
        if self.status_message:
            line.append("  ")
        line.append("? help  q quit  / filter  s sort  1-4 panels", style="dim")
        return line

    # ---------------------------------------------------------------- frames

    async def _consume(self) -> None:
        async for event in self.source.events():
            self.model.apply(event, self._clock())
            if self.first_frame_at is None and event.snapshot is not None:
                self.first_frame_at = self._monotonic()
            self.request_redraw()

    def request_redraw(self, *, now: bool = False) -> None:
        """Redraw every visible panel, at most MAX_REDRAWS_PER_S times a second."""
        wait = self._last_draw + 1 / MAX_REDRAWS_PER_S - self._monotonic()
        if now or wait <= 0:
            self._redraw()
        elif not self._draw_pending:
            self._draw_pending = True
            self.set_timer(wait, self._redraw)

    def _redraw(self) -> None:
        self._draw_pending = False
        self._last_draw = self._monotonic()
        for panel in self.query(Panel):
            if panel.display and panel.update():
                panel.refresh(layout=not panel.sized)

    def repaint(self, panel_id: str) -> None:
        """Draw one panel again now (a key that changes only it)."""
        panel = self.query_one(f"#{panel_id}", Panel)
        if panel.update():
            panel.refresh(layout=not panel.sized)

    def _tick(self) -> None:
        host = self.host()
        age = host.age_s(self._clock()) if host else None
        if age is None or age >= STALE_AFTER_S:
            self.repaint("host-bar")

    def say(self, message: str, style: str = "") -> None:
        self.status_message = inert(message, style=style)
        self.repaint("status-bar")

    # ---------------------------------------------------------------- actions

    def key_descriptions(self) -> list[tuple[str, str]]:
        """Every key of this app, its subclasses' (fleet) included, in declaration order."""
        rows = []
        for cls in reversed(type(self).__mro__):
            for binding in cls.__dict__.get("BINDINGS", []) if issubclass(cls, ViewerApp) else []:
                assert isinstance(binding, Binding)
                keys = ", ".join(_key_label(k) for k in binding.key.split(","))
                rows.append((keys, binding.description))
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_descriptions()))

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    def action_toggle_panel(self, name: str) -> None:
        panel = self.query_one(f"#{name}", Panel)
        panel.display = not panel.display
        if panel.display:
            panel.update()  # it was not drawn while hidden
        self.say(f"{name} panel {'shown' if panel.display else 'hidden'}")

    def action_next_sort(self) -> None:
        self.procs.next_sort()
        self.request_redraw(now=True)

    def action_reverse_sort(self) -> None:
        self.procs.descending = not self.procs.descending
        self.request_redraw(now=True)

    def action_filter(self) -> None:
        def done(text: str | None) -> None:
            if text is not None:
                self.procs.set_filter(text.strip())
                self.request_redraw(now=True)

        self.push_screen(PromptScreen("Filter processes:", self.procs.filter_text), done)

    def action_clear_filter(self) -> None:
        if self.procs.filter_text:
            self.procs.set_filter("")
            self.request_redraw(now=True)

    def action_select(self, step: int) -> None:
        self.procs.move(self.process_rows(), step)
        self.request_redraw(now=True)

    def action_scroll(self, pages: int) -> None:
        main = self.query_one("#main", VerticalScroll)
        if pages > 0:
            main.scroll_page_down()
        else:
            main.scroll_page_up()

    def action_signal(self) -> None:
        if not self.source.signals_processes:
            self.say(
                "signals go to processes of this machine only (not replay, remote or simulated)",
                "yellow",
            )
            return
        host = self.host()
        proc = self.procs.selected(host.processes) if host else None
        if proc is None:
            self.say("select a process first (up / down or a click)", "yellow")
            return

        def done(sig: signal.Signals | None) -> None:
            if sig is None:
                self.say("not signalled")
                return
            try:
                self.say(send_signal(proc, sig), "green")
                if sig == signal.SIGTERM:
                    self._asked_term.add(proc.pid)
            except SignalRefused as exc:
                self.say(str(exc), "red")

        self.push_screen(ConfirmSignalScreen(proc, suggest_kill=proc.pid in self._asked_term), done)

    def action_replay(self, method: str, *args: float) -> None:
        source = self.source
        if not isinstance(source, ReplaySource):
            self.say("replay keys work with --replay", "yellow")
            return
        getattr(source, method)(*args)
        self.repaint("replay-bar")

    def action_goto(self) -> None:
        if not isinstance(self.source, ReplaySource):
            self.say("replay keys work with --replay", "yellow")
            return
        source = self.source

        def done(text: str | None) -> None:
            if not text:
                return
            try:
                source.jump_to(parse_timecode(text))
            except ValueError as exc:
                self.say(str(exc), "red")

        self.push_screen(PromptScreen("Jump to (HH:MM:SS, MM:SS or SS):", max_length=16), done)


def _key_label(key: str) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "space": "Space",
        "escape": "Esc",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
        "plus": "+",
        "equals_sign": "=",
        "minus": "-",
        "underscore": "_",
        "pagedown": "PgDn",
        "pageup": "PgUp",
    }
    return names.get(key, key)


def css_path() -> Path:
    return Path(__file__).with_name("app.tcss")
