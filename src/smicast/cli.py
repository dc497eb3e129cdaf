"""The one entry point: `smicast <command>`; `main(argv) -> exit status`.

Each command lives in `smicast.commands.<name>` with `register(subparsers)` and
`run(args) -> int`; only the chosen one is imported, so `snapshot` starts fast.
Exit statuses: 0 done, 1 runtime failure, 2 bad options.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from smicast import __version__

COMMANDS = ("snapshot", "api", "record", "replay", "hash-password", "view")


class _Command(Protocol):
    def register(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _command(name: str) -> _Command:
    return cast(_Command, importlib.import_module(f"smicast.commands.{name.replace('-', '_')}"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="smicast", description="Hardware telemetry: snapshot, record, replay, api."
    )
    parser.add_argument("--version", action="version", version=f"smicast {__version__}")
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    for name in COMMANDS:
        if only is None or name == only:
            _command(name).register(sub)
        else:
            sub.add_parser(name, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list and sys.stdin.isatty() and sys.stdout.isatty():
        args_list = ["view"]  # bare `smicast` on a terminal opens the viewer, as all-smi does
    chosen = next((a for a in args_list if a in COMMANDS), None)
    parser = build_parser(only=chosen)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _command(args.command).run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
