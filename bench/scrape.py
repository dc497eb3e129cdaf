"""Scrape benchmark: smicast `/metrics` and `/snapshot` side by side with node_exporter.

    python bench/scrape.py [--duration 5] [--connections 1,10,50] [--runs 3]

Starts `smicast api --simulate nvidia:8 --interval 1` and Debian's
`prometheus-node-exporter` (default collectors) on 127.0.0.1, then, for each target and
each concurrency, keeps that many keep-alive HTTP/1.1 connections busy (one request in
flight per connection, the next sent as soon as a response is complete) for --duration
seconds and reports requests/s and latency p50/p99/max. The load generator is a
separate process (uvloop, raw asyncio protocol, a minimal HTTP/1.1 response parser).

Targets: smicast /metrics (plain and with `Accept-Encoding: gzip`, as Prometheus
sends it), smicast /snapshot, node_exporter /metrics (plain and gzip). Runs are
interleaved (every cell once per run) and the table shows the median over runs.

`--tls` adds the same /metrics over HTTPS with basic auth (one bcrypt user, cost 10;
a web-config file both servers read) for smicast and node_exporter, beside plain HTTP
in the same run. Each keep-alive connection does one TLS handshake, then requests.

Client and servers share this host's CPUs: the client's own CPU use is printed per
cell, and node_exporter (multi-threaded Go) competes with the client for both cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import multiprocessing as mp
import ssl
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    HOST,
    ProcSampler,
    ServerProcess,
    cpu_seconds_of,
    machine_note,
    median,
    raise_nofile,
    start_node_exporter,
    start_smicast,
    summarize,
)
from _tls import BenchTls, make_bench_tls

MAX_HEAD_BYTES = 64 * 1024
DRAIN_S = 5.0  # how long in-flight requests may finish after the window


# =============================================================================
# load generator (its own process)
# =============================================================================
class Totals:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0, self.t1 = t0, t1
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.body_bytes = 0
        self.errors = 0
        self.outside = 0


class KeepAlive(asyncio.Protocol):
    """One keep-alive connection sending GETs back to back until `stop_at`."""

    def __init__(self, request: bytes, totals: Totals, start_at: float, stop_at: float) -> None:
        self.request = request
        self.totals = totals
        self.start_at = start_at
        self.stop_at = stop_at
        self.transport: Any = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent_at = 0.0
        self.busy = False  # a request is in flight
        self._reset()

    def _reset(self) -> None:
        self.head = b""
        self.in_head = True
        self.status = 0
        self.remaining = 0  # body bytes left (Content-Length), or of the current chunk + CRLF
        self.chunked = False
        self.chunk_line = b""
        self.last_chunk = False
        self.close_after = False
        self.body = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        delay = self.start_at - time.monotonic()
        asyncio.get_running_loop().call_later(max(0.0, delay), self._send)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.totals.errors += 1  # closed by the server mid-response
        if not self.done.done():
            self.done.set_result(None)

    def _send(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._reset()
        self.busy = True
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def _finish(self) -> None:
        end = time.perf_counter()
        now = time.monotonic()
        self.busy = False
        t = self.totals
        if t.t0 <= now <= t.t1:
            t.latencies.append(end - self.sent_at)
            t.statuses[self.status] = t.statuses.get(self.status, 0) + 1
            t.body_bytes += self.body
        else:
            t.outside += 1
        if self.close_after or now >= self.stop_at:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self._send()

    def data_received(self, data: bytes) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self.in_head:
                buf = self.head + data[pos:]
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        self._error()
                        return
                    self.head = buf
                    return
                consumed = end + 4 - len(self.head)
                self._parse_head(buf[:end])
                self.head = b""
                self.in_head = False
                pos += consumed
                if not self.chunked and self.remaining == 0:
                    self._finish()
                continue
            if not self.chunked:
                take = min(self.remaining, n - pos)
                self.remaining -= take
                self.body += take
                pos += take
                if self.remaining == 0:
                    if pos < n:  # bytes after a complete response: nothing was asked for
                        self._error()
                        return
                    self._finish()
                continue
            if self.remaining:  # inside a chunk's data (+ its CRLF)
                take = min(self.remaining, n - pos)
                self.remaining -= take
                self.body += take
                pos += take
                continue
            line_end = data.find(b"\r\n", pos)
            if line_end < 0:
                self.chunk_line += data[pos:]
                if len(self.chunk_line) > 4096:
                    self._error()
                return
            line = self.chunk_line + data[pos:line_end]
            self.chunk_line = b""
            pos = line_end + 2
            if self.last_chunk:  # trailer lines until an empty one
                if not line:
                    self._finish()
                    if pos < n:
                        self._error()
                        return
                continue
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                self._error()
                return
            if size == 0:
                self.last_chunk = True
            else:
                self.remaining = size + 2

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        try:
            self.status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self.status = -1
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                self.remaining = int(value.strip())
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                self.chunked = True
            elif key == b"connection" and value.strip().lower() == b"close":
                self.close_after = True

    def _error(self) -> None:
        self.totals.errors += 1
        self.busy = False
        if self.transport is not None:
            self.transport.close()


async def _load(job: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    headers = "".join(f"{k}: {v}\r\n" for k, v in job["headers"].items())
    request = (
        f"GET {job['path']} HTTP/1.1\r\nHost: {HOST}:{job['port']}\r\n{headers}"
        "User-Agent: smicast-bench\r\n\r\n"
    ).encode()
    totals = Totals(job["t0"], job["t1"])
    tls = ssl.create_default_context(cafile=job["ca"]) if job.get("ca") else None
    conns: list[KeepAlive] = []
    for _ in range(job["connections"]):
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: KeepAlive(request, totals, job["start_at"], job["t1"]),
                    HOST,
                    job["port"],
                    ssl=tls,
                ),
                5.0,
            )
        except (OSError, TimeoutError):
            totals.errors += 1
            continue
        conns.append(proto)
    waits = [c.done for c in conns]
    if waits:
        _, pending = await asyncio.wait(
            waits, timeout=max(0.0, job["t1"] - time.monotonic()) + DRAIN_S
        )
        totals.errors += len(pending)  # requests that did not finish in time
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return {
        "latencies": totals.latencies,
        "statuses": totals.statuses,
        "errors": totals.errors,
        "body_bytes": totals.body_bytes,
        "connected": len(conns),
    }


def load_process(conn: Connection) -> None:
    """Serve load jobs from the coordinator until told to stop."""
    raise_nofile()
    gc.disable()  # latencies recorded here should not carry our own GC pauses
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        while True:
            if not conn.poll(120):
                break
            job = conn.recv()
            if job is None:
                break
            conn.send(runner.run(_load(job)))
            gc.collect()
    conn.close()


# =============================================================================
# coordinator
# =============================================================================
@dataclass(frozen=True)
class Target:
    name: str
    server: str  # "smicast" or "node_exporter"
    path: str
    gzip: bool
    tls: bool = False  # HTTPS with basic auth (--tls)


TARGETS = (
    Target("smicast /metrics", "smicast", "/metrics", False),
    Target("smicast /metrics gzip", "smicast", "/metrics", True),
    Target("smicast /snapshot", "smicast", "/snapshot", False),
    Target("node_exporter /metrics", "node_exporter", "/metrics", False),
    Target("node_exporter /metrics gzip", "node_exporter", "/metrics", True),
)
TLS_TARGETS = (
    Target("smicast /metrics", "smicast", "/metrics", False),
    Target("smicast /metrics tls+auth", "smicast_tls", "/metrics", False, tls=True),
    Target("node_exporter /metrics", "node_exporter", "/metrics", False),
    Target("node_exporter /metrics tls+auth", "node_exporter_tls", "/metrics", False, tls=True),
)


@dataclass
class Cell:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    non200: list[int] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    body: list[float] = field(default_factory=list)


def run_cell(
    worker: tuple[mp.process.BaseProcess, Connection],
    server: ServerProcess,
    target: Target,
    connections: int,
    duration_s: float,
    warmup_s: float,
    tls: BenchTls | None = None,
) -> dict[str, float]:
    proc, conn = worker
    now = time.monotonic()
    start_at = now + 0.3  # connections are open by then
    t0 = start_at + warmup_s
    t1 = t0 + duration_s
    headers = {"Accept": "*/*"}
    if target.gzip:
        headers["Accept-Encoding"] = "gzip"
    if target.tls and tls is not None:
        headers["Authorization"] = tls.authorization
    conn.send(
        {
            "ca": str(tls.ca) if target.tls and tls is not None else None,
            "port": server.port,
            "path": target.path,
            "headers": headers,
            "connections": connections,
            "start_at": start_at,
            "t0": t0,
            "t1": t1,
        }
    )
    sampler = ProcSampler(server.pid)
    time.sleep(max(0.0, t0 - time.monotonic()))
    window = sampler.window()
    client0 = cpu_seconds_of([proc.pid or 0])
    time.sleep(max(0.0, t1 - time.monotonic()))
    server_cpu = window.cpu_percent()
    client_cpu = 100.0 * (cpu_seconds_of([proc.pid or 0]) - client0) / duration_s
    if not conn.poll(duration_s + DRAIN_S + 30):
        raise TimeoutError("the load generator did not report in time")
    res = conn.recv()
    lat = summarize(res["latencies"])
    ok = res["statuses"].get(200, 0)
    return {
        "rps": ok / duration_s,
        "p50": lat["p50"],
        "p99": lat["p99"],
        "max": lat["max"],
        "errors": res["errors"] + (connections - res["connected"]),
        "non200": sum(v for k, v in res["statuses"].items() if k != 200),
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "body": res["body_bytes"] / ok if ok else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    ap.add_argument("--connections", default="1,10,50", help="comma-separated concurrencies")
    ap.add_argument("--runs", type=int, default=3, help="passes over every cell (median shown)")
    ap.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before a cell")
    ap.add_argument(
        "--targets",
        default="",
        help="comma-separated subset of: " + ", ".join(t.name for t in TARGETS),
    )
    ap.add_argument(
        "--node-exporter-gomaxprocs",
        type=int,
        default=0,
        help="pass --runtime.gomaxprocs=N to node_exporter (default: its own default, 1 in 1.5)",
    )
    ap.add_argument(
        "--tls",
        action="store_true",
        help="/metrics over HTTPS with basic auth beside plain HTTP, smicast and node_exporter",
    )
    args = ap.parse_args(argv)
    try:
        conc = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        ap.error("--connections: comma-separated whole numbers")
    if not conc or min(conc) < 1 or max(conc) > 1000:
        ap.error("--connections must be between 1 and 1000")
    if args.duration <= 0 or args.duration > 120 or not 1 <= args.runs <= 20:
        ap.error("bounded: 0 < --duration <= 120, 1 <= --runs <= 20")
    known = TLS_TARGETS if args.tls else TARGETS
    targets = list(known)
    if args.targets:
        wanted = {t.strip() for t in args.targets.split(",")}
        targets = [t for t in known if t.name in wanted]
        if not targets:
            ap.error("--targets matched nothing")
    raise_nofile()

    servers: dict[str, ServerProcess] = {}
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    worker = ctx.Process(target=load_process, args=(child,), daemon=True)
    tls = make_bench_tls() if args.tls else None
    try:
        servers["smicast"] = start_smicast(interval_s=1.0)
        extra = (
            [f"--runtime.gomaxprocs={args.node_exporter_gomaxprocs}"]
            if args.node_exporter_gomaxprocs
            else []
        )
        if any(t.server == "node_exporter" for t in targets):
            servers["node_exporter"] = start_node_exporter(extra=extra)
        if tls is not None:
            web = ["--web-config", str(tls.web_config)]
            servers["smicast_tls"] = start_smicast(
                interval_s=1.0, extra=web, scheme="https", opener=tls.opener()
            )
            if any(t.server == "node_exporter_tls" for t in targets):
                servers["node_exporter_tls"] = start_node_exporter(
                    extra=[*extra, f"--web.config.file={tls.web_config}"],
                    scheme="https",
                    opener=tls.opener(),
                )
        worker.start()
        child.close()
        print(
            f"scrape: {args.duration} s per cell, {args.runs} run(s), connections {conc}; "
            f"load generator: 1 process, servers and client share this host ({machine_note()})",
            flush=True,
        )
        time.sleep(1.5)  # a couple of frames published, node_exporter warmed
        cells: dict[tuple[str, int], Cell] = {}
        for run in range(args.runs):
            for target in targets:
                for c in conc:
                    r = run_cell(
                        (worker, parent),
                        servers[target.server],
                        target,
                        c,
                        args.duration,
                        args.warmup,
                        tls,
                    )
                    cell = cells.setdefault((target.name, c), Cell())
                    for k, v in r.items():
                        getattr(cell, k).append(v)
                    print(
                        f"run {run + 1}: {target.name:<32} conns {c:>3}: {r['rps']:9.1f} req/s  "
                        f"p50 {r['p50'] * 1e3:7.2f} ms  p99 {r['p99'] * 1e3:7.2f} ms  "
                        f"errors {r['errors']} non-200 {r['non200']}",
                        flush=True,
                    )
        print_table(cells, targets, conc, args.runs)
        for name, srv in servers.items():
            if srv.proc.poll() is not None:
                print(f"warning: {name} exited during the run", flush=True)
    finally:
        with contextlib.suppress(OSError, ValueError):
            parent.send(None)
        worker.join(5)
        if worker.is_alive():
            worker.terminate()
            worker.join(5)
        for srv in servers.values():
            srv.stop()
    return 0


def print_table(
    cells: dict[tuple[str, int], Cell], targets: list[Target], conc: list[int], runs: int
) -> None:
    print(f"\nmedian of {runs} run(s):", flush=True)
    head = (
        f"{'target':<32} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'errors':>6} {'non200':>6} {'srv CPU%':>8} {'cli CPU%':>8} {'body B':>8}"
    )
    print(head)
    print("-" * len(head))
    for t in targets:
        for c in conc:
            cell = cells[(t.name, c)]
            print(
                f"{t.name:<32} {c:>5} {median(cell.rps):>10.1f} {median(cell.p50) * 1e3:>8.2f} "
                f"{median(cell.p99) * 1e3:>8.2f} {median(cell.max) * 1e3:>8.2f} "
                f"{sum(cell.errors):>6} {sum(cell.non200):>6} {median(cell.server_cpu):>8.0f} "
                f"{median(cell.client_cpu):>8.0f} {median(cell.body):>8.0f}"
            )
    names = {t.name for t in targets}
    for suffix in ("", " gzip"):
        a, b = f"smicast /metrics{suffix}", f"node_exporter /metrics{suffix}"
        if a in names and b in names:
            ratios = " ".join(
                f"{c}: {median(cells[(a, c)].rps) / median(cells[(b, c)].rps):.1f}x"
                if median(cells[(b, c)].rps) > 0
                else f"{c}: n/a"
                for c in conc
            )
            label = "gzip, both" if suffix else "plain"
            print(f"req/s ratio smicast /metrics / node_exporter /metrics ({label}) at {ratios}")
    for server in ("smicast", "node_exporter"):
        a, b = f"{server} /metrics tls+auth", f"{server} /metrics"
        if a in names and b in names:
            ratios = " ".join(
                f"{c}: {median(cells[(a, c)].rps) / median(cells[(b, c)].rps):.2f}x"
                if median(cells[(b, c)].rps) > 0
                else f"{c}: n/a"
                for c in conc
            )
            print(f"req/s ratio {server} /metrics TLS+basic auth / plain HTTP at {ratios}")
    print(
        "(srv CPU% and cli CPU% are % of one core; the client shares the host's cores with "
        "the servers)",
        flush=True,
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
