"""Untrusted strings (process names, commands, users, host names) made safe for a terminal.

Rich and Textual would act on two things in such a string: markup (`[bold]`,
`[@click=...]`) when it is parsed as markup, and control characters (ESC starts
cursor movement, OSC 52 clipboard writes, title changes) when they reach the
terminal. Every untrusted string therefore goes through `inert()`: control
characters become visible caret or `\\u` notation, and the result is a
`rich.text.Text`, which is never parsed as markup.
"""

from __future__ import annotations

from typing import Final

from rich.style import Style
from rich.text import Text

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


def clean(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` with every control and invisible character shown as notation, cut to `limit`."""
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable() and _INVISIBLE.isdisjoint(map(ord, text)):
        return text
    return "".join(_visible(c) for c in text)


def inert(text: str, style: str | Style = "", limit: int = MAX_TEXT_CHARS) -> Text:
    """A Text that shows `text` literally: no markup, no terminal control."""
    return Text(clean(text, limit), style=style, no_wrap=True, overflow="ellipsis")


class Lines(Text):
    """A Text of many lines that keeps its lines: a panel paints them without splitting."""

    def __init__(self, lines: list[Text]) -> None:
        joined = Text("\n").join(lines)
        super().__init__(joined.plain, spans=joined.spans, no_wrap=True, overflow="ellipsis")
        self.parts = lines
