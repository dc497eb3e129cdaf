"""Connections that do not behave: head deadline, idle timeout, the ceiling (real server)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
from collections.abc import Iterator

import pytest

from smicast.api.connections import (
    MAX_DEFAULT_CONNECTIONS,
    MAX_EARLY_BYTES,
    ConnectionGuard,
    ConnectionLimits,
    GuardedProtocol,
    State,
    descriptor_ceiling,
)
from smicast.api.state import ApiState
from smicast.include import Section
from tests.api_harness import RunningServer, SseReader, raw_request, running
from tests.fakes import make_snapshot

HALF_HEAD = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: never complete


def manual_state() -> ApiState:
    state = ApiState(interval_s=1.0, sections=frozenset(Section), collector=None)
    return state


def guard_of(server: RunningServer) -> ConnectionGuard:
    guard = server._server.guard
    assert guard is not None
    return guard


def half_open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(HALF_HEAD)
    return sock


def closed_by_server(sock: socket.socket, timeout_s: float = 5.0) -> bool:
    """True when the server closes `sock` (EOF or reset) within `timeout_s`."""
    sock.settimeout(timeout_s)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.setblocking(True)
    return data != b""


def ready_status(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/-/ready")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    try:
        yield held
    finally:
        for s in held:
            s.close()


def test_head_deadline_closes_a_half_request_even_while_it_trickles() -> None:
    limits = ConnectionLimits(head_timeout_s=0.3, idle_timeout_s=30)
    with running(manual_state(), limits=limits) as server, sockets() as held:
        held.append(half_open(server.port))
        trickle = half_open(server.port)
        held.append(trickle)
        assert closed_by_server(held[0])
        with contextlib.suppress(OSError):  # a byte per 0.1 s does not buy more time
            for _ in range(20):
                trickle.sendall(b"X")
                if closed_by_server(trickle, 0.1):
                    break
        assert closed_by_server(trickle, 0.1) or not still_open(trickle)
        assert guard_of(server).closed["head_timeout"] >= 2
        web_server = server._server.web_server
        assert web_server is not None  # aiohttp let go of every connection the guard closed
        server.wait_for(lambda: len(web_server.connections) == 0)
        assert ready_status(server.port) == 503  # the server itself goes on answering


def test_idle_keep_alive_connection_is_closed_and_a_started_head_gets_the_head_deadline() -> None:
    limits = ConnectionLimits(head_timeout_s=30, idle_timeout_s=0.3)
    with running(manual_state(), limits=limits) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/-/ready")
        resp = conn.getresponse()
        resp.read()
        assert resp.getheader("Connection", "keep-alive").lower() != "close"
        assert conn.sock is not None and closed_by_server(conn.sock)
        conn.close()

    limits = ConnectionLimits(head_timeout_s=0.3, idle_timeout_s=30)
    with running(manual_state(), limits=limits) as server:
        sock = raw_request(server.port, "/-/ready")
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 503")
        sock.sendall(HALF_HEAD)  # the next request on the kept-alive connection stalls
        assert closed_by_server(sock)
        sock.close()


def test_ceiling_evicts_the_oldest_half_open_first_never_an_sse_stream() -> None:
    limits = ConnectionLimits(head_timeout_s=60, idle_timeout_s=60, max_connections=6)
    with running(manual_state(), limits=limits) as server, sockets() as held:
        streams = [SseReader(raw_request(server.port, "/events")) for _ in range(2)]
        held.extend(s.sock for s in streams)
        assert all(s.status == 200 for s in streams)
        halves = [half_open(server.port) for _ in range(4)]
        held.extend(halves)
        server.wait_for(lambda: guard_of(server).count == 6)

        assert ready_status(server.port) == 503  # answered (not ready yet), at the ceiling
        assert closed_by_server(halves[0])
        assert all(still_open(h) for h in halves[1:])
        assert guard_of(server).closed["evicted"] == 1

        # one slot is free again (the answered client left); newcomers push out the oldest
        newer = [half_open(server.port) for _ in range(4)]
        held.extend(newer)
        assert all(closed_by_server(h) for h in halves)
        assert all(still_open(h) for h in newer)
        assert guard_of(server).closed["evicted"] == 4
        web_server = server._server.web_server
        assert web_server is not None
        # aiohttp holds the two streams only: half-open connections never reach it
        server.wait_for(lambda: len(web_server.connections) == 2)
        server.publish(make_snapshot())
        for stream in streams:
            assert stream.events(1)[0]["id"] == "1"


def test_a_ceiling_full_of_streams_answers_503_to_a_newcomer() -> None:
    limits = ConnectionLimits(max_connections=2)
    with running(manual_state(), limits=limits) as server, sockets() as held:
        streams = [SseReader(raw_request(server.port, "/events")) for _ in range(2)]
        held.extend(s.sock for s in streams)
        newcomer = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        held.append(newcomer)
        assert newcomer.recv(4096).startswith(b"HTTP/1.1 503")
        assert guard_of(server).closed["rejected"] == 1
        server.publish(make_snapshot())
        assert all(s.events(1)[0]["id"] == "1" for s in streams)


def test_ready_answers_while_many_half_open_connections_hold_the_ceiling() -> None:
    limits = ConnectionLimits(head_timeout_s=60, idle_timeout_s=60, max_connections=16)
    with running(manual_state(), limits=limits) as server, sockets() as held:
        server.publish(make_snapshot())
        held.extend(half_open(server.port) for _ in range(48))
        server.wait_for(lambda: guard_of(server).count == 16)
        assert ready_status(server.port) == 200
        counts = server.call(guard_of(server).counts)
        assert sum(counts.values()) <= 16
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        assert "smicast_http_connections_max 16\n" in text
        evicted = next(
            line for line in text.splitlines() if 'closed_total{reason="evicted"}' in line
        )
        assert int(evicted.split()[-1]) >= 48 - 16


def test_limits_resolve_from_the_descriptor_limit() -> None:
    assert descriptor_ceiling(20_000) == 20_000 - 1024
    assert descriptor_ceiling(1024) == 1024 - 102
    assert descriptor_ceiling(10) == 16
    assert ConnectionLimits().resolve(soft_limit=20_000).max_connections == 18_976
    big = ConnectionLimits().resolve(soft_limit=1 << 20).max_connections
    assert big == MAX_DEFAULT_CONNECTIONS
    assert ConnectionLimits(max_connections=500).resolve(soft_limit=1024).max_connections == 500
    assert ConnectionLimits(max_connections=5000).resolve(soft_limit=1024).max_connections == 922


@pytest.mark.parametrize("limit", [0, 1])
def test_guard_requires_a_resolved_ceiling(limit: int) -> None:
    if limit:
        assert ConnectionGuard(ConnectionLimits(max_connections=limit)).ceiling == 1
    else:
        with pytest.raises(AssertionError):
            ConnectionGuard(ConnectionLimits())


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--head-timeout", "0"),
        ("--head-timeout", "301"),
        ("--idle-timeout", "nan"),
        ("--max-connections", "15"),
        ("--max-connections", "99999999999999999999"),
    ],
)
def test_connection_options_are_bounded(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from smicast.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["api", option, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert f"argument {option}: expected" in err


def test_guard_under_uvloop() -> None:
    """`smicast api` runs on uvloop when it is installed; its transports are not asyncio's."""
    uvloop = pytest.importorskip("uvloop")
    limits = ConnectionLimits(head_timeout_s=0.3, idle_timeout_s=30, max_connections=4)
    with (
        running(manual_state(), limits=limits, loop_factory=uvloop.new_event_loop) as server,
        sockets() as held,
    ):
        stream = SseReader(raw_request(server.port, "/events"))
        held.append(stream.sock)
        held.extend(half_open(server.port) for _ in range(3))
        assert ready_status(server.port) == 503  # evicts the oldest half-open connection
        assert closed_by_server(held[1])
        assert all(closed_by_server(h) for h in held[2:])  # the head deadline
        server.publish(make_snapshot())
        assert stream.events(1)[0]["id"] == "1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeHandler:
    """Stands in for aiohttp's RequestHandler behind the guard's protocol."""

    def __init__(self) -> None:
        self.received = b""
        self.closed = False
        self.lost = False

    def connection_made(self, transport: object) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        self.received += data

    def eof_received(self) -> None:
        pass

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True

    def force_close(self) -> None:
        self.closed = True


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closing = True


