"""The Textual app driven by its Pilot: every key, sorting, filtering, panels, signals, replay."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import psutil
import pytest
from rich.console import Console

from smicast.view.app import ViewerApp
from smicast.view.model import SourceEvent, ViewModel
from smicast.view.panels import Panel
from smicast.view.replay import ReplaySource, Trace
from smicast.view.screens import ConfirmSignalScreen, HelpScreen, PromptScreen
from tests.fakes import make_process, make_snapshot
from tests.view_support import ListSource, simulated_frames, stamp, write_trace

FRAMES = simulated_frames(8, 5)


def panel_text(app: ViewerApp, panel_id: str) -> str:
    """What the panel shows, as plain text (its one renderable, printed by Rich)."""
    widget = app.query_one(f"#{panel_id}")
    console = Console(width=widget.content_size.width or 200, color_system=None)
    with console.capture() as cap:
        console.print(widget.render())
    return cap.get()


async def settle(pilot: object, until: Callable[[], object] = lambda: True) -> None:
    """Let frames and keys be handled (a loaded machine may need a while), then check."""
    deadline = time.monotonic() + 20
    await pilot.pause(0.15)  # type: ignore[attr-defined]
    while not until():
        assert time.monotonic() < deadline, "the app did not get there in 20 s"
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def test_keys_panels_sorting_filtering_and_help() -> None:
    async def main() -> None:
        source = ListSource([SourceEvent("node", f) for f in FRAMES])
        app = ViewerApp(ViewModel(), source)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(
                pilot, lambda: "node" in app.model.hosts and app.model.hosts["node"].frames == 5
            )
            assert "GPU7" in panel_text(app, "gpus")

            # help lists every binding
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            listed = app.screen._keys
            assert [d for _, d in listed] == [b.description for b in app.BINDINGS]  # type: ignore[union-attr]
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

            # panels hide and show
            for key, name in zip("1234", ("gpus", "cpu", "processes", "events"), strict=True):
                await pilot.press(key)
                assert app.query_one(f"#{name}").display is False
                await pilot.press(key)
                assert app.query_one(f"#{name}").display is True

            # theme
            before = app.theme
            await pilot.press("t")
            assert app.theme != before
            await pilot.press("t")
            assert app.theme == before

            # sorting by keys: default GPU memory descending
            procs = app.model.hosts["node"].processes
            rows = app.process_rows()
            assert [p.used_memory for p in rows] == sorted(
                (p.used_memory for p in procs), reverse=True
            )
            await pilot.press("s")  # next column: CPU %
            assert app.procs.sort_key == "cpu" and app.procs.descending
            await pilot.press("s")
            assert app.procs.sort_key == "command"
            await pilot.press("s")  # wraps to pid
            assert app.procs.sort_key == "pid" and not app.procs.descending
            assert [p.pid for p in app.process_rows()] == sorted(p.pid for p in procs)
            await pilot.press("r")
            assert [p.pid for p in app.process_rows()] == sorted(
                (p.pid for p in procs), reverse=True
            )

            # sorting by clicking a header: the USER column
            await pilot.click("#processes", offset=(14, 2))
            await settle(pilot, lambda: app.procs.sort_key == "user")
            users = [p.user for p in app.process_rows()]
            assert users == sorted(users)
            await pilot.click("#processes", offset=(14, 2))
            await settle(pilot, lambda: app.procs.descending)

            # filtering with /
            target = procs[0]
            await pilot.press("slash")
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*target.user)
            await pilot.press("enter")
            await settle(pilot, lambda: app.procs.filter_text == target.user)
            assert {p.user for p in app.process_rows()} == {target.user}
            assert f"filter: {target.user}" in panel_text(app, "processes")
            await pilot.press("escape")
            assert app.procs.filter_text == "" and len(app.process_rows()) == len(procs)

            # selection moves, and a simulated source refuses signals
            await pilot.press("down", "down")
            assert app.procs.selected_pid == app.process_rows()[1].pid
            await pilot.press("up")
            assert app.procs.selected_pid == app.process_rows()[0].pid
            # painted: the header and the selected row (line 2, under title and header) reversed
            panel = app.query_one("#processes", Panel)
            await settle(pilot)
            header, selected, other = (list(panel.render_line(y)) for y in (1, 2, 3))
            assert all(seg.style and seg.style.reverse for seg in header if seg.text.strip())
            assert all(seg.style and seg.style.reverse for seg in selected if seg.text.strip())
            assert not any(seg.style and seg.style.reverse for seg in other)
            await pilot.press("x")
            assert not isinstance(app.screen, ConfirmSignalScreen)
            assert "this machine only" in app.status_message.plain

            # replay keys say they need a replay
            await pilot.press("space")
            assert "--replay" in app.status_message.plain
            await pilot.press("pagedown", "pageup")

            # a new frame is drawn
            source.push(SourceEvent("node", FRAMES[0]))
            await settle(pilot, lambda: app.model.hosts["node"].frames == 6)
            assert app.model.hosts["node"].frames == 6
            await pilot.press("q")
        assert app.return_code in (0, None)

    asyncio.run(main())


def test_signal_confirmation_terminates_a_child_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = str(int(psutil.Process(child.pid).create_time()))
        proc = make_process(pid=child.pid, user=psutil.Process().username(), start_time=started)
        snap = make_snapshot(processes=[proc])

        async def main() -> None:
            source = ListSource([SourceEvent("node", snap)], signals_processes=True)
            app = ViewerApp(ViewModel(), source)
            async with app.run_test(size=(120, 40)) as pilot:
                await settle(pilot, lambda: bool(app.model.hosts))
                await pilot.press("x")
                assert "select a process first" in app.status_message.plain
                await pilot.press("down", "x")
                assert isinstance(app.screen, ConfirmSignalScreen)
                await pilot.press("n")  # cancel: nothing sent
                assert child.poll() is None
                await pilot.press("x")
                await pilot.press("t")
                await settle(pilot, lambda: "sent SIGTERM" in app.status_message.plain)

        asyncio.run(main())
        assert child.wait(timeout=10) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_reused_pid_and_a_foreign_process_are_not_signalled() -> None:
    from smicast.view.processes import SignalRefused, send_signal

    sent: list[tuple[int, int]] = []

    def kill(pid: int, sig: int) -> None:
        if pid == 4242:
            raise PermissionError
        sent.append((pid, sig))

    with pytest.raises(SignalRefused, match="not permitted"):
        send_signal(make_process(pid=4242), signal.SIGTERM, kill=kill, start_time=lambda p: 0)
    reused = make_process(pid=777, start_time="1000")
    with pytest.raises(SignalRefused, match="another process"):
        send_signal(reused, signal.SIGTERM, kill=kill, start_time=lambda p: 5000)
    assert sent == [(777, 0)]  # only the permission probe
    assert send_signal(reused, signal.SIGKILL, kill=kill, start_time=lambda p: 1000) == (
        "sent SIGKILL to pid 777"
    )


def test_every_replay_control(tmp_path: Path) -> None:
    frames = [make_snapshot(timestamp=stamp(i), hostname="h") for i in range(60)]
    trace = Trace([write_trace(tmp_path / "t.ndjson", frames)])

    async def main() -> None:
        source = ReplaySource(trace, speed=1.0)
        app = ViewerApp(ViewModel(), source)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, lambda: bool(app.model.hosts))
            assert app.query_one("#replay-bar").display
            await pilot.press("space")
            assert not source.playing
            await pilot.press("space")
            assert source.playing
            await pilot.press("right_square_bracket")
            assert not source.playing
            pos = source.position
            await pilot.press("right_square_bracket")
            assert source.position == pos + 1
            await pilot.press("left_square_bracket")
            assert source.position == pos
            await pilot.press("plus")
            assert source.speed == 2.0
            await pilot.press("minus", "minus")
            assert source.speed == 0.5
            await pilot.press("k")
            assert source.position == pos + 10
            await pilot.press("j")
            assert source.position == pos
            await pilot.press("g")
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*"00:42", "enter")
            await settle(pilot, lambda: source.position == 42)
            assert "frame 43 / 60" in panel_text(app, "replay-bar")
            await pilot.press("g", *"bad", "enter")
            assert "invalid time" in app.status_message.plain
            await pilot.press("L")
            assert source.loop
            await pilot.press("L")
            assert not source.loop
            await settle(pilot, lambda: app.model.hosts["h"].frames > 1)
            await settle(pilot, lambda: app.model.hosts["h"].snapshot.timestamp == stamp(42))  # type: ignore[union-attr]
            assert app.model.hosts["h"].snapshot.timestamp == stamp(42)  # type: ignore[union-attr]

    asyncio.run(main())


HOSTILE_USER = "[bold red]root[/]\x1b]0;pwned\x07"
HOSTILE_COMMAND = "[@click=app.quit]x[/] \x1b]52;c;cHduZWQ=\x07 \x1b[2J\u202egnp.exe \x9b31m"
HOSTILE_HOST = "evil\x1b[31m[blink]host"


def test_hostile_names_from_a_recording_render_inert(tmp_path: Path) -> None:
    proc = make_process(user=HOSTILE_USER, command=HOSTILE_COMMAND, process_name="[b]x")
    frame = make_snapshot(hostname=HOSTILE_HOST, processes=[proc])
    frame = msgspec.structs.replace(frame, gpus=[g for g in frame.gpus or []])
    trace = Trace([write_trace(tmp_path / "hostile.ndjson", [frame])])

    async def main() -> None:
        app = ViewerApp(ViewModel(), ReplaySource(trace))
        async with app.run_test(size=(200, 40)) as pilot:
            await settle(pilot, lambda: bool(app.model.hosts))
            screen = app.export_screenshot()
            procs = panel_text(app, "processes")
            host = panel_text(app, "host-bar")
            # markup shows as the literal text, controls as visible notation
            assert "[bold red]r" in procs  # the user column is 12 cells wide
            assert (
                "[@click=app.quit]x[/] ^[]52;c;cHduZWQ=^G ^[[2J\\u202egnp.exe \\u009b31m" in procs
            )
            assert "evil^[[31m[blink]host" in host
            for text in (procs, host, screen):
                assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
            await pilot.click("#processes", offset=(60, 3))  # a click on the command: no action
            await settle(pilot)
            assert app.is_running

    asyncio.run(main())


def test_first_frame_is_recorded_and_announced_once() -> None:
    calls: list[str] = []

    async def main() -> None:
        source = ListSource([SourceEvent("n", FRAMES[0]), SourceEvent("n", FRAMES[1])])
        app = ViewerApp(
            ViewModel(),
            source,
            on_first_frame=lambda: calls.append(app.query_one("#host-bar", Panel).render().plain),
        )
        t0 = time.monotonic()
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, lambda: app.first_frame_at is not None and bool(calls))
            assert app.first_frame_at is not None and app.first_frame_at >= t0
            source.push(SourceEvent("n", FRAMES[2]))
            await settle(pilot, lambda: app.model.first().frames == 3)  # type: ignore[union-attr]
        # once, after the first frame was drawn (the host bar already shows the host)
        assert len(calls) == 1 and "GPUs" in calls[0]

    asyncio.run(main())


@pytest.mark.skipif(os.environ.get("SMICAST_SKIP_SCREENSHOTS") == "1", reason="asked to skip")
def test_screenshots_of_8_and_64_gpus() -> None:
    out = Path(__file__).resolve().parents[1] / "test-artifacts"
    out.mkdir(exist_ok=True)
    frames = {8: FRAMES + simulated_frames(8, 40)[5:], 64: simulated_frames(64, 40)}

    async def shoot(count: int, size: tuple[int, int]) -> Path:
        source = ListSource([SourceEvent("gpu-node-01", f) for f in frames[count]])
        app = ViewerApp(ViewModel(), source)
        async with app.run_test(size=size) as pilot:
            n = len(frames[count])
            await settle(pilot, lambda: bool(app.model.hosts) and app.model.first().frames == n)  # type: ignore[union-attr]
            name = f"view-{count}gpu-{size[0]}x{size[1]}.svg"
            app.save_screenshot(name, str(out))
            text = app.export_screenshot()
            assert f"GPUs {count}" in text.replace("&#160;", " ")
        return out / name

    async def main() -> list[Path]:
        return [await shoot(n, size) for n in (8, 64) for size in ((80, 24), (200, 60))]

    svgs = asyncio.run(main())
    for svg in svgs:
        assert svg.stat().st_size > 1000
    _to_png(svgs)


def _to_png(svgs: list[Path]) -> None:
    """PNG copies for people who look at artifacts in a browser-less viewer (best effort)."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return
    procs = [
        subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={svg.with_suffix('.profile')}",
                f"--screenshot={svg.with_suffix('.png')}",
                "--window-size=1700,1250" if "200x60" in svg.name else "--window-size=820,640",
                svg.as_uri(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for svg in svgs
    ]
    for proc in procs:  # in parallel: one Chromium start each is most of the time
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for svg in svgs:
        shutil.rmtree(svg.with_suffix(".profile"), ignore_errors=True)
