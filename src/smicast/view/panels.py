"""The viewer's widgets: a panel is one widget painting one Rich Text, line by line."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual import events
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from smicast.view.processes import HEADER_LINE, column_at
from smicast.view.text import Lines, SpanStyles, span_segments


class Panel(Widget):
    """One panel: shows what `draw(width)` returns.

    `update()` draws the content and says whether it changed, so an unchanged panel
    is not repainted. A Text (every panel of this app) is painted line by line
    through Textual's line API: the panel sets its own height from the line count
    (only when that changes; `height: auto` would render the content once more on
    every refresh just to measure it), Textual asks only for the lines on screen, and
    a line that is the same as in the previous frame reuses its painted strip. Other
    renderables keep `height: auto` and Textual's own rendering.

    A titled panel (the scrolled ones) grows at once but, losing a few lines, shrinks
    only to the tallest of its last `SHRINK_AFTER` drawings: a process table whose
    length moves by a row every frame would otherwise make Textual lay the whole
    screen out again each time.
    """

    def __init__(
        self,
        draw: Callable[[int], RenderableType],
        *,
        id: str,
        title: str = "",
        version: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(id=id, classes="panel" if title else "")
        self._draw = draw
        # What the content depends on besides the width (None: unknown, draw every time):
        # while it and the width are the same, update() skips the drawing.
        self._version = version
        self._drawn_version: object = None
        self._chrome = 1 if title else 0  # the title border above the content
        self._lines: list[Text] = []
        self._changed_lines: list[int] | None = None  # what the last update changed; None: all
        self._height = 0
        self._content: RenderableType | None = None
        self._width = -1
        self._strips: dict[object, Strip] = {}
        self._base: tuple[str, Style] | None = None
        self.stale = False  # a redraw skipped it while out of view
        self._span_styles: SpanStyles = {}  # (under, span) -> style
        self.sized = True  # False: the height follows the content (a layout refresh redraws)
        self._heights: deque[int] | None = deque(maxlen=SHRINK_AFTER) if title else None
        if title:
            self.border_title = title

    def _content_width(self) -> int:
        return self.content_size.width or self.app.size.width

    def on_resize(self, event: events.Resize) -> None:
        self._width = -1  # drawn for another width: draw again when painted

    def update(self) -> bool:
        """Draw the content again; True when it differs from what is on the screen.

        `repaint()` then refreshes what changed: only the lines that differ when the
        panel kept its width and its number of lines, all of it otherwise."""
        width = self._content_width()
        version = self._version() if self._version is not None else None
        if version is not None and version == self._drawn_version and width == self._width:
            self.stale = False
            self._changed_lines = []
            return False
        content = self._draw(width)
        self._drawn_version = version
        self.stale = False
        drawn_width, self._width, self._content = self._width, width, content
        if not isinstance(content, Text):
            self._changed_lines = None
            if self.sized:
                self.sized = False
                self.styles.height = "auto"
            return True
        if isinstance(content, Lines):
            lines = content.parts or [Text()]
        else:
            lines = list(content.split("\n", allow_blank=True)) or [Text()]
        for line in lines:
            if len(line.plain) > width:  # too long: cut with an ellipsis, as Rich would
                line.truncate(width, overflow="ellipsis")
        old = self._lines
        changed: list[int] | None = None  # every line: another width or line count
        if width == drawn_width and len(old) == len(lines):
            changed = [y for y, (a, b) in enumerate(zip(old, lines, strict=True)) if a != b]
            if not changed:
                self._changed_lines = []
                return False
        if self._set_height(len(lines)):
            changed = None
        self._changed_lines = changed
        self._lines = lines
        if len(self._strips) > 4 * len(lines) + 64:
            self._strips.clear()  # bounded: only recent lines are worth keeping
        return True

    def repaint(self) -> None:
        """Refresh what the last `update()` changed: some lines, or the whole panel.

        Textual renders every line of a widget refreshed whole again (its styles, filters
        and the compositor's cuts, a good part of a frame's cost); a frame changes the
        readings, not the titles, headers and quiet rows."""
        changed = self._changed_lines
        if changed is None or not self.sized:
            self.refresh(layout=not self.sized)
        elif changed:
            self.refresh(*_line_regions(changed, max(1, self._width)))

    def _set_height(self, lines: int) -> bool:
        """Size the panel for `lines` lines; True when its height changed."""
        if self._heights is not None:
            if self._heights and lines < max(self._heights) - SHRINK_AT_ONCE:
                self._heights.clear()  # a filter, a hidden section: not a row coming and going
            self._heights.append(lines)
            lines = max(self._heights)
        if lines == self._height:
            return False
        self._height = lines
        self.styles.height = lines + self._chrome
        return True

    def in_view(self) -> bool:
        """Some of the panel is on the screen (not scrolled away, not on another tab)."""
        region = self.region
        parent = self.parent
        view = parent.region if isinstance(parent, MainArea) else self.screen.region
        return bool(region) and region.overlaps(view)

    def render(self) -> RenderableType:
        if self._content is None or self.stale or self._width != self._content_width():
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
            segments = self._segments(line, under)
            if segments is None:
                styled = Text(line.plain, spans=[Span(0, len(line.plain), under), *line.spans])
                segments = list(styled.render(self.app.console))
            cells = narrow_cells(line.plain)
            if cells is not None and cells <= width:
                # one cell a character: pad to the width without measuring every segment
                if cells < width:
                    segments.append(Segment(" " * (width - cells), base))
                strip = Strip(segments, width)
            else:
                strip = Strip(segments).crop_extend(0, width, base)
            self._strips[key] = strip
        return strip

    def _segments(self, line: Text, under: Style) -> list[Segment] | None:
        """`span_segments()` with this panel's cache of combined styles."""
        if len(self._span_styles) > 1024:
            self._span_styles.clear()  # bounded: a theme change leaves old combinations behind
        return span_segments(line, under, self.app.console, self._span_styles)


