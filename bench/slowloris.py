"""Slowloris benchmark: scrapes and SSE fan-out with and without a crowd of half-open connections.

    python bench/slowloris.py [--half-open 20000] [--subscribers 10000] [--interval 1]
                              [--duration 10] [--runs 1] [--reconnect-rate 2500] [--pin]

Each run is two fan-out runs of bench/sse_fanout.py on a fresh `smicast api --simulate
nvidia:8` (127.0.0.1): one as is, one with attacker processes holding --half-open
connections that each sent half a request head (`GET /metrics HTTP/1.1` and a Host line,
never the blank line). An attacker reconnects every connection the server closes (head
deadline, eviction at the connection ceiling), at most --reconnect-rate per second in
all, as a real slowloris would; it opens its crowd before the subscribers connect.

During both, a scraper does what Prometheus does, every 0.25 s and alternately: `GET
/metrics` (gzip) and `GET /-/ready`, each on a new connection and in its own thread (a
slow answer does not thin the samples), timed from connect() to the last byte (failures
and timeouts of 5 s counted). Only scrapes started once every subscriber is connected
(plus --settle) and within --duration count. Printed, with and without the crowd:
/metrics and /-/ready latency, the fan-out latency p50/p99/max (sse_fanout's kernel
receive stamps), frames lost, server CPU, and the server's own connection counters
(`smicast_http_connections*`).

RLIMIT_NOFILE is raised to the hard limit here and in every child; the crowd is split
over processes so each stays under it. Bounded: every child has a hard deadline, the
server is stopped with SIGTERM then SIGKILL, everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http.client
import math
import multiprocessing as mp
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    HOST,
    ServerProcess,
    machine_note,
    median,
    nofile_hard_limit,
    raise_nofile,
    summarize,
)
from sse_fanout import RunResult, one_run

HALF_HEAD = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n"
CONNECTS_IN_FLIGHT = 256  # per attacker process
SCRAPE_EVERY_S = 0.25
SCRAPE_TIMEOUT_S = 5.0


# =============================================================================
# attacker processes
# =============================================================================
class _Half(asyncio.Protocol):
    def __init__(self, crowd: _Crowd) -> None:
        self.crowd = crowd

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(HALF_HEAD)  # uvloop's is not a subclass
        self.crowd.held += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.crowd.held -= 1
        self.crowd.closed += 1


@dataclass
class _Crowd:
    held: int = 0
    connecting: int = 0
    opened: int = 0
    closed: int = 0
    failed: int = 0


async def _attack(conn: Connection, port: int, count: int, rate: float, hard_s: float) -> None:
    loop = asyncio.get_running_loop()
    crowd = _Crowd()
    deadline = time.monotonic() + hard_s
    budget = 0.0
    tick_s = 0.02

    async def one() -> None:
        crowd.connecting += 1
        try:
            await loop.create_connection(lambda: _Half(crowd), HOST, port)
            crowd.opened += 1
        except OSError:
            crowd.failed += 1
        finally:
            crowd.connecting -= 1

    tasks: set[asyncio.Task[None]] = set()
    reported = time.monotonic()
    while time.monotonic() < deadline:
        if conn.poll() and conn.recv() == "stop":
            break
        budget = min(budget + rate * tick_s, float(CONNECTS_IN_FLIGHT))
        missing = count - crowd.held - crowd.connecting
        room = CONNECTS_IN_FLIGHT - crowd.connecting
        n = min(missing, room, int(budget))
        for _ in range(max(0, n)):
            t = asyncio.ensure_future(one())
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        budget -= max(0, n)
        now = time.monotonic()
        if now - reported >= 0.5:
            reported = now
            conn.send(("held", crowd.held, crowd.opened, crowd.closed, crowd.failed))
        await asyncio.sleep(tick_s)
    conn.send(("done", crowd.held, crowd.opened, crowd.closed, crowd.failed))


def attacker_process(conn: Connection, port: int, count: int, rate: float, hard_s: float) -> None:
    raise_nofile()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_attack(conn, port, count, rate, hard_s))
    conn.close()


# =============================================================================
# the scraper (Prometheus's part)
# =============================================================================
_SUBS = re.compile(rb"^smicast_sse_subscribers (\d+)$", re.M)
_CONN = re.compile(
    rb"^(smicast_http_connections(?:_closed_total)?\{[^}]*\}|smicast_http_connections_max) (\d+)$",
    re.M,
)


@dataclass
class Sample:
    started: float  # monotonic
    path: str
    took_s: float | None  # None: failed or timed out
    subscribers: int | None = None  # from /metrics
    counters: dict[str, int] = field(default_factory=dict)


@dataclass
class Scrapes:
    metrics: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    failures: int = 0
    window_found: bool = False
    counters_start: dict[str, int] = field(default_factory=dict)
    counters_end: dict[str, int] = field(default_factory=dict)


def _fetch(port: int, path: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=SCRAPE_TIMEOUT_S)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError(f"{path}: status {resp.status}")
        if resp.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    finally:
        conn.close()
    return time.perf_counter() - t0, body


class Scraper:
    """Starts a scrape every SCRAPE_EVERY_S (alternately /metrics and /-/ready), each in its
    own thread, so a slow answer never thins the samples. Counted: the scrapes started in
    the window that opens `settle_s` after a /metrics answer shows `want_subscribers`."""

    def __init__(self, port: int, want_subscribers: int, settle_s: float, window_s: float) -> None:
        self.port = port
        self.want = want_subscribers
        self.settle_s = settle_s
        self.window_s = window_s
        self.samples: list[Sample] = []
        self.result = Scrapes()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=32)

    def _one(self, path: str) -> None:
        started = time.monotonic()
        sample = Sample(started, path, None)
        try:
            sample.took_s, body = _fetch(self.port, path)
        except (OSError, http.client.HTTPException):
            body = b""
        if path == "/metrics" and body:
            m = _SUBS.search(body)
            sample.subscribers = int(m.group(1)) if m else None
            sample.counters = {k.decode(): int(v) for k, v in _CONN.findall(body)}
        with self._lock:
            self.samples.append(sample)

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(SCRAPE_EVERY_S):
            self._pool.submit(self._one, "/metrics" if i % 2 == 0 else "/-/ready")
            i += 1

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._summarize()

    def _summarize(self) -> None:
        samples = sorted(self.samples, key=lambda x: x.started)
        reached = next(
            (
                x.started
                for x in samples
                if x.subscribers is not None and x.subscribers >= self.want
            ),
            None,
        )
        res = self.result
        if reached is None:  # the window never opened: everything seen, said so
            t0, t1 = -math.inf, math.inf
        else:
            res.window_found = True
            t0 = reached + self.settle_s
            t1 = t0 + self.window_s
        for x in samples:
            if not t0 <= x.started <= t1:
                continue
            if x.took_s is None:
                res.failures += 1
            else:
                (res.metrics if x.path == "/metrics" else res.ready).append(x.took_s)
            if x.counters:
                res.counters_start = res.counters_start or x.counters
                res.counters_end = x.counters


# =============================================================================
# runs
# =============================================================================
@dataclass
class Crowd:
    wanted: int
    held_mean: float = math.nan
    opened: int = 0
    closed: int = 0
    failed: int = 0


@contextlib.contextmanager
def crowd_of(
    server: ServerProcess,
    count: int,
    procs_n: int,
    rate: float,
    hard_s: float,
    out: Crowd,
    cpus: set[int] | None = None,
) -> Iterator[None]:
    ctx = mp.get_context("spawn")
    shares = [count // procs_n + (1 if i < count % procs_n else 0) for i in range(procs_n)]
    workers: list[tuple[mp.process.BaseProcess, Connection]] = []
    last: dict[int, tuple[int, int, int, int]] = {}
    held_samples: list[int] = []

    def pump(timeout_s: float) -> None:
        for idx, (_, conn) in enumerate(workers):
            while conn.poll(timeout_s):
                timeout_s = 0
                msg = conn.recv()
                last[idx] = msg[1:]
                if msg[0] == "done":
                    break

    try:
        for share in shares:
            parent, child = ctx.Pipe()
            p = ctx.Process(
                target=attacker_process,
                args=(child, server.port, share, rate / procs_n, hard_s),
                daemon=True,
            )
            p.start()
            if cpus and p.pid is not None:
                os.sched_setaffinity(p.pid, cpus)
            child.close()
            workers.append((p, parent))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the whole crowd has connected once
            pump(0.5)
            if len(last) == len(workers) and sum(v[1] for v in last.values()) >= count:
                break
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.5):
                pump(0)
                held_samples.append(sum(v[0] for v in last.values()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop_sampling.set()
            sampler.join(2)
    finally:
        for _, conn in workers:
            with contextlib.suppress(OSError):
                conn.send("stop")
        pump(2.0)
        for p, conn in workers:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)
            conn.close()
        out.held_mean = sum(held_samples) / len(held_samples) if held_samples else math.nan
        out.opened = sum(v[1] for v in last.values())
        out.closed = sum(v[2] for v in last.values())
        out.failed = sum(v[3] for v in last.values())


@dataclass
class Outcome:
    fanout: RunResult | str  # a string: why the fan-out run failed
    scrapes: Scrapes
    crowd: Crowd | None


def run_pair(args: argparse.Namespace, run_no: int) -> tuple[Outcome, Outcome]:
    return _one(args, run_no, 0), _one(args, run_no, args.half_open)


def _one(args: argparse.Namespace, run_no: int, half_open: int) -> Outcome:
    scrapes: list[Scrapes] = []
    crowd = Crowd(half_open) if half_open else None

    @contextlib.contextmanager
    def around(server: ServerProcess) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            if crowd is not None:
                hard_s = args.connect_timeout + args.settle + args.duration + 120
                cpus = sorted(os.sched_getaffinity(0))
                pin = set(cpus[1:]) if args.pin and len(cpus) >= 2 else None
                stack.enter_context(
                    crowd_of(
                        server,
                        half_open,
                        args.attack_processes,
                        args.reconnect_rate,
                        hard_s,
                        crowd,
                        pin,
                    )
                )
            scraper = stack.enter_context(
                Scraper(server.port, args.subscribers + 1, args.settle, args.duration)
            )
            scrapes.append(scraper.result)
            yield

    try:
        res: RunResult | str = one_run(args, run_no, around=around)
    except (TimeoutError, RuntimeError) as exc:  # reported, not fatal: the scrapes still count
        res = str(exc)
    return Outcome(res, scrapes[0], crowd)


def _ms(v: float) -> str:
    return f"{v * 1e3:.1f}"


def _dist(values: list[float]) -> str:
    s = summarize(values)
    return f"p50 {_ms(s['p50'])} p99 {_ms(s['p99'])} max {_ms(s['max'])} (n {int(s['n'])})"


def _p99(f: RunResult | str) -> float:
    return math.nan if isinstance(f, str) else f.latency["p99"]


def line(label: str, o: Outcome) -> str:
    f, sc = o.fanout, o.scrapes
    scrapes = (
        f"{'' if sc.window_found else '(whole run) '}/metrics ms {_dist(sc.metrics)} | "
        f"/-/ready ms {_dist(sc.ready)} | scrape failures {sc.failures}"
    )
    if isinstance(f, str):
        fanout = f"fan-out run failed: {f}"
    else:
        fanout = (
            f"fan-out latency ms p50 {_ms(f.latency['p50'])} p99 {_ms(f.latency['p99'])} "
            f"max {_ms(f.latency['max'])} | subscribers {f.connected}/{f.wanted} lost {f.lost} "
            f"lag events {f.lag_events} | server CPU {f.server_cpu:.1f}% (run-queue wait "
            f"{f.server_wait:.1f}%) RSS max {f.rss_max / 2**20:.0f} MiB"
        )
    out = f"{label}: {scrapes} | {fanout}"
    if o.crowd is not None:
        c = o.crowd
        end, start = sc.counters_end, sc.counters_start

        def delta(reason: str) -> int:
            key = f'smicast_http_connections_closed_total{{reason="{reason}"}}'
            return end.get(key, 0) - start.get(key, 0)

        fresh = end.get('smicast_http_connections{state="fresh"}', -1)
        out += (
            f"\n  crowd: {c.wanted} wanted, held by the attacker mean {c.held_mean:.0f}, opened "
            f"{c.opened} closed by the server {c.closed} connect failures {c.failed} | server: "
            f"ceiling {end.get('smicast_http_connections_max', -1)}, half-open held at the "
            f"end {fresh}, in the window closed: head deadline {delta('head_timeout')} evicted "
            f"{delta('evicted')} rejected {delta('rejected')}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--half-open", type=int, default=20_000, help="half-open connections")
    ap.add_argument("--subscribers", type=int, default=10_000, help="SSE subscribers")
    ap.add_argument("--attack-processes", type=int, default=0, help="default: one per 9,000")
    ap.add_argument(
        "--reconnect-rate",
        type=float,
        default=2500.0,
        help="attacker connects per second in all (default 2500: what keeps 20,000 held "
        "against a 10 s head deadline)",
    )
    ap.add_argument("--interval", type=float, default=1.0, help="server --interval (s)")
    ap.add_argument("--duration", type=float, default=10.0, help="measurement window (s)")
    ap.add_argument("--settle", type=float, default=2.0, help="wait after connecting (s)")
    ap.add_argument("--runs", type=int, default=1, help="pairs of runs (without, with)")
    ap.add_argument("--connect-timeout", type=float, default=60.0, help="per-connection bound")
    ap.add_argument(
        "--hold",
        action="store_true",
        help="give the server a 300 s head deadline, so the crowd is held rather than "
        "replaced every 10 s (the ceiling then decides what goes)",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="the server on the first CPU; subscribers and attackers on the others",
    )
    args = ap.parse_args(argv)
    if not (0 < args.half_open <= 100_000 and 0 < args.subscribers <= 50_000):
        ap.error("bounded: --half-open 1..100000, --subscribers 1..50000")
    if not (0 < args.duration <= 300 and 1 <= args.runs <= 10 and args.interval > 0):
        ap.error("bounded: --duration 0..300, --runs 1..10, --interval > 0")
    if not 0 < args.reconnect_rate <= 50_000:
        ap.error("bounded: --reconnect-rate 0..50000")
    args.attack_processes = args.attack_processes or max(1, math.ceil(args.half_open / 9000))
    # sse_fanout's one_run reads these too
    args.processes, args.include, args.server_processes = 0, "", False
    args.timeline = False
    args.server_extra = ["--head-timeout", "300"] if args.hold else []
    per_proc = math.ceil(args.half_open / args.attack_processes) + 64
    if nofile_hard_limit() < max(per_proc, args.subscribers + 64):
        ap.error(f"RLIMIT_NOFILE hard limit {nofile_hard_limit()} is too low for this run")
    raise_nofile()

    print(
        f"slowloris: {args.half_open} half-open connections from {args.attack_processes} "
        f"process(es) (reconnecting at most {args.reconnect_rate:.0f}/s), {args.subscribers} SSE "
        f"subscribers, server head deadline {'300 s (--hold)' if args.hold else '10 s'}, "
        f"interval {args.interval} s, window {args.duration} s, {args.runs} pair(s) "
        f"of runs; server, attackers and clients share this host ({machine_note()}; "
        f"RLIMIT_NOFILE {raise_nofile()})",
        flush=True,
    )
    pairs = []
    for i in range(args.runs):
        without, with_crowd = run_pair(args, i + 1)
        pairs.append((without, with_crowd))
        print(line(f"run {i + 1} without half-open", without), flush=True)
        print(line(f"run {i + 1} with {args.half_open} half-open", with_crowd), flush=True)
    if args.runs > 1:
        for k, label in ((0, "without half-open"), (1, f"with {args.half_open} half-open")):
            outs = [p[k] for p in pairs]
            print(
                f"median of {len(outs)} {label}: /metrics p99 ms "
                f"{_ms(median(summarize(o.scrapes.metrics)['p99'] for o in outs))} | /-/ready "
                f"p99 ms {_ms(median(summarize(o.scrapes.ready)['p99'] for o in outs))} | "
                f"fan-out p99 ms {_ms(median(_p99(o.fanout) for o in outs))}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
