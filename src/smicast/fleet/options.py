"""The options every fleet command shares: which hosts, and how to authenticate to them."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from smicast.fleet.auth import AuthError, load_token, ssl_context
from smicast.fleet.client import ClientOptions
from smicast.fleet.hosts import HostError, HostSpec, dedupe, parse_hosts_option, read_hostfile
from smicast.fleet.source import adaptive_interval_s


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fleet (many agents at once)")
    group.add_argument(
        "--hosts",
        action="append",
        metavar="URL[,URL...]",
        help="agents to watch: HOST:PORT (http:// is added), http(s)://[USER:PASS@]HOST:PORT"
        "[/PREFIX] or unix:PATH; comma-separated, repeatable",
    )
    group.add_argument(
        "--hostfile",
        type=Path,
        metavar="FILE",
        help="one host per line as --hosts takes them; blank lines and # comments are skipped",
    )
    group.add_argument(
        "--auth-token-file",
        type=Path,
        metavar="FILE",
        help="send 'Authorization: Bearer' with the token in FILE (default: "
        "SMICAST_AUTH_TOKEN, else ALL_SMI_AUTH_TOKEN); a URL's USER:PASS sends basic auth instead",
    )
    group.add_argument(
        "--cacert",
        type=Path,
        metavar="FILE",
        help="CA bundle that https:// agents are verified against (default: the system's)",
    )


def wants_fleet(args: argparse.Namespace) -> bool:
    return bool(args.hosts) or args.hostfile is not None


def fleet_from_args(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    poll_interval_s: float | None = None,
) -> tuple[list[HostSpec], ClientOptions]:
    """The hosts and client options; bad values exit 2 through `parser.error`.

    Agents without `/events` are polled every `poll_interval_s`, by default at
    all-smi's pace for the fleet's size (3 s up to 10 hosts ... 6 s above 100)."""
    try:
        hosts = parse_hosts_option(args.hosts or [])
        if args.hostfile is not None:
            hosts += read_hostfile(args.hostfile)
        hosts = dedupe(hosts)
        if not hosts:
            raise HostError("no hosts given (--hosts or a --hostfile with hosts in it)")
        options = ClientOptions(
            poll_interval_s=adaptive_interval_s(len(hosts)),
            token=load_token(args.auth_token_file),
            ssl_context=ssl_context(args.cacert),
        )
    except (HostError, AuthError) as exc:
        parser.error(str(exc))
        raise AssertionError("unreachable") from exc
    if poll_interval_s is not None:
        options = replace(options, poll_interval_s=poll_interval_s)
    return hosts, options
