"""What `smicast api` tells a person at start: where to look, and what it found.

The URLs come from the sockets actually bound; the hardware line comes from the first
published frame (GPU detection runs under the reader timeout, so it is known only then).
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from msgspec import UNSET

from smicast.schema import Snapshot

SIMULATE_HINT = "no GPU found; to see a simulated 8-GPU host try: smicast api --simulate nvidia:8"


def _base_url(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    if host in ("::", "0.0.0.0"):  # every interface: show a name a browser can use
        host = "localhost"
    elif sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def url_lines(
    sockets: Sequence[socket.socket], unix_path: Path | None, *, dashboard: bool, tls: bool = False
) -> list[str]:
    """One line per thing served: dashboard, metrics, snapshot and events, and the socket."""
    lines: list[str] = []
    seen: set[str] = set()
    for sock in sockets:
        if sock.family == socket.AF_UNIX:
            continue
        base = _base_url(sock, "https" if tls else "http")
        if base in seen:
            continue
        seen.add(base)
        if dashboard:
            lines.append(f"dashboard: {base}/")
        lines.append(f"metrics:   {base}/metrics")
        lines.append(f"json, sse: {base}/snapshot  {base}/events")
    if unix_path is not None:
        lines.append(
            f"socket:    {unix_path} (curl --unix-socket {unix_path} http://localhost/metrics)"
        )
    return lines


def found_line(snapshot: Snapshot, *, simulated: bool) -> str:
    """The devices the first frame holds, or why there are none."""
    gpus = [] if snapshot.gpus is UNSET else snapshot.gpus
    gpu_errors = [
        e for e in ([] if snapshot.errors is UNSET else snapshot.errors) if e.section == "gpu"
    ]
    if gpus:
        kinds = Counter(f"{g.device_type} {g.name}" for g in gpus)
        what = ", ".join(f"{n} x {kind}" for kind, n in sorted(kinds.items()))
        source = "simulated" if simulated else "found"
        return f"{source}: {len(gpus)} accelerator{'s' if len(gpus) != 1 else ''} ({what})"
    if gpu_errors:
        problems = "; ".join(f"{e.kind}: {e.message}" for e in gpu_errors)
        return f"GPU reader did not answer ({problems}); other sections are served"
    return SIMULATE_HINT
