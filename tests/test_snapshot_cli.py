"""`smicast snapshot`: formats, sections, samples, output files and exit codes.

Most tests call `smicast.cli.main` in-process; a few run `python -m smicast` for
what only a real process shows (exit status, stdout a pipe or a terminal).
GPU detection is switched off (`SMICAST_NO_GPU=1`) so results do not depend on
the machine; `--simulate` supplies accelerators where a test needs them.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import pty
import re
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from smicast.cli import main
from smicast.encode import decode_snapshot
from smicast.schema import Snapshot

ALL = "gpu,cpu,memory,chassis,process,storage"
SIM = ["--simulate", "nvidia:2", "--seed", "7"]
SECTION_KEYS = {"gpus", "cpus", "memory", "chassis", "processes", "storage"}


@pytest.fixture(autouse=True)
def no_gpu_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMICAST_NO_GPU", "1")


def run(argv: Sequence[str]) -> int:
    """`main()` as the shell sees it: option errors exit through SystemExit."""
    try:
        return main(["snapshot", *argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def run_json(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> Any:
    assert run([*argv, "--no-pretty"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    return json.loads(out)


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "SMICAST_NO_GPU": "1"}


def smicast(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "smicast", "snapshot", *args],
        capture_output=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )


# -- reference §6.2 ------------------------------------------------------------------


def test_json_single_sample_contains_expected_schema(capsys: pytest.CaptureFixture[str]) -> None:
    obj = run_json(capsys, [*SIM, "--include", "gpu,cpu,memory"])  # §6.2 #1
    assert obj["schema"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", obj["timestamp"])
    assert isinstance(obj["hostname"], str) and obj["hostname"]
    assert obj["gpus"][0]["name"] == "NVIDIA H200 141GB HBM3"
    assert len(obj["gpus"]) == 2
    assert isinstance(obj["cpus"][0]["cpu_model"], str)
    assert isinstance(obj["memory"], list) and obj["memory"]
    assert "chassis" not in obj and "processes" not in obj and "storage" not in obj


def test_json_multi_sample_emits_array(capsys: pytest.CaptureFixture[str]) -> None:
    frames = run_json(capsys, ["--include", "memory", "--samples", "3", "--interval", "0"])
    assert isinstance(frames, list) and len(frames) == 3  # §6.2 #2
    for frame in frames:
        assert frame["schema"] == 1
        assert isinstance(frame["memory"][0]["utilization"], float)
        assert set(frame) & SECTION_KEYS == {"memory"}


def test_hard_failure_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "snap.json"  # §6.2 #5: no GPU here and only gpu asked for
    assert run(["--include", "gpu", "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no devices were collected from any reader" in captured.err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_hard_failure_on_stdout_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--include", "gpu", "--samples", "2"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "snapshot is empty" in captured.err


def test_include_only_memory_omits_other_sections(capsys: pytest.CaptureFixture[str]) -> None:
    obj = run_json(capsys, [*SIM, "--include", "memory"])  # §6.2 #6
    assert set(obj) & SECTION_KEYS == {"memory"}
    assert set(obj) == {"schema", "timestamp", "hostname", "memory"}


def test_output_dash_is_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # §6.2 #9
    assert run(["--include", "memory", "-o", "-", "--no-pretty"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == 1
    assert not (tmp_path / "-").exists()
    assert list(tmp_path.iterdir()) == []


def test_output_file_is_owner_only_and_atomic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "snap.json"  # §6.2 #12
    old_umask = os.umask(0)
    try:
        assert run([*SIM, "--include", "gpu,memory", "-o", str(out)]) == 0
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert capsys.readouterr().out == ""
    data = out.read_bytes()
    assert data.endswith(b"}\n") and data.count(b"\n") == 1  # a file is not a terminal
    assert decode_snapshot(data).gpus
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.json"]


def test_output_replaces_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    out.write_text("old")
    assert run(["--include", "memory", "-o", str(out)]) == 0
    assert json.loads(out.read_bytes())["memory"]


def test_output_refuses_to_follow_symlinks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "snap.json"  # §6.2 #13
    target = tmp_path / "victim"
    (tmp_path / "snap.json.tmp").symlink_to(target)
    assert run(["--include", "memory", "-o", str(out)]) == 1
    assert not target.exists()
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("snapshot: error:") and "symbolic link" in err


def test_unwritable_output_is_exit_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--include", "memory", "-o", str(tmp_path / "no" / "such" / "dir")]) == 1
    assert capsys.readouterr().err.startswith("snapshot: error:")
    target_dir = tmp_path / "a-directory"
    target_dir.mkdir()
    assert run(["--include", "memory", "-o", str(target_dir)]) == 1  # rename onto a directory
    assert capsys.readouterr().err.startswith("snapshot: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory"]


# -- option errors: exit 2 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--include", "gpu,bogus"],
            "unknown --include section `bogus` (valid: gpu, cpu, memory, chassis, process, storage)",
        ),
        (["--include", ""], "at least one section must be requested via --include"),
        (["--include", "gpus"], "unknown --include section `gpus`"),
        (["--samples", "0"], "--samples: expected a whole number from 1 to 100000, got '0'"),
        (["--samples", "-3"], "--samples: expected a whole number from 1 to 100000, got '-3'"),
        (["--simulate", "intel:2"], "invalid --simulate value"),
        (["--simulate", "nvidia:0"], "invalid --simulate count 0"),
        (["--query", "name", "--format", "json"], "--query applies to --format csv only"),
        (["--query", "name", "--format", "prometheus"], "--query applies to --format csv only"),
        (["--format", "yaml"], "invalid choice: 'yaml'"),
        (["--interval", "-1"], "expected a number from 0 to 1000000, got '-1'"),
        (["--timeout-ms", "0"], "--timeout-ms: expected a whole number from 1 to 3600000, got '0'"),
        (
            ["--timeout-ms", "99999999999999999999"],
            "--timeout-ms: expected a whole number from 1 to 3600000, got '99999999999999999999'",
        ),
    ],
)
def test_bad_options_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "snap.json"
    assert run([*argv, "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    assert not out.exists()


# -- formats ----------------------------------------------------------------------------


def test_samples_with_zero_interval_never_sleep(capsys: pytest.CaptureFixture[str]) -> None:
    frames = run_json(capsys, [*SIM, "--include", "gpu", "--samples", "3", "--interval", "0"])
    assert [len(f["gpus"]) for f in frames] == [2, 2, 2]
    # The simulation moves on every read: three samples, three different readings.
    utils = [tuple(g["utilization"] for g in f["gpus"]) for f in frames]
    powers = [tuple(g["power_consumption"] for g in f["gpus"]) for f in frames]
    assert len(set(powers)) > 1 or len(set(utils)) > 1


def test_csv_default_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SIM, "--include", "gpu,memory", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[0] == (
        "section,index,hostname,name,uuid,utilization,used_memory,total_memory,"
        "temperature,power_consumption"
    )
    assert [line.split(",")[:2] for line in lines[1:4]] == [
        ["gpu", "0"],
        ["gpu", "1"],
        ["memory", "0"],
    ]
    assert lines[4:] == [""]  # LF line ends, nothing after the last row


def test_csv_and_prometheus_carry_the_same_data_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["--simulate", "nvidia:3", "--seed", "11", "--include", "gpu"]
    gpus = run_json(capsys, base)["gpus"]

    query = "uuid,name,utilization,temperature,power_consumption,used_memory"
    assert run([*base, "--format", "csv", "--query", query]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(gpus) == 3
    for row, gpu in zip(rows, gpus, strict=True):
        assert row["uuid"] == gpu["uuid"] and row["name"] == gpu["name"]
        assert float(row["utilization"]) == gpu["utilization"]
        assert int(row["temperature"]) == gpu["temperature"]
        assert float(row["power_consumption"]) == gpu["power_consumption"]
        assert int(row["used_memory"]) == gpu["used_memory"]

    assert run([*base, "--format", "prometheus"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# HELP all_smi_up ")
    assert "# TYPE all_smi_gpu_utilization gauge\n" in text  # §6.2 #7
    for gpu in gpus:
        sample = re.search(
            r'^all_smi_gpu_utilization\{[^}]*gpu_uuid="'
            + re.escape(gpu["uuid"])
            + r'"[^}]*\} (\S+)$',
            text,
            re.MULTILINE,
        )
        assert sample is not None and float(sample.group(1)) == gpu["utilization"]


def test_prometheus_with_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SIM, "--include", ALL, "--format", "prometheus", "--samples", "2"]) == 0
    captured = capsys.readouterr()
    assert "--samples > 1 is ignored for --format prometheus (single scrape)" in captured.err
    text = captured.out
    for family in (
        "all_smi_gpu_utilization",
        "all_smi_memory_total_bytes",
        "all_smi_cpu_utilization",
    ):
        assert f"\n# TYPE {family} gauge\n" in text
        assert f"\n{family}{{" in text
    helps = re.findall(r"^# HELP (\S+) ", text, re.MULTILINE)
    assert len(helps) == len(set(helps))  # one HELP per family
    assert text.endswith("\n")


def test_pretty_and_no_pretty(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--include", "memory", "--pretty"]) == 0
    pretty = capsys.readouterr().out
    assert pretty.startswith('{\n  "hostname": ')
    assert '\n  "memory": [\n    {\n      "available_bytes": ' in pretty
    assert pretty.endswith("\n}\n")
    assert run(["--include", "memory", "--no-pretty"]) == 0
    compact = capsys.readouterr().out
    assert compact.startswith('{"hostname":') and compact.count("\n") == 1
    assert run(["--include", "memory"]) == 0  # captured stdout is not a terminal
    assert capsys.readouterr().out.count("\n") == 1


def test_pretty_output_file(tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    assert run(["--include", "memory", "--pretty", "-o", str(out)]) == 0
    assert out.read_text().startswith('{\n  "hostname": ')


# -- the full schema, field by field ------------------------------------------------------


def check_shape(value: Any, t: mi.Type, where: str) -> None:
    """Every struct in the output has exactly the schema type's fields, recursively."""
    if isinstance(t, mi.StructType):
        assert isinstance(value, dict), where
        names = {f.encode_name for f in t.fields}
        if t.cls is Snapshot:
            required = {f.encode_name for f in t.fields if f.required or f.name == "schema"}
            assert required <= set(value) <= names, (where, set(value) ^ names)
        else:
            assert set(value) == names, (where, set(value) ^ names)
        for f in t.fields:
            if f.encode_name in value:
                check_shape(value[f.encode_name], f.type, f"{where}.{f.encode_name}")
    elif isinstance(t, mi.ListType):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            check_shape(item, t.item_type, f"{where}[{i}]")
    elif isinstance(t, mi.UnionType) and value is not None:
        for alternative in t.types:
            if isinstance(alternative, mi.StructType | mi.ListType) and isinstance(
                value, dict | list
            ):
                check_shape(value, alternative, where)