def _line_regions(lines: list[int], width: int) -> list[Region]:
    """One region per run of consecutive line numbers."""
    regions: list[Region] = []
    start = prev = lines[0]
    for y in lines[1:]:
        if y != prev + 1:
            regions.append(Region(0, start, width, prev - start + 1))
            start = y
        prev = y
    regions.append(Region(0, start, width, prev - start + 1))
    return regions


SHRINK_AFTER: Final = 10
SHRINK_AT_ONCE: Final = 3  # lines: a panel that loses more than this shrinks at once
# The characters beyond ASCII that the panels draw, each one terminal cell wide.
_NARROW: Final = frozenset("█▉▊▋▌▍▎▏·▁▂▃▄▅▆▇°▼▲…■│─▔")


def narrow_cells(plain: str) -> int | None:
    """The cells `plain` takes when each character takes one (None: measure it)."""
    if plain.isascii() or all(c.isascii() or c in _NARROW for c in set(plain)):
        return len(plain)
    return None


class ProcessPanel(Panel):
    """The process table; a click on the header sorts, a click on a row selects."""

    def __init__(
        self,
        draw: Callable[[int], RenderableType],
        *,
        on_sort: Callable[[str], None],
        on_select: Callable[[int], None],
        id: str,
        title: str = "",
    ) -> None:
        super().__init__(draw, id=id, title=title)
        self._on_sort = on_sort
        self._on_select = on_select

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == HEADER_LINE:
            key = column_at(offset.x, self.content_size.width)
            if key is not None:
                self._on_sort(key)
        elif offset.y > HEADER_LINE:
            self._on_select(offset.y - HEADER_LINE - 1)  # the row's index in the table


class MainArea(VerticalScroll, can_focus=False):
    """The scrolled panels; not focusable, so the arrow keys stay the app's (process selection).

    A redraw skips the panels scrolled out of view; `on_reveal` draws them when a
    scroll brings one back.
    """

    def __init__(self, *panels: Panel, on_reveal: Callable[[], None], id: str) -> None:
        super().__init__(*panels, id=id)
        self._on_reveal = on_reveal

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if any(panel.stale for panel in self.query(Panel)):
            self._on_reveal()
