"""Mistakes on the command line end in one line naming the problem, never a traceback.

Every numeric option of every command has an upper bound (`commands/_common.py`
option types); file and socket paths that cannot work are named as the user gave them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from smicast.cli import main


@pytest.fixture(autouse=True)
def no_gpu_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMICAST_NO_GPU", "1")


def run(argv: Sequence[str]) -> int:
    try:
        return main(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def run_bounded(argv: Sequence[str], timeout_s: float = 60.0) -> int:
    """`run()` in a daemon thread: a regression (a server that starts, a replay that
    sleeps for years) fails the test instead of hanging the suite."""
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(run(argv)), daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert result, f"{argv[0]} did not return within {timeout_s} s"
    return result[0]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["snapshot", "--timeout-ms", HUGE], "argument --timeout-ms: expected a whole number"),
        (["snapshot", "--samples", HUGE], "argument --samples: expected a whole number"),
        (["snapshot", "--interval", "1e400"], "argument --interval: expected a number from 0"),
        (["snapshot", "--seed", "9" * 5000], "argument --seed: expected a whole number"),
        (["record", "-o", "t.ndjson", "--timeout-ms", HUGE], "argument --timeout-ms"),
        (["record", "-o", "t.ndjson", "--interval", HUGE], "argument -i/--interval"),
        (["record", "-o", "t.ndjson", "--duration", HUGE], "argument --duration"),
        (["record", "-o", "t.ndjson", "--max-size", HUGE + "G"], "argument --max-size"),
        (["record", "-o", "t.ndjson", "--max-files", HUGE], "argument --max-files"),
        (["record", "-o", "t.ndjson", "--flush-every", HUGE], "argument --flush-every"),
        (["api", "--port", HUGE], "argument -p/--port: expected a whole number from 0 to 65535"),
        (["api", "--timeout-ms", HUGE], "argument --timeout-ms"),
        (["api", "--interval", HUGE], "argument -i/--interval"),
        (["api", "--speed", HUGE], "argument --speed"),
        (["replay", "t.ndjson", "--speed", HUGE], "argument --speed"),
        (["replay", "t.ndjson", "--start", HUGE], "argument --start: invalid time"),
    ],
)
def test_numeric_options_are_bounded(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(argv) == 2
    assert message in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("", "-o/--output: empty path"),
        (".", "snapshot: error: .: is a directory; give a file name"),
        ("sub", "snapshot: error: sub: is a directory; give a file name"),
        ("sub/", "snapshot: error: sub: is a directory; give a file name"),
        ("missing/dir/x.json", "snapshot: error: missing/dir/x.json: No such file or directory"),
    ],
)
def test_snapshot_output_paths_that_cannot_work(
    output: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert run(["snapshot", "--include", "memory", "-o", output]) in (1, 2)
    assert message in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    assert list((tmp_path / "sub").iterdir()) == []


def test_replay_across_a_far_future_timestamp_warns_once_and_finishes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.test_replay_pacing import trace

    path = trace(tmp_path / "t.ndjson", [0, 1, "9999-12-31T23:59:59Z"])
    assert run_bounded(["replay", str(path), "--speed", "10000"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert len(captured.out.splitlines()) == 3
    [warning] = [line for line in captured.err.splitlines() if "warning" in line]
    assert warning.startswith("replay: warning: a gap of ") and "cut to 60 s" in warning


@pytest.mark.parametrize(
    ("socket_path", "message"),
    [
        ("missing/s.sock", "the directory missing does not exist"),
        ("s" * 120, "a Unix socket path holds at most 107"),
        ("regular-file/s.sock", "regular-file is not a directory"),
    ],
)
def test_api_socket_paths_that_cannot_work(
    socket_path: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regular-file").write_text("")
    argv = ["api", "--port", "0", "--socket", socket_path, "--state-dir", str(tmp_path / "st")]
    assert run_bounded(argv) == 1
    line = error_line(capsys)
    assert line.startswith(f"smicast api: error: unix:{socket_path}: ")
    assert message in line
