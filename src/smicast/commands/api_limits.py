"""`smicast api` options for connections that do not behave (see smicast.api.connections)."""

from __future__ import annotations

import argparse

from smicast.api.connections import (
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    HEAD_TIMEOUT_BOUNDS_S,
    IDLE_TIMEOUT_BOUNDS_S,
    MAX_CONNECTIONS,
    MIN_CONNECTIONS,
    ConnectionLimits,
)
from smicast.commands._common import bounded_float, bounded_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--head-timeout",
        type=bounded_float(*HEAD_TIMEOUT_BOUNDS_S),
        default=DEFAULT_HEAD_TIMEOUT_S,
        metavar="S",
        help=f"close a connection whose request head is not complete S seconds after it began "
        f"(default {DEFAULT_HEAD_TIMEOUT_S:g}, {HEAD_TIMEOUT_BOUNDS_S[0]:g}..{HEAD_TIMEOUT_BOUNDS_S[1]:g})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=bounded_float(*IDLE_TIMEOUT_BOUNDS_S),
        default=DEFAULT_IDLE_TIMEOUT_S,
        metavar="S",
        help=f"close a keep-alive connection idle for S seconds (default "
        f"{DEFAULT_IDLE_TIMEOUT_S:g}, {IDLE_TIMEOUT_BOUNDS_S[0]:g}..{IDLE_TIMEOUT_BOUNDS_S[1]:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=bounded_int(MIN_CONNECTIONS, MAX_CONNECTIONS),
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
