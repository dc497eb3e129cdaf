"""SSE fan-out benchmark: N `/events` subscribers on one `smicast api`, delivery latency and loss.

    python bench/sse_fanout.py --subscribers 10000 [--interval 1] [--duration 20] [--runs 3]
                               [--processes N] [--pin] [--timeline]

Each run starts a fresh `smicast api --simulate nvidia:8` on 127.0.0.1 (its subscriber
cap set to exactly N + 1) and opens the subscribers from separate client processes
(uvloop, raw non-blocking sockets, a minimal HTTP/1.1 chunked + SSE parser, GC off).
Every `event: snapshot` is recorded with its `id:` and two receive times: the kernel's
receive stamp for the read that completed it (SO_TIMESTAMPNS, CLOCK_REALTIME; on
loopback the stamp is taken as the server's send() hands the segment over), and the
time the client process read it (CLOCK_MONOTONIC). Both clocks are shared by every
process on the host.

Latency is measured against the *first receiver* of each frame: the frame's earliest
kernel stamp over all clients stands in for its publish time (the server does not
expose one), and a delivery's latency is its stamp minus that. The publisher writes a
frame to every subscriber in one synchronous pass, so this is where in that pass (and
how late, if the server was preempted) each subscriber got it; it misses only the time
from publish() to the first write. "user-space" latency is the same from the clients'
read times, so it adds the clients' own scheduling on the shared cores. A "probe"
subscriber connects before the others from its own process; the bus keeps subscribers
in a set, so connecting first does not make it first, and its p50 is printed as a check.

Only frames whose first arrival falls in the measurement window (after every
subscriber connected, plus --settle) count. Lost = a frame of the window that a
subscriber never received and no `event: lag` accounted for; frames skipped with a
`lag` are counted separately ("whole run" = unexplained id gaps since connecting).
Tick jitter = |gap between consecutive frames' first arrivals - interval|. Server CPU is
the cpu_times delta over the window (% of one core); run-queue wait is how long the
server's event-loop thread was runnable but not running (/proc/PID/schedstat), which is
what clients and other load on a 2-core host add to the fan-out; RSS is sampled every
0.2 s from the server's start (max). --pin puts the server on the first CPU and the
clients on the others.

--tls runs every run twice, plain HTTP then HTTPS with basic auth (one bcrypt user,
cost 10, from a web-config file), and prints both and their medians side by side. TLS
clients decrypt with ssl.MemoryBIO on the same raw sockets, so the kernel stamps still
mark when the encrypted frame reached each client.

Bounded: connect timeouts, a hard deadline per client process, SIGTERM then SIGKILL for
the server, everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import multiprocessing as mp
import os
import socket
import ssl
import struct
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
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
    mib,
    nofile_hard_limit,
    raise_nofile,
    start_smicast,
    summarize,
)
from _tls import BenchTls, make_bench_tls

MAX_HEAD_BYTES = 16 * 1024
CONNECTS_IN_FLIGHT = 200  # per client process


# =============================================================================
# client processes
# =============================================================================
# Kernel receive timestamps (CLOCK_REALTIME) on each read: SO_TIMESTAMPNS, which the
# socket module does not name. For TCP the stamp is that of the last segment read.
SO_TIMESTAMPNS = 35 if sys.platform == "linux" else 0
_TS_ANC = socket.CMSG_SPACE(16)
_TS = struct.Struct("qq")
RECV_BYTES = 64 * 1024
_SCRATCH = bytearray(RECV_BYTES)  # one receive buffer per client process
_SCRATCH_VIEWS = (memoryview(_SCRATCH),)


class SseClient:
    """One `/events` stream on a raw non-blocking socket: HTTP/1.1 head, chunked, SSE."""

    __slots__ = (
        "bad",
        "buf",
        "bytes",
        "closed_at",
        "head_done",
        "ids",
        "in_body",
        "keepalives",
        "ktimes",
        "loop",
        "sock",
        "sse",
        "times",
        "tls",
    )

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        head_done: asyncio.Future[int],
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO] | None = None,
    ) -> None:
        self.sock = sock
        self.tls = tls
        self.loop = loop
        self.head_done = head_done
        self.buf = b""
        self.sse = b""
        self.in_body = False
        # >= 0: a snapshot's id; < 0: an `event: lag` that dropped -value frames
        self.ids = array("q")
        self.times = array("d")  # user-space receive time, CLOCK_MONOTONIC
        self.ktimes = array("d")  # kernel receive time, CLOCK_REALTIME (nan if unavailable)
        self.keepalives = 0
        self.bytes = 0
        self.closed_at = math.inf
        self.bad = 0

    def on_readable(self) -> None:
        try:
            n, anc, _, _ = self.sock.recvmsg_into(_SCRATCH_VIEWS, _TS_ANC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        now = time.monotonic()
        if not n:
            self.close()
            return
        ktime = math.nan
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = _TS.unpack_from(cdata)
                ktime = sec + nsec * 1e-9
        self.bytes += n
        if self.tls is not None:
            plain = self._decrypt(n)
            if plain is None:
                return
            if self.buf:
                plain = self.buf + plain
                self.buf = b""
            self.feed(plain, len(plain), now, ktime)
            return
        if self.buf:  # the rest of a chunk that came in an earlier read
            data: bytes | bytearray = self.buf + _SCRATCH[:n]
            n = len(data)
            self.buf = b""
        else:
            data = _SCRATCH  # parsed in place: no copy of the ~20 KB frames
        self.feed(data, n, now, ktime)

    def _decrypt(self, n: int) -> bytes | None:
        """The plaintext the n received bytes complete (None: nothing yet, or closed)."""
        assert self.tls is not None
        obj, incoming = self.tls
        incoming.write(_SCRATCH_VIEWS[0][:n])
        parts = []
        while True:
            try:
                part = obj.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:
                self.close()
                return None
            if not part:  # close_notify
                self.close()
                break
            parts.append(part)
        return b"".join(parts) or None

    def close(self) -> None:
        if self.closed_at == math.inf:
            self.closed_at = time.monotonic()
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
        if not self.head_done.done():
            self.head_done.set_result(-1)

    def feed(self, data: bytes | bytearray, n: int, now: float, ktime: float) -> None:
        """Parse data[:n]: the response head once, then HTTP chunks, each holding SSE text."""
        pos = 0
        if not self.in_body:
            end = data.find(b"\r\n\r\n", 0, n)
            if end < 0:
                if n > MAX_HEAD_BYTES:
                    self._fail(-2)
                else:
                    self.buf = bytes(data[:n])
                return
            try:
                status = int(data[9:12])
            except ValueError:
                status = -2
            if status != 200:
                self._fail(status)
                return
            self.in_body = True
            self.head_done.set_result(status)
            pos = end + 4
        while pos < n:
            eol = data.find(b"\r\n", pos, n)
            if eol < 0:
                break
            size = int(bytes(data[pos:eol]).split(b";", 1)[0], 16)
            stop = eol + 2 + size
            if stop + 2 > n:
                break
            if size == 0:  # end of stream
                pos = n
                break
            if self.sse:
                self._events(self.sse + data[eol + 2 : stop], 0, None, now, ktime)
            else:
                self._events(data, eol + 2, stop, now, ktime)
            pos = stop + 2
        if pos < n:
            self.buf = bytes(data[pos:n])

    def _events(
        self, data: bytes | bytearray, start: int, stop: int | None, now: float, ktime: float
    ) -> None:
        """SSE events in data[start:stop], each ending in a blank line; keep a partial one."""
        if stop is None:
            stop = len(data)
        self.sse = b""
        while True:
            end = data.find(b"\n\n", start, stop)
            if end < 0:
                if start < stop:
                    self.sse = bytes(data[start:stop])
                return
            self._event(data, start, end, now, ktime)
            start = end + 2

    def _event(self, data: bytes | bytearray, s: int, e: int, now: float, ktime: float) -> None:
        if data.startswith(b"event: snapshot\nid: ", s, e):
            nl = data.find(b"\n", s + 20, e)
            self.ids.append(int(data[s + 20 : nl]))
        elif data.startswith(b"event: lag", s, e):
            ev = bytes(data[s:e])
            i = ev.find(b'"dropped":')
            j = ev.find(b"}", i)
            dropped = int(ev[i + 10 : j]) if i >= 0 and j > i else 1
            self.ids.append(-max(dropped, 1))
        elif data.startswith(b":", s, e):
            self.keepalives += 1
            return
        else:
            if not data.startswith(b"retry:", s, e):
                self.bad += 1
            return
        self.times.append(now)
        self.ktimes.append(ktime)

    def _fail(self, status: int) -> None:
        if not self.head_done.done():
            self.head_done.set_result(status)
        self.close()

    def result(self) -> tuple[bytes, bytes, bytes, int, int, float, int]:
        return (
            self.ids.tobytes(),
            self.times.tobytes(),
            self.ktimes.tobytes(),
            self.keepalives,
            self.bytes,
            self.closed_at,
            self.bad,
        )


async def _handshake(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, ctx: ssl.SSLContext, request: bytes
) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:
    """TLS over the raw non-blocking socket with memory BIOs; sends the request encrypted."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=HOST)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                await loop.sock_sendall(sock, outgoing.read())
            data = await loop.sock_recv(sock, RECV_BYTES)
            if not data:
                raise ConnectionResetError("closed during the TLS handshake") from None
            incoming.write(data)
    obj.write(request)
    await loop.sock_sendall(sock, outgoing.read())
    return obj, incoming


