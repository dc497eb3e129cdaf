"""The exposition text itself: number formatting, label escaping, families grouped once.

Numbers print as Rust's `Display` does in all-smi (shortest round-trip digits,
never an exponent: `80.0` is `80`, `1e-07` is `0.0000001`), because the `view`
client of all-smi reads sample values with `[\\d\\.]+` and would drop `1e-07`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

MAX_LABEL_VALUE_BYTES: Final = 1024

# Rust's `char::is_control` is the Unicode Cc category: C0, DEL and C1.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_NEEDS_WORK: Final = re.compile('[\\\\"\x00-\x1f\x7f-\x9f]')
_NOT_LABEL_CHAR: Final = re.compile("[^A-Za-z0-9]")


class Family(NamedTuple):
    name: str
    help: str
    type: str = "gauge"


def number(value: float | int | None) -> str | None:
    """Rust `Display` of an f64 or integer; None for a missing or non-finite value."""
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    text = repr(float(value))
    if text.endswith(".0"):
        return text[:-2]
    if "e" in text or "n" in text:  # exponent form, or nan / inf
        return _plain(text) if math.isfinite(value) else None
    return text


def _plain(text: str) -> str:
    """`1.5e+21` -> `1500000000000000000000`, `1e-07` -> `0.0000001`."""
    mantissa, _, exp_text = text.partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    whole, _, frac = mantissa.lstrip("-").partition(".")
    digits = (whole + frac).rstrip("0") or "0"
    point = len(whole) + int(exp_text)
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def fixed(value: float | int | None, digits: int) -> str | None:
    """Rust `{:.N}`; None for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return None
    return f"{value:.{digits}f}"


def parse_f64(text: str, *, trim: bool = False) -> float | None:
    """Rust `str::parse::<f64>()`: no surrounding space (unless trimmed), no `_`; finite only."""
    if trim:
        text = text.strip()
    if not text or "_" in text or text != text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def escape(value: str) -> str:
    """A label value as all-smi writes it, capped at 1024 bytes on the wire.

    `\\` `"` and newline are escaped, every other control character (CR included) is
    dropped. all-smi writes CR as `\\r`, which the text format does not define and
    promtool rejects; dropping it keeps the exposition valid for every parser. The cap
    applies to the escaped text, which is what a reader of the exposition sees.
    """
    if _NEEDS_WORK.search(value) is not None:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        value = _CONTROL.sub("", value)
    if len(value) > MAX_LABEL_VALUE_BYTES // 4:
        value = _cap_escaped(value)
    return value


def _cap_escaped(value: str) -> str:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_LABEL_VALUE_BYTES:
        return value
    cut = raw[:MAX_LABEL_VALUE_BYTES].decode("utf-8", "ignore")
    # An odd run of trailing backslashes is half of an escape pair: drop it.
    trailing = len(cut) - len(cut.rstrip("\\"))
    return cut[:-1] if trailing % 2 else cut


Pairs = tuple[tuple[str, str], ...]

# Label sets are device identities: the same few come back every frame, so their
# escaped text is kept. Bounded; emptied when full (a frame after that refills it).
_LABEL_CACHE: dict[object, str] = {}
_LABEL_CACHE_MAX: Final = 16384


def _remember(key: object, text: str) -> str:
    if len(_LABEL_CACHE) >= _LABEL_CACHE_MAX:
        _LABEL_CACHE.clear()
    _LABEL_CACHE[key] = text
    return text


def labels(pairs: Pairs) -> str:
    """`k="v", k2="v2"`: all-smi joins pairs with a comma and a space."""
    text = _LABEL_CACHE.get(pairs)
    if text is None:
        text = _remember(pairs, ", ".join([f'{key}="{escape(val)}"' for key, val in pairs]))
    return text


def labels_with_detail(pairs: Pairs, detail: dict[str, str]) -> str:
    """`pairs` followed by the `detail` entries as labels (see `detail_labels`)."""
    if not detail:
        return labels(pairs)
    key = (pairs, tuple(detail.items()))
    text = _LABEL_CACHE.get(key)
    if text is None:
        extra = detail_labels(detail, [name for name, _ in pairs])
        text = _remember(key, labels((*pairs, *extra)))
    return text


_NAME_CACHE: dict[str, str] = {}
_NAME_CACHE_MAX: Final = 4096


def label_name(key: str) -> str:
    """A `detail` key as a label name: `[a-z0-9_]`, a leading digit gets a `_` prefix.

    `Source: Fan` -> `source__fan`, `3D Engine` -> `_3d_engine`. Cached: the same
    few keys come back every frame.
    """
    name = _NAME_CACHE.get(key)
    if name is None:
        name = _NOT_LABEL_CHAR.sub("_", key).lower()
        if name[:1].isdigit():
            name = "_" + name
        if len(_NAME_CACHE) < _NAME_CACHE_MAX:
            _NAME_CACHE[key] = name
    return name


def detail_value(value: str) -> str:
    """all-smi's `sanitize_label_value` for `detail` values: trimmed, outer quotes and
    control characters removed (the 1024-byte cap is applied by `escape`)."""
    return _CONTROL.sub("", value.strip().strip('"'))


def detail_labels(detail: dict[str, str], taken: Iterable[str]) -> list[tuple[str, str]]:
    """`detail` entries as extra labels, sorted by key so the text is stable.

    Names that collide with a label already present, are empty, or start with
    the reserved `__` are skipped: a duplicate label name makes the whole
    exposition unparsable.
    """
    seen = set(taken)
    out: list[tuple[str, str]] = []
    for key in sorted(detail):
        name = label_name(key)
        if not name or name.startswith("__") or name in seen:
            continue
        seen.add(name)
        out.append((name, detail_value(detail[key])))
    return out


class Samples:
    """Sample lines per family; written family by family with one HELP and TYPE each."""

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        self._lines: defaultdict[str, list[str]] = defaultdict(list)

    def add(self, family: str, label_text: str, value: str | None) -> None:
        """One sample; a None value (missing or non-finite) is skipped."""
        if value is not None:
            self._lines[family].append(f"{family}{{{label_text}}} {value}\n")

    def write(self, families: Sequence[Family], out: list[str]) -> None:
        """Append every family that has samples, in the order of `families`."""
        got = self._lines
        if not got:
            return
        for family in families:
            lines = got.get(family.name)
            if lines:
                out.append(
                    f"# HELP {family.name} {family.help}\n# TYPE {family.name} {family.type}\n"
                )
                out.extend(lines)
