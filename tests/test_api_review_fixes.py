"""API bugs a review found, each against a real server (or the real socket layer)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from smicast.api.bus import MAX_PENDING_BYTES
from smicast.api.cors import CorsPolicy
from smicast.api.server import _ipv6_available, open_tcp
from smicast.api.state import ApiState
from smicast.collect import Collector
from smicast.include import Section
from tests.api_harness import RunningServer, SseReader, raw_request, running
from tests.fakes import FailingReader, StaticReader, make_gpu, make_process, make_snapshot
from tests.test_api_http import FakeClock, get

ALL = frozenset(Section)


class SlowReader(StaticReader):
    def __init__(self, delay_s: float) -> None:
        super().__init__(Section.GPU, [make_gpu()], name="slow")
        self.delay_s = delay_s

    def read(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        time.sleep(self.delay_s)
        return list(self._items)


def test_snapshot_during_the_first_collection_joins_it() -> None:
    reader = SlowReader(0.5)
    state = ApiState(
        interval_s=30.0,
        sections=frozenset({Section.GPU}),
        collector=Collector([reader], timeout_s=5),
    )
    with running(state, manual=False) as server:
        status, _, body = get(server.port, "/snapshot?include=gpu")
        assert status == 200 and json.loads(body)["gpus"][0]["name"] == "A100"
        assert reader.calls == 1  # not a second collection right after the loop's first
        assert server.call(lambda: server.state.bus.seq) == 1


def big(i: int) -> Any:
    gpus = [make_gpu(uuid=f"GPU-{i}-{n}") for n in range(40)]
    return make_snapshot(hostname="h", gpus=gpus)


def test_last_event_id_catch_up_honours_throttle() -> None:
    clock = FakeClock()
    state = ApiState(interval_s=1.0, sections=ALL, collector=None, monotonic=clock)
    with running(state) as server:
        seqs = []
        for i in range(10):
            seqs.append(server.publish(make_snapshot(hostname=f"h{i}")))
            clock.now += 1.0
        sse = SseReader(
            raw_request(server.port, "/events?throttle=3", {"Last-Event-ID": str(seqs[0] - 1)})
        )
        # One frame every 3 s, as live: counted back from the newest.
        assert [int(e["id"]) for e in sse.events(4)] == [seqs[0], seqs[3], seqs[6], seqs[9]]
        clock.now += 1.0  # 2 s after the newest: throttled like any live frame
        server.publish(make_snapshot())
        clock.now += 1.0
        newest = server.publish(make_snapshot())
        assert int(sse.events(1)[0]["id"]) == newest
        sse.close()


def test_last_event_id_catch_up_honours_the_byte_bound() -> None:
    state = ApiState(interval_s=1.0, sections=ALL, collector=None)
    with running(state) as server:
        seqs = [server.publish(big(i)) for i in range(64)]
        frame_bytes = server.call(lambda: len(server.state.bus.latest.sse_chunk(ALL)))  # type: ignore[union-attr]
        assert frame_bytes * 4 > MAX_PENDING_BYTES  # the ring holds far more than the bound
        sse = SseReader(
            raw_request(
                server.port,
                "/events?include=" + ",".join(s.value for s in ALL),
                {"Last-Event-ID": str(seqs[0] - 1)},
            )
        )
        assert sse.next_event() == {"retry": "3000"}
        lag = sse.next_event()
        assert lag["event"] == "lag"
        dropped = json.loads(lag["data"])["dropped"]
        frames = sse.events(len(seqs) - dropped)
        assert [int(e["id"]) for e in frames] == seqs[dropped:]  # the newest, in order
        assert len(frames) * frame_bytes <= MAX_PENDING_BYTES + frame_bytes
        sse.close()


@pytest.mark.parametrize("cors", ["", "https://ok.example"])
def test_options_on_an_unknown_path_is_404(cors: str) -> None:
    policy = CorsPolicy.from_env({"SMICAST_API_CORS_ALLOWED_ORIGINS": cors})
    with running(ApiState(interval_s=1.0, sections=ALL, collector=None), policy=policy) as server:
        headers = {"Origin": "https://ok.example", "Access-Control-Request-Method": "GET"}
        assert get(server.port, "/nope", headers, method="OPTIONS")[0] == 404
        assert get(server.port, "/metrics", headers, method="OPTIONS")[0] == 204


def vary(headers: dict[str, str]) -> set[str]:
    return {v.strip().lower() for v in headers.get("vary", "").split(",") if v.strip()}


def test_vary_keeps_accept_encoding_and_names_origin_whenever_cors_is_on() -> None:
    state = ApiState(interval_s=1.0, sections=ALL, collector=None)
    policy = CorsPolicy.from_env({"SMICAST_API_CORS_ALLOWED_ORIGINS": "https://ok.example"})
    with running(state, policy=policy) as server:
        server.publish(make_snapshot())
        gz = {"Accept-Encoding": "gzip", "Origin": "https://ok.example"}
        _, headers, _ = get(server.port, "/metrics", gz)
        assert headers["content-encoding"] == "gzip"
        assert vary(headers) == {"accept-encoding", "origin"}
        _, headers, _ = get(server.port, "/metrics")  # no Origin: the answer still depends on it
        assert vary(headers) == {"accept-encoding", "origin"}
        _, headers, _ = get(server.port, "/snapshot", {"Origin": "https://other.example"})
        assert vary(headers) == {"origin"} and "access-control-allow-origin" not in headers
    with running(ApiState(interval_s=1.0, sections=ALL, collector=None)) as server:
        server.publish(make_snapshot())
        _, headers, _ = get(server.port, "/snapshot", {"Origin": "https://ok.example"})
        assert "origin" not in vary(headers)  # CORS off: the same answer for every origin


def test_shutdown_does_not_wait_for_streams_that_do_not_read() -> None:
    state = ApiState(interval_s=1.0, sections=ALL, collector=None)
    server = RunningServer(state, shutdown_grace_s=60.0)
    clients = [
        raw_request(server.port, "/events?include=gpu,process", rcvbuf=4096) for _ in range(20)
    ]
    procs = [make_process(pid=1000 + n, command="x" * 200) for n in range(300)]

    def stuck() -> int:
        return sum(1 for s in server.state.bus._subscribers if s.dropped)

    try:
        server.wait_for(lambda: len(server.state.bus._subscribers) == 20)
        for i in range(400):
            server.publish(make_snapshot(hostname=f"h{i}", processes=procs))
            if server.call(stuck) == 20:
                break
        else:
            pytest.fail("the clients never stopped taking data")
        server.stop()  # waits up to 5 s; the grace period would be 60
        assert not server._thread.is_alive(), "shutdown waited for clients that do not read"
    finally:
        for c in clients:
            c.close()
        server.stop()


def fake_resolver(*addresses: tuple[int, tuple[Any, ...]]) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(fam, socket.SOCK_STREAM, 6, "", addr) for fam, addr in addresses]

    return resolve


def test_bind_listens_on_every_address_the_name_resolves_to() -> None:
    addresses = [
        (socket.AF_INET, ("127.0.0.1", 0)),
        (socket.AF_INET, ("127.0.0.2", 0)),
        (socket.AF_INET, ("127.0.0.1", 0)),  # resolvers repeat themselves
    ]
    if _ipv6_available():
        addresses.insert(0, (socket.AF_INET6, ("::1", 0, 0, 0)))
    sockets = open_tcp("localhost", 0, resolve=fake_resolver(*addresses))
    try:
        bound = {s.getsockname()[0] for s in sockets}
        assert bound == {addr[0] for _, addr in addresses}
        assert len({s.getsockname()[1] for s in sockets}) == 1  # one port for all of them
    finally:
        for s in sockets:
            s.close()

    real = {a[4][0] for a in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)}
    sockets = open_tcp("localhost", 0)
    try:
        assert {s.getsockname()[0] for s in sockets} == real or not _ipv6_available()
    finally:
        for s in sockets:
            s.close()


def test_reader_stats_are_handed_over_as_copies() -> None:
    collector = Collector([FailingReader(Section.GPU)], timeout_s=5)
    collector.collect({Section.GPU})
    [before] = collector.reader_stats()
    assert before.errors == {"error": 1}
    collector.collect({Section.GPU})  # the collector thread goes on counting...
    assert before.errors == {"error": 1}  # ...never inside what /metrics is iterating
    [after] = collector.reader_stats()
    assert after.errors == {"error": 2}
