"""The section grammar: which parts of a Snapshot a caller asks for.

Two parsers on purpose, as in all-smi: the command line is strict (a typo is an
error a person should see), HTTP query strings are lenient (unknown names are
ignored, nothing valid falls back to the default) so a dashboard never breaks.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Final


class Section(StrEnum):
    GPU = "gpu"
    CPU = "cpu"
    MEMORY = "memory"
    CHASSIS = "chassis"
    PROCESS = "process"
    STORAGE = "storage"

    @property
    def json_key(self) -> str:
        return _JSON_KEYS[self]


_JSON_KEYS: Final = {
    Section.GPU: "gpus",
    Section.CPU: "cpus",
    Section.MEMORY: "memory",
    Section.CHASSIS: "chassis",
    Section.PROCESS: "processes",
    Section.STORAGE: "storage",
}

ALL_SECTIONS: Final = frozenset(Section)
DEFAULT_SECTIONS: Final = frozenset({Section.GPU, Section.CPU, Section.MEMORY, Section.CHASSIS})
VALID_NAMES: Final = "gpu, cpu, memory, chassis, process, storage"

_CLI_ALIASES: Final = {
    "gpu": Section.GPU,
    "cpu": Section.CPU,
    "memory": Section.MEMORY,
    "chassis": Section.CHASSIS,
    "process": Section.PROCESS,
    "processes": Section.PROCESS,
    "storage": Section.STORAGE,
    "disk": Section.STORAGE,
}
_HTTP_ALIASES: Final = {
    **_CLI_ALIASES,
    "gpus": Section.GPU,
    "cpus": Section.CPU,
    "mem": Section.MEMORY,
}

# A query string is attacker-controlled: never look at more than this many names.
_MAX_HTTP_NAMES: Final = 64


class IncludeError(ValueError):
    """A bad `--include` value; the message is what the user sees."""


def ordered(sections: Iterable[Section]) -> tuple[Section, ...]:
    """Sections in wire order: gpu, cpu, memory, chassis, process, storage."""
    chosen = set(sections)
    return tuple(s for s in Section if s in chosen)


def _names(raw: Iterable[str]) -> list[str]:
    return [n.strip().lower() for value in raw for n in value.split(",") if n.strip()]


def parse_cli(values: Iterable[str] | None) -> frozenset[Section]:
    """`--include gpu,cpu --include storage`: strict; None means the default set."""
    if values is None:
        return DEFAULT_SECTIONS
    chosen: set[Section] = set()
    for name in _names(values):
        section = _CLI_ALIASES.get(name)
        if section is None:
            raise IncludeError(f"unknown --include section `{name}` (valid: {VALID_NAMES})")
        chosen.add(section)
    if not chosen:
        raise IncludeError("at least one section must be requested via --include")
    return frozenset(chosen)


def parse_http(value: str | None) -> frozenset[Section]:
    """`?include=gpus,mem,bogus`: lenient; unknown names are ignored."""
    if not value:
        return DEFAULT_SECTIONS
    chosen = {_HTTP_ALIASES[n] for n in _names([value])[:_MAX_HTTP_NAMES] if n in _HTTP_ALIASES}
    return frozenset(chosen) if chosen else DEFAULT_SECTIONS