def test_every_section_and_field_matches_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    obj = run_json(capsys, ["--simulate", "nvidia:8", "--include", ALL])
    assert set(obj) >= SECTION_KEYS
    assert "errors" not in obj, obj.get("errors")
    assert len(obj["gpus"]) == 8
    assert obj["processes"], "the simulated GPUs run processes"
    assert obj["cpus"] and obj["memory"] and len(obj["chassis"]) == 1
    check_shape(obj, mi.type_info(Snapshot), "$")
    gpu = obj["gpus"][0]
    assert gpu["nvlink_remote_devices"] and gpu["gpm_metrics"] is not None
    assert obj["cpus"][0]["per_core_utilization"] and obj["cpus"][0]["per_socket_info"]
    # Types too: the output decodes strictly into the schema.
    snap = msgspec.json.decode(json.dumps(obj), type=Snapshot, strict=True)
    assert snap.device_count() == sum(len(obj[k]) for k in SECTION_KEYS)
    # Process strings arrive capped.
    for proc in obj["processes"]:
        assert len(proc["command"].encode()) <= 256 + len("...(99999 bytes truncated)")
        assert proc["device_uuid"] in {g["uuid"] for g in obj["gpus"]}


def test_chassis_power_is_backfilled_from_simulated_gpus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [own] = run_json(capsys, ["--include", "chassis"])["chassis"]
    obj = run_json(capsys, [*SIM, "--include", "gpu,chassis"])
    [chassis] = obj["chassis"]
    if own["total_power_watts"] is None:  # no power sensor here: the GPUs' sum stands in
        gpu_sum = sum(g["power_consumption"] for g in obj["gpus"])
        assert chassis["total_power_watts"] == pytest.approx(gpu_sum)
    else:
        assert chassis["total_power_watts"] is not None