async def _connect_one(
    loop: asyncio.AbstractEventLoop,
    port: int,
    request: bytes,
    timeout_s: float,
    gate: asyncio.Semaphore,
    tls_ctx: ssl.SSLContext | None = None,
) -> tuple[SseClient | None, int]:
    async with gate:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if SO_TIMESTAMPNS:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        tls = None
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (HOST, port)), timeout_s)
            if tls_ctx is not None:
                tls = await asyncio.wait_for(_handshake(loop, sock, tls_ctx, request), timeout_s)
            else:
                sock.send(request)  # a few hundred bytes into an empty buffer
        except TimeoutError:
            sock.close()
            return None, -3  # connect (or handshake) timeout
        except OSError:  # ssl.SSLError included
            sock.close()
            return None, -4  # refused / reset / handshake failed
        head: asyncio.Future[int] = loop.create_future()
        client = SseClient(sock, loop, head, tls)
        loop.add_reader(sock.fileno(), client.on_readable)
        try:
            status = await asyncio.wait_for(head, timeout_s)
        except TimeoutError:
            status = -5  # no response head in time
        if status != 200:
            client.close()
        return client, status


async def _client_main(
    conn: Connection,
    port: int,
    count: int,
    path: str,
    connect_timeout_s: float,
    hard_s: float,
    tls: tuple[str, str] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    hard_deadline = time.monotonic() + hard_s
    auth = f"Authorization: {tls[1]}\r\n" if tls else ""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n"
        f"Cache-Control: no-cache\r\n{auth}\r\n"
    ).encode()
    tls_ctx = ssl.create_default_context(cafile=tls[0]) if tls else None
    gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)
    results = await asyncio.gather(
        *(_connect_one(loop, port, request, connect_timeout_s, gate, tls_ctx) for _ in range(count))
    )
    statuses: dict[int, int] = {}
    for _, st in results:
        statuses[st] = statuses.get(st, 0) + 1
    clients = [c for c, st in results if c is not None and st == 200]
    gc.collect()
    gc.freeze()
    conn.send(("connected", statuses))

    # wait for the coordinator's window (or give up at the hard deadline)
    got: asyncio.Future[Any] = loop.create_future()

    def on_message() -> None:
        if conn.poll() and not got.done():
            got.set_result(conn.recv())

    loop.add_reader(conn.fileno(), on_message)
    try:
        msg = await asyncio.wait_for(got, max(0.1, hard_deadline - time.monotonic()))
    except TimeoutError:
        msg = ("stop", time.monotonic())
    finally:
        loop.remove_reader(conn.fileno())
        os.set_blocking(conn.fileno(), True)  # the loop made it non-blocking; send() below blocks
    end_at = min(float(msg[1]), hard_deadline)
    await asyncio.sleep(max(0.0, end_at - time.monotonic()))
    for c in clients:
        c.close()
    conn.send(("results", [c.result() for c in clients]))


