"""Untrusted strings (process names, commands, users, host names) made safe for a terminal.

Rich and Textual would act on two things in such a string: markup (`[bold]`,
`[@click=...]`) when it is parsed as markup, and control characters (ESC starts
cursor movement, OSC 52 clipboard writes, title changes) when they reach the
terminal. Every untrusted string therefore goes through `inert()`: control
characters become visible caret or `\\u` notation, and the result is a
`rich.text.Text`, which is never parsed as markup.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text

MAX_TEXT_CHARS: Final = 512

# Bidirectional overrides and isolates can make text display in a different order
# than it is stored (a command that looks harmless); zero-width characters hide text.
_INVISIBLE: Final = frozenset(
    (
        0x061C,
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x2060,
        0xFEFF,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
)


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return "^" + chr(code + 0x40)  # ESC -> ^[, BEL -> ^G, NUL -> ^@
    if code == 0x7F:
        return "^?"
    if code in _INVISIBLE or not ch.isprintable():
        # C1 controls (CSI 0x9b, OSC 0x9d), line separators, invisible marks
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


@lru_cache(maxsize=4096)
def clean(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` with every control and invisible character shown as notation, cut to `limit`.

    Remembered for the last few thousand strings: the same commands, users and GPU names
    come back in every frame."""
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable() and _INVISIBLE.isdisjoint(map(ord, text)):
        return text
    return "".join(_visible(c) for c in text)


def inert(text: str, style: str | Style = "", limit: int = MAX_TEXT_CHARS) -> Text:
    """A Text that shows `text` literally: no markup, no terminal control."""
    return Text(clean(text, limit), style=style, no_wrap=True, overflow="ellipsis")


def built_text(plain: str, spans: list[Span], style: str | Style = "") -> Text:
    """A Text of `plain`, assembled by the viewer from its own format strings and `clean()`
    pieces, with the spans given.

    Rich's constructor scans every string for control codes (`str.translate`), which was
    the largest single cost of drawing 64 GPUs. A string that is all printable cannot
    hold one, so it skips that scan; any other string takes Rich's way.
    """
    if not plain.isprintable():
        return Text(plain, style=style, spans=spans, no_wrap=True, overflow="ellipsis")
    text = Text(style=style, no_wrap=True, overflow="ellipsis")
    text._text, text._length, text._spans = [plain], len(plain), spans
    return text


_NEWLINE = Text("\n")


class Lines(Text):
    """A Text of many lines that keeps its lines: a panel paints them without splitting."""

    def __init__(self, lines: list[Text]) -> None:
        joined = _NEWLINE.join(lines)  # Rich's join does not scan the lines again
        super().__init__(no_wrap=True, overflow="ellipsis")
        self._text, self._length, self._spans = joined._text, joined._length, joined._spans
        self.parts = lines


_NULL_STYLE: Final = Style.null()
SpanStyles = dict[tuple[Style, "str | Style"], Style]


def span_segments(
    line: Text, under: Style, console: Console, cache: SpanStyles
) -> list[Segment] | None:
    """`line`'s segments over `under` (the colours beneath it) where its spans follow each
    other without overlapping (every line the viewer builds), as `Text.render` would paint
    them at a fraction of its cost; None for overlapping spans, which `Text.render`
    combines. `cache` keeps the combined styles (the caller bounds it)."""
    plain = line.plain
    segments: list[Segment] = []
    pos, length = 0, len(plain)
    for start, end, style in line.spans:
        end = min(end, length)
        if start < pos:
            return None
        if end <= start:
            continue
        if start > pos:
            segments.append(Segment(plain[pos:start], under))
        combined = cache.get((under, style))
        if combined is None:
            combined = cache[(under, style)] = under + console.get_style(style, default=_NULL_STYLE)
        segments.append(Segment(plain[start:end], combined))
        pos = end
    if pos < length:
        segments.append(Segment(plain[pos:], under))
    return segments