# -- real processes: exit codes, pipes and terminals --------------------------------------


def test_process_exit_codes_and_piped_output_is_compact(tmp_path: Path) -> None:
    ok = smicast(*SIM, "--include", "gpu,memory")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(b"\n") == 1 and ok.stdout.startswith(b'{"gpus":[{')
    assert decode_snapshot(ok.stdout).schema == 1

    empty = smicast("--include", "gpu", "-o", str(tmp_path / "out.json"))
    assert empty.returncode == 1
    assert empty.stdout == b""
    assert b"no devices were collected from any reader" in empty.stderr
    assert not (tmp_path / "out.json").exists()

    bad = smicast("--include", "gpu,bogus")
    assert bad.returncode == 2
    assert bad.stdout == b""
    assert b"valid: gpu, cpu, memory, chassis, process, storage" in bad.stderr
    assert b"Traceback" not in bad.stderr


def read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError as exc:  # EIO: the other side of the terminal has closed
            if exc.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_pretty_by_default_on_a_terminal() -> None:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smicast", "snapshot", "--include", "memory"],
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
        )
        os.close(secondary)
        secondary = -1
        out = read_all(primary).replace(b"\r\n", b"\n")
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    assert proc.returncode == 0, err
    assert out.startswith(b'{\n  "hostname": ')
    assert out.endswith(b"\n}\n")
    assert json.loads(out)["memory"]


def test_no_pretty_on_a_terminal_when_asked() -> None:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smicast", "snapshot", "--include", "memory", "--no-pretty"],
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
        )
        os.close(secondary)
        secondary = -1
        out = read_all(primary).replace(b"\r\n", b"\n")
        proc.communicate(timeout=60)
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    assert proc.returncode == 0
    assert out.count(b"\n") == 1 and out.startswith(b'{"hostname":')
