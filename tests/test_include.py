"""The section grammar: strict on the command line, lenient over HTTP (reference §2.8)."""

from __future__ import annotations

import pytest

from smicast.include import (
    ALL_SECTIONS,
    DEFAULT_SECTIONS,
    VALID_NAMES,
    IncludeError,
    Section,
    ordered,
    parse_cli,
    parse_http,
)

G, C, M, CH, P, S = (
    Section.GPU,
    Section.CPU,
    Section.MEMORY,
    Section.CHASSIS,
    Section.PROCESS,
    Section.STORAGE,
)


def test_default_is_gpu_cpu_memory_chassis() -> None:
    assert {G, C, M, CH} == DEFAULT_SECTIONS
    assert parse_cli(None) == DEFAULT_SECTIONS
    assert parse_http(None) == DEFAULT_SECTIONS
    assert parse_http("") == DEFAULT_SECTIONS


def test_json_keys_and_wire_order() -> None:
    assert [s.json_key for s in Section] == [
        "gpus",
        "cpus",
        "memory",
        "chassis",
        "processes",
        "storage",
    ]
    assert ordered([S, P, G, M]) == (G, M, P, S)
    assert ordered(ALL_SECTIONS) == tuple(Section)
    assert ", ".join(s.value for s in Section) == VALID_NAMES


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["gpu"], {G}),
        (["gpu,cpu,memory,chassis,process,storage"], ALL_SECTIONS),
        (["processes"], {P}),
        (["process"], {P}),
        (["disk"], {S}),
        (["storage"], {S}),
        ([" GPU , Memory "], {G, M}),
        (["CHASSIS"], {CH}),
        (["gpu", "storage"], {G, S}),  # repeated flags accumulate
        (["gpu,gpu", "gpu"], {G}),  # duplicates are harmless
        (["gpu,,cpu,"], {G, C}),  # empty items are skipped
    ],
)
def test_cli_accepts(values: list[str], expected: set[Section]) -> None:
    assert parse_cli(values) == expected


@pytest.mark.parametrize("name", ["gpus", "cpus", "mem", "bogus", "GPU0", "proc"])
def test_cli_rejects_unknown_names_listing_the_valid_ones(name: str) -> None:
    with pytest.raises(IncludeError) as info:
        parse_cli([f"gpu,{name}"])
    message = str(info.value)
    assert message == (
        f"unknown --include section `{name.lower()}` "
        "(valid: gpu, cpu, memory, chassis, process, storage)"
    )


@pytest.mark.parametrize("values", [[""], [" , ,"], ["", " "], []])
def test_cli_requires_at_least_one_section(values: list[str]) -> None:
    with pytest.raises(IncludeError, match="at least one section must be requested via --include"):
        parse_cli(values)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gpu", {G}),
        ("gpus,cpus,mem", {G, C, M}),
        ("processes,disk", {P, S}),
        ("process,storage,chassis", {P, S, CH}),
        (" GPUS , Mem ", {G, M}),
        ("gpu,bogus", {G}),  # unknown names are ignored
        ("bogus", DEFAULT_SECTIONS),  # nothing valid: the default
        (",,,", DEFAULT_SECTIONS),
        ("memory,memory", {M}),
    ],
)
def test_http_is_lenient(value: str, expected: set[Section]) -> None:
    assert parse_http(value) == expected


def test_http_looks_at_a_bounded_number_of_names() -> None:
    # A hostile query string: only the first names count, a valid one far behind is not read.
    flood = ",".join(["x"] * 10_000 + ["storage"])
    assert parse_http(flood) == DEFAULT_SECTIONS
    assert parse_http(",".join(["x"] * 10 + ["storage"])) == {S}
    huge = "gpu," + "y" * 1_000_000
    assert parse_http(huge) == {G}
