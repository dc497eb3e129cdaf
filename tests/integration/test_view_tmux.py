"""`smicast view` in a real terminal (tmux): screen contents, keys, quitting, terminal restored.

tmux is the terminal: `capture-pane` reads what is on the screen, `send-keys` types,
and the pane's flags say whether the alternate screen, mouse tracking and the cursor
were put back. A recording with hostile process and host names checks that nothing
in them reaches the terminal as a control sequence (the pane title stays as it was).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import make_process, make_snapshot
from tests.integration.support import require_tool, wait_until
from tests.view_support import write_trace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    def __init__(self, tmux: str) -> None:
        self.tmux = tmux
        self.server = f"smicast-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        out = subprocess.run(
            [self.tmux, "-L", self.server, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "view")

    def flag(self, name: str) -> str:
        return self("display-message", "-p", "-t", "view", f"#{{{name}}}").strip()

    def wait_for(self, *texts: str, timeout_s: float = 20) -> str:
        """The screen once every one of `texts` is on it (Textual paints in steps)."""
        return wait_until(
            lambda: s if all(t in (s := self.screen()) for t in texts) else None,
            timeout_s,
            f"{texts!r} on the screen",
        )


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    term = Tmux(require_tool("tmux"))
    yield term
    subprocess.run([term.tmux, "-L", term.server, "kill-server"], capture_output=True, check=False)


def start(tmux: Tmux, *args: str, size: str = "160x50", command: str = "view") -> None:
    view = shlex.join([sys.executable, "-m", "smicast", *([command] if command else []), *args])
    # COLUMNS/LINES from the test runner's environment would override the pane's real size.
    script = (
        f"cd {shlex.quote(str(ROOT))}; unset COLUMNS LINES; echo BEFORE-VIEW; {view}; "
        "echo EXIT=$?; sleep 120"
    )
    width, height = size.split("x")
    tmux("new-session", "-d", "-s", "view", "-x", width, "-y", height, "sh", "-c", script)


def test_view_runs_in_a_terminal_and_quits_cleanly(tmux: Tmux) -> None:
    start(tmux, "--simulate", "nvidia:8", "--interval", "1")
    screen = tmux.wait_for("GPUs 8")
    assert "GPU7" in screen and "GPU processes" in screen
    assert tmux.flag("alternate_on") == "1"
    tmux("send-keys", "-t", "view", "?")
    tmux.wait_for("smicast view: keys")
    tmux("send-keys", "-t", "view", "Escape")
    wait_until(lambda: "smicast view: keys" not in tmux.screen() or None, 10, "help closed")
    tmux("send-keys", "-t", "view", "1")  # hide the GPU panel
    wait_until(lambda: "▔GPUs▔" not in tmux.screen() or None, 10, "GPU panel hidden")
    tmux("send-keys", "-t", "view", "q")
    screen = tmux.wait_for("EXIT=")
    assert "EXIT=0" in screen
    assert "BEFORE-VIEW" in screen and "GPUs 8" not in screen  # back on the normal screen
    assert tmux.flag("alternate_on") == "0"
    assert tmux.flag("mouse_any_flag") == "0" and tmux.flag("cursor_flag") == "1"


def test_hostile_names_in_a_recording_stay_inert_on_a_real_terminal(
    tmux: Tmux, tmp_path: Path
) -> None:
    proc = make_process(
        user="[bold red]root[/]",
        command="[@click=app.quit]x[/] \x1b]0;PWNED-TITLE\x07 \x1b]52;c;cHduZWQ=\x07 \x1b[2J",
    )
    frame = make_snapshot(hostname="evil\x1b]2;PWNED-TITLE\x07host", processes=[proc])
    trace = write_trace(tmp_path / "hostile.ndjson", [frame])
    start(tmux, "--replay", str(trace))
    screen = tmux.wait_for("GPU processes 1/1", "[@click=app.quit]x[/]")  # markup as text
    assert "^[]0;PWNED-TITLE^G ^[]52;c;cHduZWQ=^G" in screen
    assert "PWNED" not in tmux.flag("pane_title")
    assert "evil^[]2;PWNED-TITLE^Ghost" in screen
    tmux("send-keys", "-t", "view", "q")
    assert "EXIT=0" in tmux.wait_for("EXIT=")


def test_bare_smicast_on_a_terminal_opens_the_viewer(tmux: Tmux) -> None:
    start(tmux, command="", size="100x30")
    tmux.wait_for("▔GPUs▔", "? help")
    tmux("send-keys", "-t", "view", "q")
    assert "EXIT=0" in tmux.wait_for("EXIT=")