def connect(guard: ConnectionGuard) -> tuple[GuardedProtocol, FakeHandler, FakeTransport]:
    handler, transport = FakeHandler(), FakeTransport()
    conn = GuardedProtocol(guard, lambda: handler)  # type: ignore[arg-type,return-value]
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, handler, transport


def test_a_complete_head_is_a_request_in_hand_before_its_handler_runs() -> None:
    """A half-open connection never reaches aiohttp; a finished head does, and is neither
    timed out nor evicted while the loop is too busy to start its handler."""

    async def main() -> None:
        clock = FakeClock()
        limits = ConnectionLimits(head_timeout_s=10, idle_timeout_s=75, max_connections=2)
        guard = ConnectionGuard(limits, now=clock)
        half, half_handler, half_transport = connect(guard)
        whole, whole_handler, _ = connect(guard)
        half.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")
        whole.data_received(b"GET / HTTP/1.1\r\nHost: x\r")
        assert whole_handler.received == b""  # held back until the head is complete
        whole.data_received(b"\n\r\n")  # the terminator split across two reads
        assert whole_handler.received == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        clock.now += 11
        guard.expire()
        assert half_transport.closing and half_handler.received == b""
        assert not whole_handler.closed
        assert guard.counts() == {"fresh": 0, "head": 0, "idle": 0, "busy": 1}
        _, _, third_transport = connect(guard)
        fourth, fourth_handler, fourth_transport = connect(guard)  # at the ceiling
        assert third_transport.closing and not whole_handler.closed
        assert fourth.state is State.FRESH and fourth_transport.written == b""
        fourth.data_received(b"GET /events HTTP/1.1\r\n\r\n")
        refused, refused_handler, refused_transport = connect(guard)  # everyone is busy
        assert refused.state is None and refused_transport.closing
        assert refused_transport.written.startswith(b"HTTP/1.1 503 ")
        refused.data_received(b"GET / HTTP/1.1\r\n\r\n")
        assert refused_handler.received == b""  # never reaches aiohttp
        assert not fourth_handler.closed and guard.closed["rejected"] == 1
        assert sum(guard.counts().values()) == guard.count == 2  # whole and fourth
        whole.connection_lost(None)
        assert whole_handler.lost and guard.counts()["busy"] == 1 and guard.count == 1
        for conn in (half, refused, fourth, fourth):  # lost, some twice: counted once each
            conn.connection_lost(None)
        assert guard.count == 0 and sum(guard.counts().values()) == 0

    asyncio.run(main())


def test_an_endless_head_is_handed_to_aiohttp_to_refuse() -> None:
    async def main() -> None:
        guard = ConnectionGuard(ConnectionLimits(max_connections=16))
        conn, handler, _ = connect(guard)
        for _ in range(MAX_EARLY_BYTES // 1000 + 1):
            conn.data_received(b"X-Junk: " + b"a" * 990 + b"\r\n")
        assert len(handler.received) > MAX_EARLY_BYTES  # aiohttp's limits answer it (431)

    asyncio.run(main())


def test_a_head_ended_by_bare_line_feeds_is_answered_at_once() -> None:
    limits = ConnectionLimits(head_timeout_s=60, idle_timeout_s=60)
    with running(manual_state(), limits=limits) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /-/ready HTTP/1.1\nHost: 127.0.0.1\n\n")
        # aiohttp refuses it (400), at once: it is not held here until the deadline
        assert sock.recv(4096).startswith(b"HTTP/1.")
        sock.close()
