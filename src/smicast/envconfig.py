"""Settings from the environment: `SMICAST_<KEY>` first, all-smi's `ALL_SMI_<KEY>` second.

An all-smi deployment moved to smicast keeps its environment: every all-smi name we
know is read as a fallback, and the `SMICAST_*` name wins when both are set. Each
lookup says which name supplied the value, so the startup log can show it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# The keys both projects define (all-smi's README and src/api; see the reference, §4).
KEYS: Final = (
    "API_CORS_ALLOWED_ORIGINS",
    "API_MAX_SSE_SUBSCRIBERS",
    "API_PORT",
    "API_SOCKET",
    "API_PROCESSES",
    "API_INTERVAL_SECS",
)

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
MAX_ENV_VALUE_CHARS: Final = 4096


@dataclass(frozen=True)
class EnvValue:
    value: str
    name: str  # the variable that supplied it, for the startup log


def lookup(key: str, environ: Mapping[str, str] | None = None) -> EnvValue | None:
    """`SMICAST_<key>`, else `ALL_SMI_<key>`; unset or blank means not set."""
    env = os.environ if environ is None else environ
    for prefix in ("SMICAST_", "ALL_SMI_"):
        name = prefix + key
        raw = env.get(name, "").strip()
        if raw:
            return EnvValue(raw[:MAX_ENV_VALUE_CHARS], name)
    return None


def parse_bool(text: str) -> bool:
    """The boolean forms both projects accept: true/false, 1/0, yes/no, on/off (any case)."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text[:64]!r}")


def all_smi_flag(text: str) -> bool:
    """all-smi's `ALL_SMI_API_PROCESSES` rule: `1` or `true` in any case is on, anything else off."""
    return text.strip().lower() in {"1", "true"}
