"""Options and plumbing shared by the commands that read this machine."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Final, NoReturn, TypeVar

from smicast.collect import DEFAULT_TIMEOUT_S, Collector
from smicast.envconfig import parse_bool
from smicast.include import IncludeError, Section, parse_cli
from smicast.readers.fault_spec import FaultSpec, check_faults, parse_fault
from smicast.readers.registry import build_readers, parse_simulate

T = TypeVar("T")


def arg_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse `type=` from a parser that raises ValueError with the user's message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__  # argparse names the type in some messages
    return convert


simulate_arg = arg_type(parse_simulate)
fault_arg = arg_type(parse_fault)
bool_arg = arg_type(parse_bool)  # all-smi's `--flag=true|false` forms


def add_include_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include",
        action="append",
        metavar="SECTIONS",
        help="comma-separated sections: gpu, cpu, memory, chassis, process, storage "
        "(default gpu,cpu,memory,chassis); may be repeated",
    )


# Every numeric option has an upper bound: a value past it is a typo, and an unbounded
# one overflows deadlines and time_t a long way from the option that caused it.
MAX_SECONDS: Final = 1_000_000.0  # intervals, speeds, flush periods (about 11 days)
MAX_TIMEOUT_MS: Final = 3_600_000  # one hour


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type=`: a whole number in low..high, else a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 40 else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high}, got {_shown(text)}"
            )
        return value

    return parse


def bounded_float(low: float, high: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse `type=`: a number in low..high (above `low` when `above`), else one line."""
    floor = f"above {_number(low)}" if above else f"from {_number(low)}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (value > low if above else value >= low) or not value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a number {floor} to {_number(high)}, got {_shown(text)}"
            )
        return value

    return parse


positive_float = bounded_float(0.0, MAX_SECONDS, above=True)
non_negative_float = bounded_float(0.0, MAX_SECONDS)
timeout_ms_arg = bounded_int(1, MAX_TIMEOUT_MS)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """`--simulate PLATFORM[:N]` and `--seed`: simulated accelerators instead of detection."""
    parser.add_argument(
        "--simulate",
        type=simulate_arg,
        metavar="PLATFORM[:N]",
        help="simulate N accelerators (nvidia, amd, gaudi, tenstorrent; N defaults to 8) "
        "instead of detecting real ones; CPU, memory, chassis and disks stay real",
    )
    parser.add_argument(
        "--seed",
        type=bounded_int(-(2**63), 2**64 - 1),
        default=0,
        help="seed for --simulate (default 0)",
    )
    parser.add_argument(
        "--fault",
        type=fault_arg,
        action="append",
        metavar="SPEC",
        help="with --simulate: inject a fault, NAME[:ARG][@START][+DURATION] (init-hang, "
        "read-hang, gpu-lost[:INDEX], unsupported:FIELD, churn, proc-hidden, exception); "
        "may be repeated",
    )


def faults_or_exit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[FaultSpec]:
    """The --fault specs, checked against --simulate (exit 2 with one line when they do not fit)."""
    faults: list[FaultSpec] = getattr(args, "fault", None) or []
    simulate = getattr(args, "simulate", None)
    try:
        check_faults(faults, simulate.count if simulate is not None else None)
    except ValueError as exc:
        parser.error(str(exc))
    return faults


def sections_or_exit(
    parser: argparse.ArgumentParser, values: list[str] | None
) -> frozenset[Section]:
    try:
        return parse_cli(values)
    except IncludeError as exc:
        parser.error(str(exc))
        raise AssertionError("unreachable") from exc


def make_collector(
    args: argparse.Namespace, sections: frozenset[Section], timeout_s: float = DEFAULT_TIMEOUT_S
) -> Collector:
    readers = build_readers(
        sections, simulate=args.simulate, seed=args.seed, faults=getattr(args, "fault", None)
    )
    return Collector(readers, timeout_s=timeout_s)


def fail(prog: str, message: str, status: int = 1) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(status)
