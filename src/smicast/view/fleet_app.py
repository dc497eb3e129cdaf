"""`smicast view --hosts`: the viewer's app with fleet tabs (cluster, users, alerts).

Built on `ViewerApp` through its extension points: tab factories and `host()`.
The app's own Host tab shows the selected host with the single-machine layout
(`n` / `p` move along the host tab bar above it); `f` filters every tab by host
name. Each fleet panel is one widget rendering one renderable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar, Final

from rich.console import RenderableType
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import TabbedContent, TabPane

from smicast.view import fleet_render
from smicast.view.app import ViewerApp
from smicast.view.fleet_summary import FleetView
from smicast.view.model import HostView, ViewModel
from smicast.view.panels import Panel
from smicast.view.screens import PromptScreen
from smicast.view.sources import FrameSource

FLEET_REDRAWS_PER_S: Final = 2  # a fleet dashboard; frame to screen stays under a second


class FleetApp(ViewerApp):
    TITLE = "smicast view (fleet)"
    # Frames from many hosts arrive all the time: they redraw at most this often (a key
    # still redraws at once).
    REDRAWS_PER_S = FLEET_REDRAWS_PER_S
    CSS = """
    #fleet-host-tabs { height: 1; }
    #cluster, #users, #alerts { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *ViewerApp.BINDINGS,
        Binding("n", "host(1)", "fleet: next host (Host tab)"),
        Binding("p", "host(-1)", "fleet: previous host (Host tab)"),
        Binding("f", "host_filter", "fleet: filter hosts by name (every tab)"),
        Binding("c", "show_tab('tab-cluster')", "fleet: cluster tab"),
    ]

    def __init__(
        self,
        model: ViewModel,
        source: FrameSource,
        fleet: FleetView,
        *,
        theme: str = "textual-dark",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        on_first_frame: Callable[[], object] = lambda: None,
    ) -> None:
        self.fleet = fleet
        super().__init__(
            model,
            source,
            tabs=(
                self._tab("Cluster", "cluster", self._draw_cluster),
                self._tab("Users", "users", self._draw_users),
                self._tab("Alerts", "alerts", self._draw_alerts),
            ),
            theme=theme,
            clock=clock,
            monotonic=monotonic,
            on_first_frame=on_first_frame,
        )

    @staticmethod
    def _tab(
        title: str, name: str, draw: Callable[[int], RenderableType]
    ) -> Callable[[ViewerApp], TabPane]:
        def factory(app: ViewerApp) -> TabPane:
            return TabPane(title, VerticalScroll(Panel(draw, id=name)), id=f"tab-{name}")

        return factory

    def host(self) -> HostView | None:
        return self.fleet.selected_host()

    def on_mount(self) -> None:
        # Textual also runs ViewerApp.on_mount (handlers run for every class that has one).
        pane = self.query_one("#tab-host", TabPane)
        pane.mount(
            Panel(lambda w: fleet_render.host_tabs(self.fleet, w), id="fleet-host-tabs"),
            before=0,
        )
        self.query_one("#tabs", TabbedContent).active = "tab-cluster"

    def _draw_cluster(self, width: int) -> RenderableType:
        return fleet_render.cluster_panel(
            self.fleet, self._monotonic(), self._clock(), width, self.size.height
        )

    def _draw_users(self, width: int) -> RenderableType:
        return fleet_render.users_panel(self.fleet, width)

    def _draw_alerts(self, width: int) -> RenderableType:
        return fleet_render.alerts_panel(self.fleet, width)

    def _tick(self) -> None:
        super()._tick()
        self.request_redraw()  # states turn stale and offline without a frame

    def action_host(self, step: int) -> None:
        host = self.fleet.move(step)
        self.query_one("#tabs", TabbedContent).active = "tab-host"
        if host is not None:
            self.say(f"host {host.hostname or host.key}")
        self.request_redraw(now=True)

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_host_filter(self) -> None:
        def done(text: str | None) -> None:
            if text is not None:
                self.fleet.set_filter(text)
                self.request_redraw(now=True)

        self.push_screen(PromptScreen("Filter hosts by name:", self.fleet.filter_text), done)


def make_app(
    model: ViewModel,
    source: FrameSource,
    *,
    theme: str,
    on_first_frame: Callable[[], object] = lambda: None,
) -> ViewerApp:
    """The fleet app for a fleet (live or replayed), the one-host app otherwise."""
    from smicast.fleet.source import FleetSource
    from smicast.view.fleet_sources import FleetReplaySource

    if isinstance(source, FleetSource):
        fleet = FleetView(model, source.links)
        return FleetApp(model, source, fleet, theme=theme, on_first_frame=on_first_frame)
    if isinstance(source, FleetReplaySource):
        return FleetApp(model, source, FleetView(model), theme=theme, on_first_frame=on_first_frame)
    return ViewerApp(model, source, theme=theme, on_first_frame=on_first_frame)
