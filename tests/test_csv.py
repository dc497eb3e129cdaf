"""`snapshot --format csv`: all-smi's columns, paths, quoting and multi-sample layout."""

from __future__ import annotations

import csv
import io
import math

import pytest

from smicast.csvout import DEFAULT_COLUMNS, cell, parse_query, render_csv
from smicast.include import Section
from smicast.schema import CoreUtilization, StorageInfo
from tests.fakes import make_cpu, make_gpu, make_memory, make_process, make_snapshot

GPU = [Section.GPU]


# -- all-smi reference tests ------------------------------------------------------------


def test_csv_query_columns_resolve_against_gpus() -> None:
    text = render_csv([make_snapshot()], GPU, parse_query("index,name,utilization,temperature"))
    assert text == "index,name,utilization,temperature\n0,A100,80.0,65\n1,H100,92.0,70\n"


def test_csv_missing_paths_yield_empty_cells() -> None:
    snapshot = make_snapshot(gpus=[make_gpu("A100")])
    text = render_csv([snapshot], GPU, parse_query("name,detail.cuda_version,does.not.exist"))
    assert text == "name,detail.cuda_version,does.not.exist\nA100,,\n"


def test_non_finite_f64_fields_survive_csv_path() -> None:
    snapshot = make_snapshot(gpus=[make_gpu("H100", utilization=math.nan, temperature=70)])
    text = render_csv([snapshot], GPU, parse_query("name,utilization,temperature"))
    assert text == "name,utilization,temperature\nH100,,70\n"


# -- columns and rows --------------------------------------------------------------------


def test_default_columns_and_rows_in_wire_order() -> None:
    snapshot = make_snapshot(
        processes=[make_process()],
        storage=[
            StorageInfo(
                mount_point="/",
                total_bytes=100,
                available_bytes=40,
                host_id="mockhost",
                hostname="mockhost",
                index=3,
            )
        ],
    )
    sections = [Section.STORAGE, Section.PROCESS, Section.MEMORY, Section.CPU, Section.GPU]
    lines = render_csv([snapshot], sections, None).splitlines()
    assert lines[0] == ",".join(DEFAULT_COLUMNS)
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["gpu", "0"],
        ["gpu", "1"],
        ["cpu", "0"],
        ["memory", "0"],
        ["process", "0"],
        ["storage", "3"],  # storage keeps its own index
    ]
    assert lines[1] == "gpu,0,mockhost,A100,GPU-A100-UUID,80.0,1073741824,8589934592,65,250.0"
    assert lines[3] == "cpu,0,mockhost,,,25.0,,,55,65.0"


def test_sections_not_requested_or_absent_give_no_rows() -> None:
    snapshot = make_snapshot(memory=[make_memory(index=7)])
    lines = render_csv([snapshot], [Section.MEMORY, Section.STORAGE], None).splitlines()
    assert lines[1:] == ["memory,7,mockhost,,,25.0,,,,"]


def test_empty_sections_still_print_the_header() -> None:
    snapshot = make_snapshot(gpus=[], cpus=[], memory=[], chassis=[])
    assert render_csv([snapshot], list(Section), None) == ",".join(DEFAULT_COLUMNS) + "\n"
    query = parse_query("name, uuid")
    assert render_csv([snapshot], GPU, query) == "name,uuid\n"


def test_nested_paths_into_objects_and_arrays() -> None:
    gpu = make_gpu(detail={"Driver Version": "550.54.15", "CUDA Version": "12.4"})
    cpu = make_cpu(
        per_core_utilization=[
            CoreUtilization(core_id=0, utilization=12.5),
            CoreUtilization(core_id=1, core_type="Performance", utilization=99.0),
        ]
    )
    snapshot = make_snapshot(gpus=[gpu], cpus=[cpu])
    query = parse_query(
        "section,detail.Driver Version,per_core_utilization.1.utilization,"
        "per_core_utilization.1.core_type,per_core_utilization.9.utilization,"
        "per_core_utilization.x,name.0"
    )
    lines = render_csv([snapshot], [Section.GPU, Section.CPU], query).splitlines()
    assert lines[1] == "gpu,550.54.15,,,,,"
    assert lines[2] == "cpu,,99.0,Performance,,,"


