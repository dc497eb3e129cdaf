"""`smicast api`: serve /metrics, /snapshot, /events and /-/ready over TCP and a Unix socket.

Exit 0 after SIGINT/SIGTERM, 1 when a listener cannot be opened, 2 for bad options
(including no listener at all).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from smicast.commands import api_limits, api_settings
from smicast.commands._common import (
    add_source_arguments,
    bool_arg,
    bounded_int,
    faults_or_exit,
    make_collector,
    positive_float,
    timeout_ms_arg,
)
from smicast.include import DEFAULT_SECTIONS, Section
from smicast.schema import Snapshot

PROG = "api"
_DEFAULT_SOCKET = api_settings.DEFAULT_SOCKET
MIN_INTERVAL_S = 0.01


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "api",
        help="serve Prometheus /metrics, /snapshot JSON, /events SSE and a dashboard",
        description="Collect on a fixed schedule and serve every frame over HTTP (TCP and/or a Unix socket).",
    )
    p.add_argument(
        "-p",
        "--port",
        type=bounded_int(0, 65535),
        default=None,
        help="TCP port (default 9090, or SMICAST_API_PORT / ALL_SMI_API_PORT; 0 disables TCP)",
    )
    p.add_argument(
        "--bind",
        metavar="ADDR",
        help="address to listen on (default: every interface, IPv6 and IPv4)",
    )
    p.add_argument(
        "-s",
        "--socket",
        nargs="?",
        const=_DEFAULT_SOCKET,
        metavar="PATH",
        help="also listen on a Unix socket (mode 0600); without PATH: /run/smicast.sock "
        "as root, else $XDG_RUNTIME_DIR/smicast.sock, else /tmp/smicast-UID/smicast.sock "
        "(a private directory)",
    )
    p.add_argument(
        "-i",
        "--interval",
        type=positive_float,
        default=None,
        help="seconds between collections (default 3, or SMICAST_API_INTERVAL_SECS)",
    )
    p.add_argument(
        "--processes",
        nargs="?",
        const=True,
        default=None,
        type=bool_arg,
        metavar="BOOL",
        help="collect GPU processes (off by default: privacy); --processes=false turns it off",
    )
    p.add_argument(
        "--timeout-ms",
        type=timeout_ms_arg,
        default=5000,
        help="per-reader timeout (default 5000, at most the interval)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard at /")
    p.add_argument(
        "--replay", nargs="+", metavar="FILE", help="serve a recording instead of this machine"
    )
    p.add_argument(
        "--speed", type=positive_float, default=1.0, help="replay speed factor (default 1)"
    )
    p.add_argument("--loop", action="store_true", help="replay: start again at the end")
    p.add_argument(
        "--web-config",
        metavar="FILE",
        help="TLS, basic auth users and headers in the Prometheus exporter-toolkit "
        "web-config.yml format, re-read when it changes (default: SMICAST_API_WEB_CONFIG)",
    )
    p.add_argument(
        "--auth-token-file",
        metavar="FILE",
        help="accept `Authorization: Bearer TOKEN` for the tokens in FILE (one per line)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where energy totals outlive restarts (default: SMICAST_STATE_DIR, else "
        "/var/lib/smicast as root, $XDG_STATE_HOME/smicast or ~/.local/state/smicast otherwise)",
    )
    add_source_arguments(p)
    api_limits.add_arguments(p)
    p.set_defaults(parser=p)


def _configure_logging() -> None:
    level = os.environ.get("SMICAST_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="smicast %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    try:
        settings_sources = api_settings.resolve(args)
    except api_settings.SettingError as exc:
        parser.error(str(exc))
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, got {args.port}")
    if args.interval < MIN_INTERVAL_S:
        parser.error(f"--interval must be at least {MIN_INTERVAL_S} s")
    if args.timeout_ms < 1:
        parser.error("--timeout-ms must be >= 1")
    if args.port == 0 and args.socket is None:
        parser.error("no listeners configured: use --port or --socket")
    if args.replay and args.simulate:
        parser.error("--replay and --simulate are mutually exclusive")
    faults_or_exit(parser, args)
    for path in args.replay or ():
        if not Path(path).is_file():
            parser.error(f"--replay: {path}: no such file")
    if args.replay:
        from smicast.record.replay import check_speed

        try:
            check_speed(args.speed)
        except ValueError as exc:
            parser.error(f"--speed: {exc}")
        problem = _replay_problem([Path(p) for p in args.replay])
        if problem:
            print(f"smicast {PROG}: error: {problem}", file=sys.stderr)
            return 1
    _configure_logging()
    if settings_sources:
        logging.getLogger("smicast.api").info("settings: %s", ", ".join(settings_sources))
    from smicast.api.access import env_web_config, exposure_warnings, from_options
    from smicast.api.webconfig import WebConfigError

    try:
        access = from_options(args.web_config or env_web_config(), args.auth_token_file)
    except WebConfigError as exc:
        parser.error(str(exc))

    from smicast.api import cors
    from smicast.api.server import ListenError, Server, open_tcp, open_unix
    from smicast.api.state import ApiState, max_subscribers_from_env
    from smicast.api.unix_path import SocketPathError, check_socket_path, default_socket_path

    sections = (
        DEFAULT_SECTIONS | {Section.STORAGE} | ({Section.PROCESS} if args.processes else set())
    )
    # A reader may take at most one interval, so a hung driver never costs a tick.
    timeout_s = min(args.timeout_ms / 1000, args.interval)
    collector = None if args.replay else make_collector(args, frozenset(sections), timeout_s)
    energy = None
    if collector is not None:
        from smicast.energy.account import open_account

        energy = open_account(args.state_dir, collector.hostname, collector.readers)
    state = ApiState(
        interval_s=args.interval,
        sections=frozenset(sections),
        collector=collector,
        max_subscribers=max_subscribers_from_env(),
        dashboard=not args.no_dashboard,
        on_first_frame=None if args.replay else _announce_found(args.simulate is not None),
        energy=energy,
    )
    frames = None
    if args.replay:
        from smicast.record.replay import play

        frames = play([Path(p) for p in args.replay], speed=args.speed, loop=args.loop)

    unix_path = None
    sockets = []
    try:
        if args.port:
            sockets += open_tcp(args.bind, args.port)
        if args.socket is not None:
            unix_path = (
                default_socket_path() if args.socket == _DEFAULT_SOCKET else Path(args.socket)
            )
            check_socket_path(unix_path)
            sockets.append(open_unix(unix_path))
    except (ListenError, SocketPathError) as exc:
        for sock in sockets:
            sock.close()
        print(f"smicast {PROG}: error: {exc.strerror}", file=sys.stderr)
        return 1

    from smicast.api.startup import url_lines

    tls = access is not None and access.tls
    for line in url_lines(sockets, unix_path, dashboard=not args.no_dashboard, tls=tls):
        print(f"smicast {PROG}: {line}", file=sys.stderr, flush=True)
    for note in access.notes() if access is not None else ():
        logging.getLogger("smicast.api").info("web config: %s", note)
    for warning in exposure_warnings(sockets, access, args.processes):
        logging.getLogger("smicast.api").warning("%s", warning)
    server = Server(
        state,
        sockets,
        unix_path=unix_path,
        frames=frames,
        policy=cors.CorsPolicy.from_env(),
        limits=api_limits.limits_from(args),
        access=access,
    )
    _run_async(server)
    if energy is not None:
        energy.close()
    return 0


def _announce_found(simulated: bool) -> Callable[[Snapshot], None]:
    def announce(snapshot: Snapshot) -> None:
        from smicast.api.startup import found_line

        print(f"smicast {PROG}: {found_line(snapshot, simulated=simulated)}", file=sys.stderr)

    return announce


def _replay_problem(paths: list[Path]) -> str | None:
    """Read the first frame now, so a trace of another schema fails before we listen."""
    from smicast.record.reader import TraceError, TraceStats, iter_frames

    stats = TraceStats()
    try:
        for _ in iter_frames(paths, stats):
            return None
    except TraceError as exc:
        return str(exc)
    return f"{', '.join(map(str, paths))}: no frame to serve"


def _run_async(server: object) -> None:
    from smicast.api.server import Server, install_signal_handlers

    assert isinstance(server, Server)

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await server.run(stop)

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
