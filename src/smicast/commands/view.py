"""`smicast view`: the terminal viewer of this machine, a recording, or one remote agent.

Exit 0: quit with `q`. Exit 1: the trace cannot be read, or no terminal.
Exit 2: bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from smicast.commands._common import (
    add_source_arguments,
    arg_type,
    faults_or_exit,
    make_collector,
    non_negative_float,
    positive_float,
)
from smicast.include import Section
from smicast.record.format import parse_timecode
from smicast.record.source_sse import parse_source

if TYPE_CHECKING:
    from smicast.view.sources import FrameSource

PROG = "view"
SECTIONS = frozenset({Section.GPU, Section.CPU, Section.MEMORY, Section.CHASSIS, Section.PROCESS})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "view",
        help="terminal viewer: this machine, a recording (--replay) or a remote agent (--host)",
        description="A terminal UI of GPUs, CPU cores, memory, power and GPU processes. "
        "Press ? inside it for every key.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--replay", nargs="+", metavar="FILE", help="view recorded traces (oldest segment first)"
    )
    source.add_argument(
        "--host",
        metavar="URL",
        help="view one smicast or all-smi agent over /events (http://HOST:PORT or unix:PATH)",
    )
    p.add_argument(
        "-i",
        "--interval",
        type=positive_float,
        default=1.0,
        metavar="S",
        help="seconds between collections of this machine (default 1, at least 0.5)",
    )
    p.add_argument(
        "--timeout-ms",
        type=positive_float,
        default=1000.0,
        metavar="MS",
        help="per-reader timeout for this machine (default 1000)",
    )
    add_source_arguments(p)
    p.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="S",
        help="replay speed, 0.25..8 (default 1); + and - change it while viewing",
    )
    p.add_argument(
        "--start",
        type=arg_type(parse_timecode),
        default=0.0,
        metavar="HH:MM:SS",
        help="replay from this far into the trace",
    )
    p.add_argument("--loop", action="store_true", help="replay: start again at the end")
    p.add_argument(
        "--alert-temp",
        type=positive_float,
        metavar="C",
        help="GPU temperature warning in °C (default 80; critical 10 above when within 5)",
    )
    p.add_argument(
        "--alert-util-low-mins",
        type=non_negative_float,
        metavar="M",
        help="warn when a GPU stays at or below 5%% utilization this many minutes "
        "(default 15; 0 turns it off)",
    )
    p.add_argument(
        "--theme", choices=("dark", "light"), default="dark", help="colours (t toggles them)"
    )
    from smicast.fleet.options import add_fleet_arguments

    add_fleet_arguments(p)  # view --hosts: a fleet (smicast.view.fleet_app)
    p.set_defaults(parser=p)


def _source(args: argparse.Namespace) -> FrameSource:
    parser: argparse.ArgumentParser = args.parser
    from smicast.fleet.options import fleet_from_args, wants_fleet

    if wants_fleet(args):
        from smicast.fleet.source import FleetSource

        if args.replay or args.host:
            parser.error("--hosts/--hostfile cannot be used with --replay or --host")
        return FleetSource(*fleet_from_args(args, parser))
    if args.replay:
        from pathlib import Path

        from smicast.view.fleet_sources import FleetReplaySource, is_fleet_trace
        from smicast.view.replay import ReplaySource, Trace

        trace = Trace([Path(f) for f in args.replay])
        if not len(trace):
            raise _Fail("the trace holds no frames")
        kind = FleetReplaySource if is_fleet_trace(trace) else ReplaySource
        return kind(trace, speed=args.speed, loop=args.loop, start_s=args.start)
    if args.host:
        from smicast.view.sources import RemoteSource

        try:
            url = parse_source(args.host)
        except ValueError as exc:
            parser.error(str(exc).replace("--from", "--host"))
        return RemoteSource(url, SECTIONS)
    from smicast.view.sources import LocalSource

    faults_or_exit(parser, args)
    collector = make_collector(args, SECTIONS, timeout_s=min(args.timeout_ms / 1000, args.interval))
    sim = args.simulate
    label = f"local, simulated {sim.platform}:{sim.count}" if sim else "local"
    return LocalSource(
        collector, SECTIONS, interval_s=args.interval, label=label, simulated=sim is not None
    )


class _Fail(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.interval < 0.5:
        parser.error(f"--interval must be at least 0.5 s, got {args.interval:g}")
    if not 0.25 <= args.speed <= 8:
        parser.error(f"--speed must be between 0.25 and 8, got {args.speed:g}")
    from smicast.record.reader import TraceError
    from smicast.view.alerts import AlertConfig
    from smicast.view.model import ViewModel

    try:
        source = _source(args)
    except (TraceError, _Fail) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        print(f"{PROG}: error: needs a terminal (stdin and stdout)", file=sys.stderr)
        return 1
    prefetch = getattr(source, "prefetch", None)
    if prefetch is not None:
        prefetch()  # the first frame is collected while Textual loads and starts
    from smicast.view.app import THEMES
    from smicast.view.fleet_app import make_app

    model = ViewModel(AlertConfig.from_options(args.alert_temp, args.alert_util_low_mins))
    theme = THEMES[0] if args.theme == "dark" else THEMES[1]
    from smicast.view.gcpace import GcPacer

    # Once the first frame is on the screen, garbage is collected on the viewer's own
    # clock instead of inside a key's handling (see smicast.view.gcpace).
    app = make_app(model, source, theme=theme, on_first_frame=GcPacer().start)
    result = app.run(loop=event_loop())
    return result if isinstance(result, int) else 0


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (a fleet's hundreds of streams cost less), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
