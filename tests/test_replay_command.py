"""`smicast replay` end to end: formats, skipped-line counts, schema errors and options."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from smicast.cli import main
from smicast.encode import snapshot_json
from smicast.record.format import header_line
from smicast.record.writer import TraceWriter
from smicast.schema import Snapshot, utc_timestamp
from tests.fakes import make_gpu, make_snapshot

T0 = 1_000_000


def frame(i: int) -> Snapshot:
    return make_snapshot(timestamp=utc_timestamp(T0 + i), hostname="node-a")


def write(path: Path, n: int) -> list[Snapshot]:
    frames = [frame(i) for i in range(n)]
    writer = TraceWriter(path, hosts=["node-a"], interval_ms=1000)
    for f in frames:
        writer.write(f)
    writer.close()
    return frames


def run(capsys: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    code = main(["replay", *argv])
    out, err = capsys.readouterr()
    return code, out, err.decode()


@pytest.mark.parametrize("name", ["t.ndjson", "t.ndjson.gz", "t.ndjson.zst"])
def test_prints_the_frames_as_ndjson(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], name: str
) -> None:
    frames = write(tmp_path / name, 5)
    code, out, err = run(capsysbinary, str(tmp_path / name))
    assert (code, err) == (0, "")
    assert out == b"".join(snapshot_json(f) + b"\n" for f in frames)


def test_segments_in_the_order_given(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    write(tmp_path / "a.ndjson", 2)
    (tmp_path / "b.ndjson").write_bytes(snapshot_json(frame(7)) + b"\n")
    code, out, _ = run(capsysbinary, str(tmp_path / "b.ndjson"), str(tmp_path / "a.ndjson"))
    assert code == 0
    assert [json.loads(x)["timestamp"] for x in out.splitlines()] == [
        utc_timestamp(T0 + i) for i in (7, 0, 1)
    ]


def test_csv_has_a_timestamp_column_and_one_header(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "t.ndjson"
    write(path, 3)
    code, out, _ = run(capsysbinary, str(path), "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out.decode())))
    assert rows[0][:4] == ["timestamp", "section", "index", "hostname"]
    per_frame = 4  # 2 gpus, 1 cpu, 1 memory, no chassis
    assert len(rows) == 1 + 3 * per_frame
    assert {r[0] for r in rows[1:]} == {utc_timestamp(T0 + i) for i in range(3)}
    assert rows[1][1:3] == ["gpu", "0"]


def test_csv_keeps_cells_with_newlines_whole(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "t.ndjson"
    snap = make_snapshot(timestamp=utc_timestamp(T0), gpus=[make_gpu('two\nlines, quoted "x"')])
    path.write_bytes(snapshot_json(snap) + b"\n")
    code, out, _ = run(capsysbinary, str(path), "--format", "csv", "--query", "name")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out.decode())))
    assert rows[0] == ["timestamp", "name"]
    assert rows[1] == [utc_timestamp(T0), 'two\nlines, quoted "x"']


def test_prometheus_prints_one_exposition_per_frame(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "t.ndjson.zst"
    write(path, 2)
    code, out, _ = run(capsysbinary, str(path), "--format", "prometheus")
    text = out.decode()
    assert code == 0
    assert text.count("# frame ") == 2
    assert text.startswith(f"# frame {utc_timestamp(T0)}\n")
    assert text.count("\nall_smi_up{") + text.startswith("all_smi_up{") == 2


def test_skipped_lines_are_counted_on_stderr(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "t.ndjson"
    path.write_bytes(
        header_line(["h"], 1000)
        + snapshot_json(frame(0))
        + b"\n{oops\n"
        + snapshot_json(frame(1))
        + b'\n{"schema":1,"timestamp":"torn'
    )
    code, out, err = run(capsysbinary, str(path))
    assert code == 0 and len(out.splitlines()) == 2
    assert err == "replay: skipped 2 corrupt, 0 oversized lines\n"


def test_another_schema_exits_1_with_the_exact_message(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "t.ndjson"
    path.write_bytes(snapshot_json(frame(0)) + b'\n{"schema":2,"timestamp":"x","hostname":"h"}\n')
    code, out, err = run(capsysbinary, str(path))
    assert code == 1
    assert len(out.splitlines()) == 1
    assert err == "replay: unsupported schema version 2, this smicast supports schema 1\n"


def test_a_missing_file_exits_1_naming_it(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, _, err = run(capsysbinary, str(tmp_path / "gone.ndjson"))
    assert code == 1
    assert err == f"replay: error: {tmp_path / 'gone.ndjson'}: No such file or directory\n"


def test_start_skips_into_the_trace(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "t.ndjson"
    write(path, 5)
    code, out, _ = run(capsysbinary, str(path), "--start", "0:03")
    assert [json.loads(x)["timestamp"] for x in out.splitlines()] == [
        utc_timestamp(T0 + 3),
        utc_timestamp(T0 + 4),
    ]
    code, out, err = run(capsysbinary, str(path), "--start", "1:00")
    assert (code, out) == (1, b"")
    assert "past the end" in err


def test_paced_replay_prints_the_same_frames(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "t.ndjson"
    path.write_bytes(b"".join(snapshot_json(frame(0)) + b"\n" for _ in range(3)))  # no gaps
    code, out, _ = run(capsysbinary, str(path), "--speed", "1000")
    assert code == 0 and len(out.splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "1:2:3:4"], "invalid time"),
        (["--start", "junk"], "invalid time"),
        (["--speed", "0"], "speed must be between 0.01 and 10000, got 0"),
        (["--speed", "fast"], "expected a number"),
        (["--loop"], "--loop needs --speed"),
        (["--query", "name"], "--query applies to --format csv only"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["replay", str(tmp_path / "t.ndjson"), *args])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
