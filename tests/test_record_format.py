"""The trace's wire lines, names and option grammars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smicast import __version__
from smicast.record.format import (
    Codec,
    codec_for_path,
    format_clock,
    header_line,
    index_line,
    parse_duration,
    parse_size,
    parse_timecode,
    rotated_path,
)


def test_header_line_is_compact_sorted_and_newline_terminated() -> None:
    line = header_line(["node-a"], 3000)
    assert line == (
        b'{"header":true,"hosts":["node-a"],"interval_ms":3000,"schema":1,'
        b'"smicast_version":"' + __version__.encode() + b'"}\n'
    )


def test_header_hosts_are_capped() -> None:
    hosts = json.loads(header_line([f"h{i}" for i in range(5000)], 1000))["hosts"]
    assert len(hosts) == 1024


def test_index_line_matches_all_smi() -> None:
    assert (
        index_line(1000, 123456) == b'{"byte_offset":123456,"index":true,"schema":1,"seq":1000}\n'
    )


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("t.ndjson.zst", Codec.ZSTD),
        ("t.NDJSON.ZST", Codec.ZSTD),
        ("t.ndjson.gz", Codec.GZIP),
        ("t.ndjson", Codec.NONE),
        ("t.zst.ndjson", Codec.NONE),
        ("trace", Codec.NONE),
    ],
)
def test_codec_comes_from_the_final_extension(name: str, codec: Codec) -> None:
    assert codec_for_path(Path(name)) is codec


@pytest.mark.parametrize(
    ("name", "n", "rotated"),
    [
        ("out.ndjson.zst", 1, "out.0001.ndjson.zst"),
        ("out.ndjson.zst", 3, "out.0003.ndjson.zst"),
        ("out", 12, "out.0012"),
        (".hidden.ndjson", 2, ".hidden.0002.ndjson"),
        ("out.ndjson", 12345, "out.12345.ndjson"),
    ],
)
def test_rotated_names_follow_all_smi(name: str, n: int, rotated: str) -> None:
    assert rotated_path(Path("dir") / name, n) == Path("dir") / rotated


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("1.5h", 5400), ("0", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "junk", "5x", "-1", "1h30m", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1K", 1024),
        ("1k", 1024),
        ("100M", 100 << 20),
        ("2G", 2 << 30),
        ("2g", 2 << 30),
        ("512KiB", 512 << 10),
        ("10MB", 10 << 20),
        ("4096", 4096),
        ("0", 0),
    ],
)
def test_sizes_are_1024_based(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "1T", "M", "1.5M", "-1", "12ib"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30), ("1:30", 90), ("01:02:03", 3723), ("90", 90), ("0", 0)]
)
def test_timecodes(text: str, seconds: float) -> None:
    assert parse_timecode(text) == seconds


@pytest.mark.parametrize("text", ["", "junk", "1:2:3:4", "1:60", "-5", "1::2", "1.5"])
def test_bad_timecodes(text: str) -> None:
    with pytest.raises(ValueError, match="invalid time"):
        parse_timecode(text)


def test_format_clock() -> None:
    assert format_clock(0) == "00:00:00"
    assert format_clock(3723.9) == "01:02:03"
    assert format_clock(90000) == "25:00:00"