def test_arrays_and_objects_are_compact_sorted_json() -> None:
    gpu = make_gpu(detail={"b": "2", "a": "1"})
    cpu = make_cpu(per_core_utilization=[CoreUtilization(core_id=0, utilization=1.0)])
    snapshot = make_snapshot(gpus=[gpu], cpus=[cpu])
    text = render_csv(
        [snapshot],
        [Section.GPU, Section.CPU],
        parse_query("detail,nvlink_remote_devices,per_core_utilization"),
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ['{"a":"1","b":"2"}', "[]", ""]
    assert rows[2] == ["", "", '[{"core_id":0,"core_type":"Standard","utilization":1.0}]']
    # The raw text quotes only because of the commas and quotes inside.
    assert text.splitlines()[1] == '"{""a"":""1"",""b"":""2""}",[],'


def test_booleans_nulls_and_numbers() -> None:
    proc = make_process(uses_gpu=True, cpu_percent=None, memory_percent=1.0, pid=42)
    snapshot = make_snapshot(processes=[proc])
    query = parse_query("uses_gpu,cpu_percent,memory_percent,pid,index,section")
    text = render_csv([snapshot], [Section.PROCESS], query)
    assert text.splitlines()[1] == "true,,1.0,42,0,process"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("line\nbreak", '"line\nbreak"'),
        ("cr\rhere", '"cr\rhere"'),
        ("tab\there", "tab\there"),
        ("", ""),
        (None, ""),
        (False, "false"),
        (65, "65"),
        (80.0, "80.0"),
        (1e21, None),  # whatever the wire encoder writes; checked below
    ],
)
def test_cell_quoting_is_rfc4180_only_when_needed(value: object, text: str | None) -> None:
    if text is None:
        import msgspec

        assert cell(value) == msgspec.json.encode(value).decode()
    else:
        assert cell(value) == text


def test_quoted_cells_round_trip_through_a_csv_reader() -> None:
    gpu = make_gpu('odd, "name"\nwith break')
    text = render_csv([make_snapshot(gpus=[gpu])], GPU, parse_query("name,uuid"))
    assert text.endswith("\n") and "\r\n" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ['odd, "name"\nwith break', 'GPU-odd, "name"\nwith break-UUID']


def test_multiple_samples_get_a_leading_timestamp_column() -> None:
    first = make_snapshot(timestamp="2026-04-20T12:00:00Z", gpus=[make_gpu("A100")])
    second = make_snapshot(timestamp="2026-04-20T12:00:03Z", gpus=[make_gpu("A100")])
    text = render_csv([first, second], GPU, parse_query("name,utilization"))
    assert text == (
        "timestamp,name,utilization\n"
        "2026-04-20T12:00:00Z,A100,80.0\n"
        "2026-04-20T12:00:03Z,A100,80.0\n"
    )
    empty = make_snapshot(gpus=[])
    assert render_csv([empty, empty], GPU, ["name"]) == "timestamp,name\n"


def test_process_strings_are_capped_as_on_every_surface() -> None:
    proc = make_process(command="x" * 300)
    text = render_csv([make_snapshot(processes=[proc])], [Section.PROCESS], ["command"])
    assert text.splitlines()[1] == "x" * 256 + "...(44 bytes truncated)"


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("index,name", ["index", "name"]),
        (" name , uuid ,", ["name", "uuid"]),
        ("name,,name,uuid,name", ["name", "uuid"]),
        ("detail.Driver Version", ["detail.Driver Version"]),
        (" , ,", []),
        ("", []),
    ],
)
def test_parse_query(text: str, columns: list[str]) -> None:
    assert parse_query(text) == columns


def test_empty_query_falls_back_to_default_columns() -> None:
    text = render_csv([make_snapshot()], GPU, parse_query(" , "))
    assert text.splitlines()[0] == ",".join(DEFAULT_COLUMNS)
