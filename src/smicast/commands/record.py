"""`smicast record`: an NDJSON trace of this machine, or of another agent's stream.

Exit 0: stopped by --duration, SIGINT or SIGTERM, file closed cleanly.
Exit 1: the file could not be created or written (the message names it), or the
--from source refused for good. Exit 2: bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from smicast.commands._common import (
    MAX_SECONDS,
    add_include_argument,
    add_source_arguments,
    arg_type,
    bounded_float,
    bounded_int,
    faults_or_exit,
    non_negative_float,
    sections_or_exit,
    timeout_ms_arg,
)
from smicast.fsutil import OutputError
from smicast.include import Section
from smicast.record.format import Codec, codec_for_path, parse_duration, parse_size
from smicast.record.writer import DEFAULT_FLUSH_EVERY_S, MAX_ROTATION_NUMBER

if TYPE_CHECKING:
    from smicast.fleet.client import ClientOptions
    from smicast.fleet.hosts import HostSpec
    from smicast.record.progress import Progress
    from smicast.record.source_sse import SourceUrl
    from smicast.record.writer import TraceWriter

PROG = "record"
MIN_INTERVAL_S = 0.05
DEFAULT_INTERVAL_S = 3.0
MAX_FILES = MAX_ROTATION_NUMBER


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "record",
        help="record snapshots to an NDJSON trace (.zst/.gz) that survives crashes",
        description="Record one schema-1 snapshot per interval to an NDJSON trace (all-smi "
        "compatible: a header line, one frame per line, an index line every 1000 frames). "
        "Stop with Ctrl-C or SIGTERM; the file is closed cleanly. After a crash the trace "
        "reads back up to the last flush.",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="the trace to create (mode 0600; an existing file or a symlink is refused)",
    )
    p.add_argument(
        "-i",
        "--interval",
        type=bounded_float(MIN_INTERVAL_S, MAX_SECONDS),
        metavar="SECS",
        help=f"seconds between frames, at least {MIN_INTERVAL_S} "
        f"(default {DEFAULT_INTERVAL_S:g}; not with --from, whose agent sets the pace)",
    )
    p.add_argument(
        "--duration",
        type=arg_type(parse_duration),
        default=0.0,
        metavar="D",
        help="stop after D: 30, 30s, 5m, 1h, 1d (default: until interrupted)",
    )
    add_include_argument(p)
    p.add_argument(
        "--max-size",
        type=arg_type(parse_size),
        default=100 << 20,
        metavar="SIZE",
        help="rotate when the active file holds SIZE uncompressed bytes: e.g. 100M, "
        "512K, 2G (1024-based); 0 never rotates (default 100M)",
    )
    p.add_argument(
        "--max-files",
        type=bounded_int(1, MAX_FILES),
        default=10,
        metavar="N",
        help="keep at most N files, the active one included (default 10)",
    )
    p.add_argument(
        "--compress",
        choices=[c.value for c in Codec],
        help="default: from the extension (.zst zstd, .gz gzip, else none). Replay "
        "picks the codec from the extension, so a choice that contradicts it is "
        "refused: the trace would not read back",
    )
    p.add_argument(
        "--flush-every",
        type=non_negative_float,
        default=DEFAULT_FLUSH_EVERY_S,
        metavar="SECS",
        help="flush and fsync at least this often; a crash loses at "
        f"most this much (default {DEFAULT_FLUSH_EVERY_S:g}; 0 = every frame)",
    )
    p.add_argument(
        "--timeout-ms", type=timeout_ms_arg, default=5000, help="per-reader timeout (default 5000)"
    )
    p.add_argument(
        "--from",
        dest="source",
        metavar="URL",
        help="record another smicast or all-smi agent's /events stream instead of "
        "this machine: http://HOST:PORT, https://... or unix:PATH",
    )
    add_source_arguments(p)
    from smicast.fleet.options import add_fleet_arguments

    add_fleet_arguments(p)  # record --hosts: many agents into one trace
    p.set_defaults(parser=p)


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    sections = sections_or_exit(parser, args.include)
    faults_or_exit(parser, args)
    output = Path(args.output)
    codec = codec_for_path(output)
    if args.compress is not None and Codec(args.compress) is not codec:
        parser.error(
            f"--compress {args.compress} contradicts the name {output.name} (which means "
            f"{codec.value}); replay picks the codec from the extension, so rename the file "
            "or drop --compress"
        )
    source = None
    if args.source is not None:
        from smicast.record.source_sse import parse_source

        if args.interval is not None:
            parser.error("--interval cannot be used with --from: the agent's stream sets the pace")
        if args.simulate is not None:
            parser.error("--simulate cannot be used with --from")
        try:
            source = parse_source(args.source)
        except ValueError as exc:
            parser.error(str(exc))
    fleet = None
    from smicast.fleet.options import fleet_from_args, wants_fleet

    if wants_fleet(args):
        if source is not None or args.simulate is not None:
            parser.error("--hosts/--hostfile cannot be used with --from or --simulate")
        fleet = fleet_from_args(args, parser, args.interval)
    interval_s = args.interval if args.interval is not None else DEFAULT_INTERVAL_S

    from smicast.readers import default_hostname
    from smicast.record.progress import Progress, terminal_stream
    from smicast.record.source_sse import SourceError
    from smicast.record.writer import TraceWriter

    try:
        if not output.parent.exists():
            output.parent.mkdir(parents=True, mode=0o700)
        writer = TraceWriter(
            output,
            hosts=[h.label for h in fleet[0]]
            if fleet
            else [source.label if source else default_hostname()],
            interval_ms=0 if source else round(interval_s * 1000),
            codec=codec,
            max_size=args.max_size,
            max_files=args.max_files,
            flush_every_s=args.flush_every,
        )
    except OSError as exc:
        shown = exc.strerror if isinstance(exc, OutputError) else f"{output.parent}: {exc.strerror}"
        print(f"{PROG}: error: {shown}", file=sys.stderr)
        return 1
    progress = Progress(terminal_stream(), duration_s=args.duration)
    try:
        try:
            if fleet is not None:
                _record_fleet(fleet, sections, writer, interval_s, args.duration, progress)
            elif source is None:
                _record_here(args, sections, writer, interval_s, progress)
            else:
                _record_from(source, sections, writer, args.duration, progress)
        finally:
            progress.finish(writer.stats)
            writer.close()
    except (OutputError, SourceError) as exc:
        shown = exc.strerror if isinstance(exc, OutputError) else str(exc)
        print(f"{PROG}: error: {shown}", file=sys.stderr)
        return 1
    return 0


def _record_here(
    args: argparse.Namespace,
    sections: frozenset[Section],
    writer: TraceWriter,
    interval_s: float,
    progress: Progress,
) -> None:
    from smicast.commands._common import make_collector
    from smicast.record.recorder import record_local, stop_on_signals

    stop = threading.Event()
    with stop_on_signals(stop.set, stop.is_set):
        collector = make_collector(args, sections, timeout_s=args.timeout_ms / 1000)
        record_local(
            lambda: collector.collect(sections),
            writer,
            interval_s=interval_s,
            duration_s=args.duration,
            stop=stop,
            progress=progress,
        )


def _record_from(
    source: SourceUrl,
    sections: frozenset[Section],
    writer: TraceWriter,
    duration_s: float,
    progress: Progress,
) -> None:
    from smicast.record.recorder import record_stream
    from smicast.record.source_sse import sse_frames

    def warn(text: str) -> None:
        progress.message(f"{PROG}: warning: {text}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        frames = sse_frames(source, sections, warn=warn)
        await record_stream(frames, writer, duration_s=duration_s, stop=stop, progress=progress)

    asyncio.run(main())


def _record_fleet(
    fleet: tuple[list[HostSpec], ClientOptions],
    sections: frozenset[Section],
    writer: TraceWriter,
    interval_s: float,
    duration_s: float,
    progress: Progress,
) -> None:
    from smicast.fleet.record import record_fleet
    from smicast.fleet.source import FleetSource

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        source = FleetSource(fleet[0], fleet[1])
        await record_fleet(
            source,
            writer,
            sections=sections,
            interval_s=interval_s,
            duration_s=duration_s,
            stop=stop,
            progress=progress,
        )

    asyncio.run(main())
