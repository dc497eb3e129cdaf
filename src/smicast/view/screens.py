"""The viewer's modal screens: help, a one-line prompt (filter, jump to a time), signal confirmation."""

from __future__ import annotations

import signal
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from smicast.schema import ProcessInfo
from smicast.view.text import inert


class HelpScreen(ModalScreen[None]):
    """Every key of the viewer, from the bindings themselves (so none is left out)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "close help")
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, description in self._keys:
            table.add_row(key, description)
        with Vertical(id="help-box"):
            yield Static(Text("smicast view: keys (Esc closes)", style="bold"))
            yield Static(table, id="help-keys")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """One line of input; Enter answers it, Esc cancels (None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, question: str, value: str = "", *, max_length: int = 128) -> None:
        super().__init__()
        self._question = question
        self._value = value
        self._max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Static(Text(self._question, style="bold"))
            yield Input(value=self._value, max_length=self._max_length, id="prompt-input")
            yield Static("", id="prompt-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def show_error(self, message: str) -> None:
        self.query_one("#prompt-error", Static).update(Text(message, style="red"))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmSignalScreen(ModalScreen[signal.Signals | None]):
    """Which signal to send to one process: TERM (t or y), KILL (k), or none (n, Esc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t,y", "answer('SIGTERM')", "send SIGTERM"),
        Binding("k", "answer('SIGKILL')", "send SIGKILL"),
        Binding("n,escape", "answer('')", "cancel"),
    ]

    def __init__(self, proc: ProcessInfo, suggest_kill: bool = False) -> None:
        super().__init__()
        self._proc = proc
        self._suggest_kill = suggest_kill

    def compose(self) -> ComposeResult:
        p = self._proc
        text = Text("Signal process ", style="bold")
        text.append(str(p.pid), style="bold")
        text.append("\nuser: ")
        text.append_text(inert(p.user or "?", limit=64))
        text.append("\ncommand: ")
        text.append_text(inert(p.command or p.process_name or "?", limit=200))
        text.append("\n\n")
        if self._suggest_kill:
            text.append("It is still running after SIGTERM.\n", style="yellow")
        text.append("t/y", style="bold")
        text.append(": SIGTERM   ")
        text.append("k", style="bold")
        text.append(": SIGKILL   ")
        text.append("n/Esc", style="bold")
        text.append(": cancel")
        with Vertical(id="confirm-box"):
            yield Static(text)

    def action_answer(self, name: str) -> None:
        self.dismiss(signal.Signals[name] if name else None)
