"""`smicast api` options for connections that do not behave (see smicast.api.connections)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from smicast.api.connections import (
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    HEAD_TIMEOUT_BOUNDS_S,
    IDLE_TIMEOUT_BOUNDS_S,
    MAX_CONNECTIONS,
    MIN_CONNECTIONS,
    ConnectionLimits,
)
from smicast.commands._common import arg_type


def _seconds_between(low: float, high: float) -> Callable[[str], float]:
    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {text[:32]!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"expected {low:g} to {high:g} seconds, got {text[:32]!r}")
        return value

    return seconds


def _connections(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text[:32]!r}") from None
    if not MIN_CONNECTIONS <= value <= MAX_CONNECTIONS:
        raise ValueError(f"expected {MIN_CONNECTIONS} to {MAX_CONNECTIONS}, got {text[:32]!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--head-timeout",
        type=arg_type(_seconds_between(*HEAD_TIMEOUT_BOUNDS_S)),
        default=DEFAULT_HEAD_TIMEOUT_S,
        metavar="S",
        help=f"close a connection whose request head is not complete S seconds after it began "
        f"(default {DEFAULT_HEAD_TIMEOUT_S:g}, {HEAD_TIMEOUT_BOUNDS_S[0]:g}..{HEAD_TIMEOUT_BOUNDS_S[1]:g})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=arg_type(_seconds_between(*IDLE_TIMEOUT_BOUNDS_S)),
        default=DEFAULT_IDLE_TIMEOUT_S,
        metavar="S",
        help=f"close a keep-alive connection idle for S seconds (default "
        f"{DEFAULT_IDLE_TIMEOUT_S:g}, {IDLE_TIMEOUT_BOUNDS_S[0]:g}..{IDLE_TIMEOUT_BOUNDS_S[1]:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=arg_type(_connections),
        default=None,
        metavar="N",
        help="open connections at most; at the ceiling the oldest without a complete request "
        "is closed, never a stream (default: the descriptor limit less a reserve, at most "
        f"65536; {MIN_CONNECTIONS}..{MAX_CONNECTIONS})",
    )


def limits_from(args: argparse.Namespace) -> ConnectionLimits:
    return ConnectionLimits(
        head_timeout_s=args.head_timeout,
        idle_timeout_s=args.idle_timeout,
        max_connections=args.max_connections,
    )
