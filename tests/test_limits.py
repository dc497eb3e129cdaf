"""Caps on process strings: 256/128/128 UTF-8 bytes with a truncation marker (reference §4.9)."""

from __future__ import annotations

import pytest

from smicast.encode import with_process_limits
from smicast.limits import (
    MAX_COMMAND_BYTES,
    MAX_MARKER_BYTES,
    MAX_NAME_BYTES,
    MAX_USER_BYTES,
    limit_process,
    truncate_label,
)
from tests.fakes import make_process, make_snapshot


def test_caps_match_all_smi() -> None:
    assert (MAX_COMMAND_BYTES, MAX_NAME_BYTES, MAX_USER_BYTES) == (256, 128, 128)


@pytest.mark.parametrize("text", ["", "python", "x" * 256, "é" * 128, "日" * 85 + "a"])
def test_values_within_the_cap_are_untouched(text: str) -> None:
    assert len(text.encode()) <= 256
    assert truncate_label(text, 256) is text


@pytest.mark.parametrize(
    ("text", "cap", "expected"),
    [
        ("x" * 257, 256, "x" * 256 + "...(1 bytes truncated)"),
        ("x" * 1000, 256, "x" * 256 + "...(744 bytes truncated)"),
        ("n" * 129, 128, "n" * 128 + "...(1 bytes truncated)"),
        # Two-byte characters: 128 of them fill 256 bytes exactly.
        ("é" * 200, 256, "é" * 128 + "...(144 bytes truncated)"),
        # Three-byte characters: 85 fit (255 bytes); the 86th would straddle the cap.
        ("日" * 100, 256, "日" * 85 + "...(45 bytes truncated)"),
        # Four-byte characters: 32 fit in 128 bytes, a cut inside the 33rd moves back.
        ("a" + "🚀" * 40, 128, "a" + "🚀" * 31 + "...(36 bytes truncated)"),
    ],
)
def test_truncates_on_a_character_boundary_with_a_marker(
    text: str, cap: int, expected: str
) -> None:
    result = truncate_label(text, cap)
    assert result == expected
    kept = result[: result.rindex("...(")]
    assert len(kept.encode()) <= cap
    dropped = len(text.encode()) - len(kept.encode())
    assert result.endswith(f"...({dropped} bytes truncated)")


@pytest.mark.parametrize("text", ["x" * 1000, "é" * 300, "日" * 200, "🚀" * 100, "a🚀" * 90])
@pytest.mark.parametrize("cap", [128, 256])
def test_truncation_is_idempotent(text: str, cap: int) -> None:
    once = truncate_label(text, cap)
    assert truncate_label(once, cap) == once
    assert truncate_label(truncate_label(once, cap), cap) == once


def test_a_marker_alone_does_not_shelter_an_overlong_value() -> None:
    forged = "x" * 500 + "...(3 bytes truncated)"
    result = truncate_label(forged, 256)
    assert result == "x" * 256 + f"...({len(forged) - 256} bytes truncated)"


def test_a_forged_marker_with_a_long_count_does_not_pass() -> None:
    # A local user's command line: 100 KB would otherwise reach every frame.
    marker = "...(" + "9" * 100_000 + " bytes truncated)"
    forged = "x" * 200 + marker
    result = truncate_label(forged, MAX_COMMAND_BYTES)
    assert len(result.encode()) <= MAX_COMMAND_BYTES + MAX_MARKER_BYTES
    assert result == "x" * 200 + marker[:56] + f"...({len(forged) - 256} bytes truncated)"
    assert truncate_label(result, MAX_COMMAND_BYTES) == result


def test_limit_process_caps_command_name_and_user() -> None:
    proc = make_process(command="c" * 300, process_name="n" * 130, user="ü" * 70)
    limited = limit_process(proc)
    assert limited.command == "c" * 256 + "...(44 bytes truncated)"
    assert limited.process_name == "n" * 128 + "...(2 bytes truncated)"
    assert limited.user == "ü" * 64 + "...(12 bytes truncated)"
    assert limited.pid == proc.pid and limited.used_memory == proc.used_memory
    assert limit_process(limited) is limited
    short = make_process()
    assert limit_process(short) is short


def test_with_process_limits_applies_to_every_process() -> None:
    procs = [make_process(pid=1), make_process(pid=2, command="z" * 257)]
    snap = with_process_limits(make_snapshot(processes=procs))
    assert isinstance(snap.processes, list)
    assert snap.processes[0] is procs[0]
    assert snap.processes[1].command == "z" * 256 + "...(1 bytes truncated)"
    assert snap.gpus == make_snapshot().gpus
