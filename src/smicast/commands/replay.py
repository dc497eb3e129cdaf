"""`smicast replay`: print a recorded trace as NDJSON, CSV or Prometheus text.

Without --speed every frame is printed at once; with --speed S the recorded gaps
are honoured, S times faster (4 s of gaps at --speed 4 take about 1 s).
Exit 0: done. Exit 1: a file cannot be read, or a line of another schema
version. Exit 2: bad options. Skipped lines are counted on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from smicast.commands._common import arg_type
from smicast.record.format import parse_timecode
from smicast.record.reader import TraceError, TraceFrame, TraceStats, UnsupportedSchema
from smicast.record.replay import MAX_SPEED, MIN_SPEED, check_speed, paced, timeline
from smicast.schema import Snapshot

PROG = "replay"


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    try:
        return check_speed(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="print a recorded trace (NDJSON, CSV or Prometheus text), optionally paced",
        description="Read traces written by `smicast record` or all-smi (plain, .gz, .zst; "
        "rotated segments in the order given) and print their frames. Corrupt, oversized "
        "and torn lines are skipped and counted on stderr.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="trace files, oldest first")
    p.add_argument(
        "--format",
        choices=("ndjson", "csv", "prometheus"),
        default="ndjson",
        help="ndjson: one frame per line (default); csv: a timestamp column then one row per "
        "device; prometheus: one exposition per frame after a `# frame TIMESTAMP` comment",
    )
    p.add_argument(
        "--query", metavar="PATHS", help="CSV columns as dot paths, e.g. name,detail.Brand"
    )
    p.add_argument(
        "--speed",
        type=_speed,
        metavar="S",
        help=f"honour the recorded gaps, S times faster ({MIN_SPEED:g}..{MAX_SPEED:g}; "
        "default: print every frame at once)",
    )
    p.add_argument(
        "--start",
        type=arg_type(parse_timecode),
        default=0.0,
        metavar="HH:MM:SS",
        help="begin this far into the trace (HH:MM:SS, MM:SS or SS)",
    )
    p.add_argument(
        "--loop", action="store_true", help="start again at the end (needs --speed); Ctrl-C stops"
    )
    p.set_defaults(parser=p)


def _renderer(args: argparse.Namespace) -> Callable[[Snapshot, bool], bytes]:
    """Bytes for one frame; the flag says whether it is the first."""
    if args.format == "csv":
        import csv
        import io

        from smicast.csvout import cell, parse_query, render_csv
        from smicast.include import ALL_SECTIONS, ordered

        columns = parse_query(args.query) if args.query is not None else None
        sections = ordered(ALL_SECTIONS)

        def csv_frame(snap: Snapshot, first: bool) -> bytes:
            # One frame's table, re-read so that a timestamp cell can lead every row
            # (a quoted cell may hold a newline, so rows cannot be split on lines).
            table = csv.reader(io.StringIO(render_csv([snap], sections, columns), newline=""))
            header = next(table)
            stamp = cell(snap.timestamp)
            lines = [",".join([stamp, *map(cell, row)]) for row in table]
            if first:
                lines.insert(0, ",".join(map(cell, ["timestamp", *header])))
            return "".join(line + "\n" for line in lines).encode("utf-8")

        return csv_frame
    if args.format == "prometheus":
        from smicast.prometheus import render_metrics

        def metrics_frame(snap: Snapshot, first: bool) -> bytes:
            text = render_metrics(snap, ready=True)
            return f"# frame {snap.timestamp}\n{text}".encode()

        return metrics_frame
    from smicast.encode import snapshot_json

    return lambda snap, first: snapshot_json(snap) + b"\n"


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.loop and args.speed is None:
        parser.error("--loop needs --speed: without pacing it would print forever")
    if args.query is not None and args.format != "csv":
        parser.error("--query applies to --format csv only")
    render = _renderer(args)

    paths = [Path(f) for f in args.files]
    stats = TraceStats()
    frames: Iterator[TraceFrame]
    if args.speed is not None:
        frames = paced(
            paths,
            speed=args.speed,
            loop=args.loop,
            start_s=args.start,
            stats=stats,
            warn=lambda text: print(f"{PROG}: warning: {text}", file=sys.stderr, flush=True),
        )
    else:
        frames = (s for s, _, _ in timeline(paths, loop=False, start_s=args.start, stats=stats))
    out = sys.stdout.buffer
    printed = 0
    try:
        for frame in frames:
            if args.format == "ndjson":
                # The recorded bytes as they are: checked JSON of schema 1, not rebuilt.
                out.write(frame.line)
                out.write(b"\n")
            else:
                try:
                    snap = frame.snapshot()
                except msgspec.ValidationError:
                    stats.frames -= 1
                    stats.corrupt += 1
                    continue
                out.write(render(snap, printed == 0))
            printed += 1
            if args.speed is not None:
                out.flush()
        out.flush()
    except UnsupportedSchema as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except TraceError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's
        # final flush of stdout from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        _report(stats)
    if args.start and not printed and stats.frames:
        print(f"{PROG}: error: --start is past the end of the trace", file=sys.stderr)
        return 1
    return 0


def _report(stats: TraceStats) -> None:
    for path in stats.damaged:
        print(
            f"{PROG}: {path}: corrupt compressed data; the rest of it was skipped", file=sys.stderr
        )
    summary = stats.summary()
    if summary is not None:
        print(f"{PROG}: {summary}", file=sys.stderr)
