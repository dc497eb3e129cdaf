"""`smicast record` end to end: options, refusals, signals and a SIGKILL mid-recording."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smicast.cli import main
from smicast.record.reader import TraceStats, iter_frames


def record_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "smicast", "record", *args]


def frames_in(path: Path) -> int:
    try:
        return sum(1 for _ in iter_frames([path]))
    except Exception:
        return 0


def wait_for_frames(path: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        got = frames_in(path) if path.exists() else 0
        if got >= n:
            return got
        time.sleep(0.05)
    raise AssertionError(f"no {n} frames in {path} within {timeout} s")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--compress", "gzip"], "--compress gzip contradicts the name t.ndjson.zst"),
        (["--duration", "5x"], "invalid duration"),
        (["--max-size", "10T"], "invalid size"),
        (["--max-files", "0"], "--max-files: expected a whole number from 1 to 99999, got '0'"),
        (["--interval", "0.01"], "--interval: expected a number from 0.05 to 1000000, got '0.01'"),
        (["--interval", "inf"], "--interval: expected a number from 0.05 to 1000000, got 'inf'"),
        (["--flush-every", "-1"], "expected a number from 0 to 1000000, got '-1'"),
        (["--duration", "367d"], "duration '367d' is longer than 366d"),
        (["--max-size", "2048G"], "size '2048G' is larger than 1024G"),
        (["--timeout-ms", "99999999999999999999"], "expected a whole number from 1 to 3600000"),
        (["--include", "gpu,bogus"], "unknown --include section `bogus`"),
        (["--from", "ftp://x/"], "invalid --from"),
        (["--from", "http://x:1", "--interval", "1"], "--interval cannot be used with --from"),
        (["--from", "http://x:1", "--simulate", "nvidia"], "--simulate cannot be used with --from"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["record", "-o", str(tmp_path / "t.ndjson.zst"), *args])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t.ndjson.zst").exists()


def test_compress_may_restate_the_extension(tmp_path: Path) -> None:
    out = tmp_path / "t.ndjson.gz"
    argv = ["record", "-o", str(out), "--compress", "gzip", "--simulate", "nvidia:1"]
    assert main([*argv, "--interval", "0.05", "--duration", "0.12"]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b"


def test_refuses_an_existing_file_and_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "t.ndjson"
    existing.write_bytes(b"precious\n")
    assert main(["record", "-o", str(existing), "--simulate", "nvidia:1", "--duration", "1"]) == 1
    assert capsys.readouterr().err == (
        f"record: error: {existing}: file exists; refusing to overwrite it\n"
    )
    assert existing.read_bytes() == b"precious\n"
    link = tmp_path / "l.ndjson"
    link.symlink_to(tmp_path / "target")
    assert main(["record", "-o", str(link), "--simulate", "nvidia:1", "--duration", "1"]) == 1
    assert "refusing to write through a symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "target").exists()


def test_records_every_section_with_simulated_gpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "t.ndjson.zst"
    argv = ["record", "-o", str(out), "--simulate", "nvidia:2", "--interval", "0.05"]
    argv += ["--duration", "0.3", "--include", "gpu,cpu,memory,chassis,process,storage"]
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")  # not a terminal: nothing extra
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    stats = TraceStats()
    frames = list(iter_frames([out], stats))
    assert 2 <= len(frames) <= 7  # the first frame waits out a CPU window; a loaded host runs late
    first = frames[0]
    assert len(first.gpus) == 2  # type: ignore[arg-type]
    for key in ("cpus", "memory", "chassis", "processes", "storage"):
        assert isinstance(getattr(first, key), list), key
    assert stats.header is not None and stats.header.interval_ms == 50


def test_sigterm_finishes_the_frame_and_closes_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "t.ndjson.zst"
    proc = subprocess.Popen(
        record_cmd("-o", str(out), "--simulate", "nvidia:2", "--interval", "0.05"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for_frames(out, 1, proc)  # the first frame is flushed at once, the rest in 10 s
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert (stdout, stderr) == (b"", b"")
    import zstandard

    # A clean close ends the zstd frame: the file decodes with no reader tolerance.
    whole = zstandard.ZstdDecompressor().decompressobj().decompress(out.read_bytes())
    assert whole.endswith(b"}\n")
    stats = TraceStats()
    assert len(list(iter_frames([out], stats))) >= 3
    assert (stats.corrupt, stats.oversized) == (0, 0)


@pytest.mark.parametrize("name", ["t.ndjson.zst", "t.ndjson.gz"])
def test_sigkill_mid_recording_keeps_the_flushed_frames(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    argv = ["-o", str(out), "--simulate", "nvidia:2", "--interval", "0.05"]
    argv += ["--flush-every", "0.1", "--include", "gpu,process"]
    with subprocess.Popen(
        record_cmd(*argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        seen = wait_for_frames(out, 6, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    stats = TraceStats()
    frames = list(iter_frames([out], stats))
    assert len(frames) >= seen
    assert stats.corrupt <= 1 and stats.oversized == 0  # at most the torn last line
    timestamps = [f.timestamp for f in frames]
    assert timestamps == sorted(timestamps)


def test_rotation_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "out.ndjson"
    argv = ["record", "-o", str(out), "--simulate", "nvidia:1", "--interval", "0.05"]
    assert main([*argv, "--duration", "0.5", "--max-size", "4K", "--max-files", "2"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[-1] == "out.ndjson"
    assert names[0].startswith("out.0") and names[0].endswith(".ndjson")
    header = json.loads(out.read_bytes().split(b"\n", 1)[0])
    assert header["header"] is True


def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    out = tmp_path / "t.ndjson.zst"
    argv = ["-o", str(out), "--simulate", "nvidia:1", "--interval", "0.05", "--duration", "0.6"]
    with subprocess.Popen(
        record_cmd(*argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave
    ) as proc:
        os.close(slave)
        shown = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
        proc.wait(timeout=20)
    os.close(master)
    assert proc.returncode == 0
    text = shown.decode()
    assert "\r\x1b[Krecord: 1 frames, raw " in text
    final = text.rsplit("\r\x1b[K", 1)[1]
    assert final.startswith("record: ") and "written" in final and "elapsed 00:00:00" in final
    assert "remaining 00:00:0" in final and final.endswith("\r\n")