def client_process(
    conn: Connection,
    port: int,
    count: int,
    path: str,
    connect_timeout_s: float,
    hard_s: float,
    cpus: set[int] | None,
    tls: tuple[str, str] | None = None,  # CA file, Authorization value
) -> None:
    raise_nofile()
    if cpus:
        os.sched_setaffinity(0, cpus)
    gc.disable()  # a client-side GC pause would read as server latency
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_client_main(conn, port, count, path, connect_timeout_s, hard_s, tls))
    conn.close()


# =============================================================================
# coordinator
# =============================================================================
@dataclass
class Sub:
    ids: array[int]
    times: array[float]
    ktimes: array[float]
    keepalives: int
    nbytes: int
    closed_at: float
    bad: int
    probe: bool


def _decode(raw: tuple[bytes, bytes, bytes, int, int, float, int], probe: bool) -> Sub:
    ids, times, ktimes = array("q"), array("d"), array("d")
    ids.frombytes(raw[0])
    times.frombytes(raw[1])
    ktimes.frombytes(raw[2])
    return Sub(ids, times, ktimes, raw[3], raw[4], raw[5], raw[6], probe)


def _ms(v: float) -> str:
    return f"{v * 1e3:.1f}"


@dataclass
class RunResult:
    wanted: int
    connected: int
    refused: dict[int, int]
    frames_expected: int
    recv_mean: float
    recv_min: int
    lost: int
    lag_events: int
    lag_skipped: int
    lost_whole_run: int
    lag_events_whole_run: int
    latency: dict[str, float]  # kernel receive time - first kernel receive time
    latency_user: dict[str, float]  # user-space receive time - first user-space receive time
    spread: dict[str, float]  # per frame: last kernel arrival - first kernel arrival
    probe_latency_p50: float
    jitter: dict[str, float]
    server_cpu: float
    server_wait: float
    clients_cpu: float
    rss_max: int
    rss_window_max: int
    bad_events: int
    frame_bytes: float

    def line(self, label: str) -> str:
        lat, usr, jit = self.latency, self.latency_user, self.jitter
        refused = "" if not self.refused else f" failed {self.refused}"
        return (
            f"{label}: subscribers {self.connected}/{self.wanted}{refused} | frames/client "
            f"expected {self.frames_expected} received mean {self.recv_mean:.2f} min {self.recv_min}"
            f" | lost {self.lost} (whole run {self.lost_whole_run}) | lag events {self.lag_events}"
            f" skipping {self.lag_skipped} (whole run {self.lag_events_whole_run}) | latency ms "
            f"p50 {_ms(lat['p50'])} p99 {_ms(lat['p99'])} max {_ms(lat['max'])} (user-space p50 "
            f"{_ms(usr['p50'])} p99 {_ms(usr['p99'])} max {_ms(usr['max'])}; probe p50 "
            f"{_ms(self.probe_latency_p50)}; fan-out spread p50 {_ms(self.spread['p50'])}) | "
            f"tick jitter ms p50 {_ms(jit['p50'])} p99 {_ms(jit['p99'])} max {_ms(jit['max'])} | "
            f"server CPU {self.server_cpu:.1f}% (run-queue wait {self.server_wait:.1f}%) RSS max "
            f"{mib(self.rss_max):.1f} MiB | "
            f"clients CPU {self.clients_cpu:.0f}%"
        )


