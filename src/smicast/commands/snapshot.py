"""`smicast snapshot`: one-shot JSON, CSV or Prometheus text for scripts.

Exit 0: written (perhaps with reader errors, reported on stderr too).
Exit 1: no device from any reader (nothing written) or the output could not be written.
Exit 2: bad options.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from smicast.commands._common import (
    add_include_argument,
    add_source_arguments,
    bool_arg,
    bounded_int,
    faults_or_exit,
    make_collector,
    non_negative_float,
    sections_or_exit,
    timeout_ms_arg,
)
from smicast.fsutil import OutputError, atomic_write
from smicast.include import Section, ordered
from smicast.schema import Snapshot

PROG = "snapshot"
MAX_SAMPLES = 100_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "snapshot",
        help="print one schema-1 snapshot of this machine (JSON, CSV or Prometheus text)",
        description="Collect this machine's telemetry once (or --samples times) and print it.",
    )
    p.add_argument("--format", choices=("json", "csv", "prometheus"), default="json")
    add_include_argument(p)
    p.add_argument(
        "--query", metavar="PATHS", help="CSV columns as dot paths, e.g. name,detail.Brand"
    )
    p.add_argument(
        "--samples",
        type=bounded_int(1, MAX_SAMPLES),
        default=1,
        help="number of snapshots (JSON array when > 1)",
    )
    p.add_argument(
        "--interval",
        type=non_negative_float,
        default=0.0,
        help="seconds between samples (default 0)",
    )
    p.add_argument(
        "--timeout-ms", type=timeout_ms_arg, default=5000, help="per-reader timeout (default 5000)"
    )
    p.add_argument(
        "-o", "--output", metavar="PATH", help="write atomically to PATH (mode 0600); - = stdout"
    )
    p.add_argument(
        "--pretty",
        nargs="?",
        const=True,
        default=None,
        type=bool_arg,
        metavar="BOOL",
        help="indent JSON (default: only when stdout is a terminal); --pretty=false as all-smi",
    )
    p.add_argument("--no-pretty", dest="pretty", action="store_false", help="compact JSON")
    add_source_arguments(p)
    p.set_defaults(parser=p)


def render(
    fmt: str,
    snapshots: Sequence[Snapshot],
    sections: Sequence[Section],
    *,
    pretty: bool,
    query: str | None,
) -> bytes:
    if fmt == "prometheus":
        from smicast.prometheus import render_metrics

        return render_metrics(snapshots[-1], ready=True).encode("utf-8")
    if fmt == "csv":
        from smicast.csvout import parse_query, render_csv

        columns = parse_query(query) if query is not None else None
        return render_csv(snapshots, sections, columns).encode("utf-8")
    from smicast.encode import snapshot_json, snapshots_json

    if len(snapshots) == 1:
        return snapshot_json(snapshots[0], pretty=pretty) + b"\n"
    return snapshots_json(snapshots, pretty=pretty) + b"\n"


def collect_samples(
    collect: Callable[[], Snapshot], samples: int, interval_s: float, sleep: Callable[[float], None]
) -> list[Snapshot]:
    out: list[Snapshot] = []
    for n in range(samples):
        if n and interval_s > 0:
            sleep(interval_s)
        out.append(collect())
    return out


def report_errors(snapshots: Sequence[Snapshot]) -> None:
    for snap in snapshots:
        for err in snap.errors or ():
            print(f"{PROG}: {err.section} reader {err.kind}: {err.message}", file=sys.stderr)


def run(args: argparse.Namespace, *, sleep: Callable[[float], None] = time.sleep) -> int:
    parser: argparse.ArgumentParser = args.parser
    sections = sections_or_exit(parser, args.include)
    faults_or_exit(parser, args)
    if args.query is not None and args.format != "csv":
        parser.error("--query applies to --format csv only")
    samples = args.samples
    if args.format == "prometheus" and samples > 1:
        print(
            f"{PROG}: --samples > 1 is ignored for --format prometheus (single scrape)",
            file=sys.stderr,
        )
        samples = 1

    collector = make_collector(args, sections, timeout_s=args.timeout_ms / 1000)
    snapshots = collect_samples(lambda: collector.collect(sections), samples, args.interval, sleep)
    report_errors(snapshots)
    if all(s.device_count() == 0 for s in snapshots):
        print(
            f"{PROG}: error: no devices were collected from any reader — snapshot is empty",
            file=sys.stderr,
        )
        return 1

    if args.output == "":
        parser.error("-o/--output: empty path (give a file name, or - for stdout)")
    to_stdout = args.output in (None, "-")
    pretty = args.pretty if args.pretty is not None else (to_stdout and sys.stdout.isatty())
    data = render(args.format, snapshots, ordered(sections), pretty=pretty, query=args.query)
    if to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    try:
        atomic_write(Path(args.output), data)
    except OutputError as exc:
        print(f"{PROG}: error: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
