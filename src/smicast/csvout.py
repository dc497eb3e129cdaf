"""`snapshot --format csv`: one row per device, columns picked by dot paths.

Rows are resolved against the encoded JSON (decoded back to plain values), so
a cell shows exactly what the wire carries: NaN is already null (an empty
cell), `80.0` stays `80.0`, and `65` stays `65`.

Rules (all-smi's): sections in wire order gpu, cpu, memory, chassis, process,
storage, only those requested and present; each row gets `section` and, when
the item has none, an `index` (its position in the section); a path segment
indexes an object by key or an array by integer; missing or null -> empty;
booleans `true`/`false`; arrays and objects as compact JSON with sorted keys;
RFC 4180 quoting only for cells holding `,` `"` CR or LF; LF line ends; a
leading `timestamp` column when there is more than one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec

from smicast.encode import snapshot_json, with_process_limits
from smicast.include import Section, ordered
from smicast.schema import Snapshot

DEFAULT_COLUMNS: Final = (
    "section",
    "index",
    "hostname",
    "name",
    "uuid",
    "utilization",
    "used_memory",
    "total_memory",
    "temperature",
    "power_consumption",
)

_SCALAR_ENCODER: Final = msgspec.json.Encoder(order="sorted")
_MISSING: Final = object()
_NEEDS_QUOTES: Final = frozenset(',"\r\n')


def parse_query(text: str) -> list[str]:
    """`--query "name, detail.Driver Version,,name"` -> `["name", "detail.Driver Version"]`."""
    seen: set[str] = set()
    columns: list[str] = []
    for raw in text.split(","):
        column = raw.strip()
        if column and column not in seen:
            seen.add(column)
            columns.append(column)
    return columns


def resolve(item: Any, path: str) -> Any:
    """Follow a dot path; a path that leads nowhere gives None, like a null."""
    node = item
    for segment in path.split("."):
        if isinstance(node, dict):
            node = node.get(segment, _MISSING)
        elif isinstance(node, list) and segment.isascii() and segment.isdigit():
            position = int(segment)
            node = node[position] if position < len(node) else _MISSING
        else:
            return None
        if node is _MISSING:
            return None
    return node


def cell(value: Any) -> str:
    """One value as CSV text, quoted only when it has to be."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif value is True:
        text = "true"
    elif value is False:
        text = "false"
    else:
        # Numbers, arrays and objects: the encoder's own text, as on the wire.
        text = _SCALAR_ENCODER.encode(value).decode("utf-8")
    if _NEEDS_QUOTES.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def _rows(document: dict[str, Any], sections: Sequence[Section]) -> Iterator[dict[str, Any]]:
    for section in ordered(sections):
        items = document.get(section.json_key)
        if not isinstance(items, list):
            continue
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            row = dict(item)
            row.setdefault("index", position)
            row["section"] = section.value
            yield row


def render_csv(
    snapshots: Sequence[Snapshot],
    sections: Sequence[Section],
    query: Sequence[str] | None = None,
) -> str:
    """Header plus one line per device; the header is written even with no rows."""
    columns = list(query) if query else list(DEFAULT_COLUMNS)
    stamped = len(snapshots) > 1
    header = ["timestamp", *columns] if stamped else columns
    lines = [",".join(cell(name) for name in header)]
    for snapshot in snapshots:
        document = msgspec.json.decode(snapshot_json(with_process_limits(snapshot)))
        prefix = [cell(document.get("timestamp"))] if stamped else []
        for row in _rows(document, sections):
            lines.append(",".join([*prefix, *(cell(resolve(row, c)) for c in columns)]))
    return "\n".join(lines) + "\n"