def _first_arrivals(subs: list[Sub], times_of: str) -> dict[int, float]:
    first: dict[int, float] = {}
    for s in subs:
        for seq, t in zip(s.ids, getattr(s, times_of), strict=True):
            if seq >= 0 and t < first.get(seq, math.inf):  # nan compares False: skipped
                first[seq] = t
    return first


def analyse(
    subs: list[Sub],
    t0: float,
    t1: float,
    interval_s: float,
    wanted: int,
    refused: dict[int, int],
    server_cpu: float,
    server_wait: float,
    clients_cpu: float,
    rss_max: int,
    rss_window_max: int,
    timeline: bool = False,
) -> RunResult:
    first = _first_arrivals(subs, "times")  # monotonic: picks the window
    kfirst = _first_arrivals(subs, "ktimes")  # kernel stamps: latency and jitter
    window = sorted(seq for seq, t in first.items() if t0 <= t <= t1)
    wset = set(window)
    latencies: list[float] = []
    user_lat: list[float] = []
    probe_lat: list[float] = []
    klast: dict[int, float] = {}
    counts: dict[int, int] = {}
    lost = lag_events = lag_skipped = lost_all = lag_all = bad = 0
    received: list[int] = []
    for s in subs:
        bad += s.bad
        got: set[int] = set()
        deliberate: set[int] = set()
        prev = -1
        pending = 0
        for seq, t, kt in zip(s.ids, s.times, s.ktimes, strict=True):
            if seq < 0:
                pending += -seq
                lag_all += 1
                if t0 <= t <= t1 + interval_s:
                    lag_events += 1
                continue
            if prev >= 0 and seq > prev + 1:
                gap = range(prev + 1, seq)
                if pending:
                    deliberate.update(gap)
                else:
                    lost_all += len(gap)
            pending = 0
            prev = max(prev, seq)
            if seq not in wset:
                continue
            got.add(seq)
            counts[seq] = counts.get(seq, 0) + 1
            user_lat.append(t - first[seq])
            if seq in kfirst and kt == kt:
                lat = kt - kfirst[seq]
                latencies.append(lat)
                if s.probe:
                    probe_lat.append(lat)
                if kt > klast.get(seq, -math.inf):
                    klast[seq] = kt
        if s.probe:
            continue
        received.append(len(got))
        missing = wset - got
        skipped = missing & deliberate
        lag_skipped += len(skipped)
        lost += len(missing) - len(skipped)
    ref = kfirst if all(seq in kfirst for seq in window) else first
    jitter = [abs(ref[seq] - ref[seq - 1] - interval_s) for seq in window if (seq - 1) in ref]
    spread = [klast[seq] - kfirst[seq] for seq in window if seq in klast]
    if timeline:
        print("  frame   first(s)  gap(ms)  spread(ms)  receivers", flush=True)
        for seq in window:
            gap_ms = (ref[seq] - ref[seq - 1]) * 1e3 if (seq - 1) in ref else math.nan
            spr = (klast.get(seq, math.nan) - kfirst.get(seq, math.nan)) * 1e3
            print(
                f"  {seq:5d} {first[seq] - t0:9.3f} {gap_ms:8.1f} {spr:10.1f}  {counts.get(seq, 0)}",
                flush=True,
            )
    total_bytes = sum(s.nbytes for s in subs if not s.probe)
    total_frames = sum(len(s.ids) for s in subs if not s.probe)
    return RunResult(
        wanted=wanted,
        connected=sum(1 for s in subs if not s.probe),
        refused=refused,
        frames_expected=len(window),
        recv_mean=sum(received) / len(received) if received else 0.0,
        recv_min=min(received) if received else 0,
        lost=lost,
        lag_events=lag_events,
        lag_skipped=lag_skipped,
        lost_whole_run=lost_all,
        lag_events_whole_run=lag_all,
        latency=summarize(latencies),
        latency_user=summarize(user_lat),
        spread=summarize(spread),
        probe_latency_p50=summarize(probe_lat)["p50"],
        jitter=summarize(jitter),
        server_cpu=server_cpu,
        server_wait=server_wait,
        clients_cpu=clients_cpu,
        rss_max=rss_max,
        rss_window_max=rss_window_max,
        bad_events=bad,
        frame_bytes=total_bytes / total_frames if total_frames else math.nan,
    )


