"""The Textual application of `smicast view`.

Each panel is one widget that renders one Rich renderable built by `render` or
`processes` from the view model; nothing is a widget per cell. Panels are
refreshed when a frame or a key arrives, at most `MAX_REDRAWS_PER_S` times a
second; between frames only the host bar is redrawn, and only while the data is
getting old (so its age keeps counting up when a source goes quiet).

`on_first_frame` runs once the first frame is on the screen: `smicast view` hands
garbage collection to `smicast.view.gcpace` then.

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

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import TabbedContent, TabPane

from smicast.record.format import parse_timecode
from smicast.schema import ProcessInfo
from smicast.view import render
from smicast.view.model import HostView, ViewModel
from smicast.view.panels import MainArea, Panel, ProcessPanel
from smicast.view.processes import (
    ProcessView,
    SignalRefused,
    process_table,
    send_signal,
)
from smicast.view.replay import ReplaySource
from smicast.view.screens import ConfirmSignalScreen, HelpScreen, PromptScreen
from smicast.view.sources import FrameSource
from smicast.view.text import inert

MAX_REDRAWS_PER_S: Final = 10
STALE_AFTER_S: Final = 1.5
PANELS: Final = ("gpus", "cpu", "processes", "events")
THEMES: Final = ("textual-dark", "textual-light")

TabFactory = Callable[["ViewerApp"], TabPane]


class ViewerApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "smicast view"
    REDRAWS_PER_S: ClassVar[float] = MAX_REDRAWS_PER_S

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
        on_first_frame: Callable[[], object] = lambda: None,
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
        self._on_first_frame = on_first_frame  # called once the first frame is on the screen

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
                version=self._gpu_version,
            ),
            Panel(lambda w: render.cpu_panel(self.host(), w), id="cpu", title="CPU cores"),
            ProcessPanel(
                self._draw_processes,
                on_sort=self._sort_clicked,
                on_select=self._row_clicked,
                id="processes",
                title="Processes",
            ),
            Panel(
                lambda w: render.events_panel(self.host(), w),
                id="events",
                title="Errors and alerts",
            ),
            on_reveal=self.request_redraw,
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

    def _gpu_version(self) -> object:
        """What the GPU panel shows besides its width: the host's frame, the screen's height."""
        host = self.host()
        return None if host is None else (host.key, host.frames, self.size.height)

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

    def _sort_clicked(self, key: str) -> None:
        self.procs.sort_by(key)
        self.request_redraw(now=True)

    def _row_clicked(self, index: int) -> None:
        rows = self.process_rows()
        if 0 <= index < len(rows):
            self.procs.selected_pid = rows[index].pid
            self.request_redraw(now=True)

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
            if self.first_frame_at is None and (event.snapshot or event.frame) is not None:
                self.first_frame_at = self._monotonic()
                self.call_after_refresh(self._on_first_frame)
            self.request_redraw()

    def on_tabbed_content_tab_activated(self) -> None:
        self.request_redraw(now=True)  # its panels were skipped while the tab was hidden

    def request_redraw(self, *, now: bool = False) -> None:
        """Redraw every visible panel, at most `REDRAWS_PER_S` times a second (at once for
        `now`: a key)."""
        wait = self._last_draw + 1 / self.REDRAWS_PER_S - self._monotonic()
        if now or wait <= 0:
            self._redraw()
        elif not self._draw_pending:
            self._draw_pending = True
            self.set_timer(wait, self._redraw)

    def _redraw(self) -> None:
        self._draw_pending = False
        self._last_draw = self._monotonic()
        for panel in self.query(Panel):
            if not panel.display:
                continue
            if not panel.in_view():
                panel.stale = True  # drawn when it is painted (scrolled to, its tab shown)
            elif panel.update():
                panel.repaint()

    def repaint(self, panel_id: str) -> None:
        """Draw one panel again now (a key that changes only it)."""
        panel = self.query_one(f"#{panel_id}", Panel)
        if panel.update():
            panel.repaint()

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
        self.call_after_refresh(self._draw_revealed)  # panels the new layout brings into view

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw_revealed)

    def _draw_revealed(self) -> None:
        """Draw the panels a scroll, a resize or a shown panel brought into view, if they
        were skipped while out of it (the others are up to date)."""
        for panel in self.query(Panel):
            if panel.display and panel.stale and panel.in_view() and panel.update():
                panel.repaint()

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
