"""`smicast hash-password`: a bcrypt hash for the web config's `basic_auth_users`.

On a terminal it asks twice without echo. Otherwise it reads the password from the
first line of standard input (the line end is not part of it), for scripts:
`printf '%s\\n' "$PW" | smicast hash-password`.
Exit 0 printed, 1 no usable password (empty, over 72 bytes, the two entries differ).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Final, TextIO

PROG: Final = "hash-password"
MIN_COST: Final = 4
MAX_COST: Final = 31


def _cost(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not MIN_COST <= value <= MAX_COST:
        raise argparse.ArgumentTypeError(f"expected {MIN_COST}..{MAX_COST}, got {value}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        PROG,
        help="print a bcrypt hash for basic_auth_users in a web config",
        description="Ask for a password (twice, without echo; from stdin when it is not a "
        "terminal) and print its bcrypt hash for the web config's basic_auth_users.",
    )
    p.add_argument(
        "--cost",
        type=_cost,
        default=10,
        help="bcrypt cost (default 10, as htpasswd -nBC 10; each step doubles the work)",
    )
    p.set_defaults(parser=p)


def read_password(stdin: TextIO, ask: bool) -> str:
    if ask:
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise ValueError("the passwords do not match")
        return first
    return stdin.readline().removesuffix("\n").removesuffix("\r")


def run(args: argparse.Namespace) -> int:
    from smicast.api.auth import hash_password

    try:
        password = read_password(sys.stdin, ask=sys.stdin.isatty())
        print(hash_password(password.encode("utf-8"), cost=args.cost))
    except (ValueError, EOFError) as exc:
        print(f"{PROG}: error: {exc or 'no password given'}", file=sys.stderr)
        return 1
    return 0