def _recv(conn: Connection, deadline: float, what: str) -> Any:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not conn.poll(remaining):
        raise TimeoutError(f"a client process did not report {what} in time")
    return conn.recv()


def one_run(
    args: argparse.Namespace,
    run_no: int,
    around: Callable[[ServerProcess], contextlib.AbstractContextManager[object]] | None = None,
    tls: BenchTls | None = None,
) -> RunResult:
    """One run on a fresh server; `around(server)` is entered before the subscribers connect
    and left before the server stops (bench/slowloris.py puts its attack there)."""
    ctx = mp.get_context("spawn")
    n = args.subscribers
    procs_n = args.processes or max(1, min(4, math.ceil(n / 2500)))
    shares = [n // procs_n + (1 if i < n % procs_n else 0) for i in range(procs_n)]
    connect_timeout_s = args.connect_timeout
    hard_s = connect_timeout_s + args.settle + args.duration + 60 + 10 * args.interval
    path = "/events" + (f"?include={args.include}" if args.include else "")

    server = start_smicast(
        interval_s=args.interval,
        processes=args.server_processes,
        # exactly room for the subscribers and the probe
        env={"SMICAST_API_MAX_SSE_SUBSCRIBERS": str(n + 1)},
        extra=(["--web-config", str(tls.web_config)] if tls else [])
        + list(getattr(args, "server_extra", ())),  # bench/slowloris.py's server options
        scheme="https" if tls else "http",
        opener=tls.opener() if tls else None,
    )
    client_tls = (str(tls.ca), tls.authorization) if tls else None
    sampler = ProcSampler(server.pid).start()
    client_cpus: set[int] | None = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            os.sched_setaffinity(server.pid, {cpus[0]})  # its collection threads inherit it
            client_cpus = set(cpus[1:])
    workers: list[tuple[mp.process.BaseProcess, Connection, bool]] = []
    extra = contextlib.ExitStack()
    try:
        if around is not None:
            extra.enter_context(around(server))
        setup_deadline = time.monotonic() + connect_timeout_s + 30

        def spawn(count: int, probe: bool) -> None:
            parent, child = ctx.Pipe()
            p = ctx.Process(
                target=client_process,
                args=(
                    child,
                    server.port,
                    count,
                    path,
                    connect_timeout_s,
                    hard_s,
                    client_cpus,
                    client_tls,
                ),
                daemon=True,
            )
            p.start()
            child.close()
            workers.append((p, parent, probe))

        spawn(1, True)  # the probe, connected before everyone else
        msg = _recv(workers[0][1], setup_deadline, "the probe's connection")
        if msg[1].get(200) != 1:
            raise RuntimeError(f"probe could not subscribe: {msg[1]}")
        for share in shares:
            spawn(share, False)
        refused: dict[int, int] = {}
        for _, conn, _probe in workers[1:]:
            _, statuses = _recv(conn, setup_deadline, "its connections")
            for st, k in statuses.items():
                if st != 200:
                    refused[st] = refused.get(st, 0) + k
        connected_at = time.monotonic()
        t0 = connected_at + args.settle
        t1 = t0 + args.duration
        t_end = t1 + max(2.0, 2 * args.interval)
        for _, conn, _ in workers:
            conn.send(("stop", t_end))
        client_pids = [p.pid for p, _, _ in workers if p.pid is not None]
        time.sleep(max(0.0, t0 - time.monotonic()))
        window = sampler.window()
        clients_cpu0 = cpu_seconds_of(client_pids)
        time.sleep(max(0.0, t1 - time.monotonic()))
        server_cpu = window.cpu_percent()
        server_wait = window.wait_percent()
        clients_cpu = 100.0 * (cpu_seconds_of(client_pids) - clients_cpu0) / (t1 - t0)
        rss_window_max = sampler.window_rss_max()
        subs: list[Sub] = []
        results_deadline = t_end + 60
        for _, conn, probe in workers:
            _, raw = _recv(conn, results_deadline, "its results")
            subs.extend(_decode(r, probe) for r in raw)
        sampler.stop()
        res = analyse(
            subs,
            t0,
            t1,
            args.interval,
            n,
            refused,
            server_cpu,
            server_wait,
            clients_cpu,
            sampler.max_rss,
            rss_window_max,
            timeline=args.timeline,
        )
        if server.proc.poll() is not None:
            raise RuntimeError("the server exited during the run:\n" + "\n".join(server.log_tail))
        return res
    finally:
        sampler.stop()
        for p, conn, _ in workers:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)
            conn.close()
        extra.close()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--subscribers", type=int, required=True, help="SSE subscribers to open")
    ap.add_argument("--interval", type=float, default=1.0, help="server --interval (s)")
    ap.add_argument("--duration", type=float, default=20.0, help="measurement window (s)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--processes",
        type=int,
        default=0,
        help="client processes (default: one per 2,500 subscribers, 1..4)",
    )
    ap.add_argument(
        "--settle", type=float, default=2.0, help="wait after the last connect before measuring (s)"
    )
    ap.add_argument("--connect-timeout", type=float, default=60.0, help="per-connection bound (s)")
    ap.add_argument("--include", default="", help="?include= for every subscriber")
    ap.add_argument(
        "--server-processes", action="store_true", help="start the server with --processes"
    )
    ap.add_argument("--timeline", action="store_true", help="print every frame of the window")
    ap.add_argument(
        "--tls",
        action="store_true",
        help="each run twice: plain HTTP, then HTTPS with basic auth; both printed side by side",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="pin the server's event loop to the first CPU and the clients to the others",
    )
    args = ap.parse_args(argv)
    if args.subscribers < 1 or args.runs < 1 or args.duration <= 0 or args.interval <= 0:
        ap.error("--subscribers, --runs, --duration and --interval must be positive")
    if args.duration > 600 or args.runs > 20 or args.subscribers > 50_000:
        ap.error("bounded: --duration <= 600, --runs <= 20, --subscribers <= 50000")
    need = args.subscribers + 64
    if nofile_hard_limit() < need:
        ap.error(f"RLIMIT_NOFILE hard limit {nofile_hard_limit()} is below the {need} needed")
    raise_nofile()

    print(
        f"sse_fanout: {args.subscribers} subscribers, interval {args.interval} s, window "
        f"{args.duration} s, {args.runs} run(s); server and clients share this host "
        f"({machine_note()})",
        flush=True,
    )
    print(
        "latency = a delivery's kernel receive stamp (SO_TIMESTAMPNS) - the earliest stamp "
        "of that frame over all clients; user-space = the same with the client's read time "
        "(CLOCK_MONOTONIC), which adds client scheduling on the shared cores",
        flush=True,
    )
    tls = make_bench_tls() if args.tls else None
    modes = [("http", None), ("https+auth", tls)] if tls else [("", None)]
    results: dict[str, list[RunResult]] = {label: [] for label, _ in modes}
    for i in range(args.runs):
        for label, mode_tls in modes:
            res = one_run(args, i + 1, tls=mode_tls)
            results[label].append(res)
            print(res.line(f"run {i + 1}{' ' + label if label else ''}"), flush=True)
            if res.bad_events:
                print(f"  ({res.bad_events} unparsed SSE events)", flush=True)
    for label, runs in results.items():
        print((f"{label}: " if label else "") + median_line(runs), flush=True)
    if tls is not None:
        print(side_by_side(args.subscribers, results), flush=True)
    return 0


