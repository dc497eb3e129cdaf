"""Options and plumbing shared by the commands that read this machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

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


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """`--simulate PLATFORM[:N]` and `--seed`: simulated accelerators instead of detection."""
    parser.add_argument(
        "--simulate",
        type=simulate_arg,
        metavar="PLATFORM[:N]",
        help="simulate N accelerators (nvidia, amd, gaudi, tenstorrent; N defaults to 8) "
        "instead of detecting real ones; CPU, memory, chassis and disks stay real",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --simulate (default 0)")
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