def side_by_side(subscribers: int, results: dict[str, list[RunResult]]) -> str:
    """The figures the TLS question needs, plain and TLS in adjacent rows."""
    head = f"{'subscribers':>11} {'mode':<11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
    head += f"{'lost':>5} {'lag ev':>6} {'srv CPU%':>8} {'RSS MiB':>8}"
    lines = [head, "-" * len(head)]
    for label, runs in results.items():

        def m(f: Any, runs: list[RunResult] = runs) -> float:
            return median(f(r) for r in runs)

        lines.append(
            f"{subscribers:>11} {label:<11} {m(lambda r: r.latency['p50']) * 1e3:>8.1f} "
            f"{m(lambda r: r.latency['p99']) * 1e3:>8.1f} "
            f"{m(lambda r: r.latency['max']) * 1e3:>8.1f} "
            f"{sum(r.lost for r in runs):>5} {sum(r.lag_events for r in runs):>6} "
            f"{m(lambda r: r.server_cpu):>8.1f} {mib(m(lambda r: r.rss_max)):>8.1f}"
        )
    return "\n".join(lines)


def median_line(results: list[RunResult]) -> str:
    def m(f: Any) -> float:
        return median(f(r) for r in results)

    def dist(attr: str) -> str:
        return " ".join(
            f"{k} {_ms(m(lambda r, k=k: getattr(r, attr)[k]))}" for k in ("p50", "p99", "max")
        )

    return (
        f"median of {len(results)}: subscribers {m(lambda r: r.connected):.0f}/{results[0].wanted}"
        f" | frames/client expected {m(lambda r: r.frames_expected):.0f} received mean "
        f"{m(lambda r: r.recv_mean):.2f} | lost {m(lambda r: r.lost):.0f} (sum over runs "
        f"{sum(r.lost for r in results)}; whole runs {sum(r.lost_whole_run for r in results)}) | "
        f"lag events {m(lambda r: r.lag_events):.0f} (sum {sum(r.lag_events for r in results)}) | "
        f"latency ms {dist('latency')} (user-space {dist('latency_user')}) | "
        f"tick jitter ms {dist('jitter')} | server CPU {m(lambda r: r.server_cpu):.1f}% (run-queue "
        f"wait {m(lambda r: r.server_wait):.1f}%) RSS max "
        f"{mib(m(lambda r: r.rss_max)):.1f} MiB | clients CPU {m(lambda r: r.clients_cpu):.0f}%"
        f" | SSE bytes/frame {m(lambda r: r.frame_bytes):.0f}"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
