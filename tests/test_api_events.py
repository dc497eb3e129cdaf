"""`/events` against a real server on 127.0.0.1 with raw-socket clients."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from smicast.api.bus import MAX_PENDING_BYTES
from smicast.api.state import ApiState
from smicast.collect import Collector
from smicast.include import Section
from tests.api_harness import SseReader, raw_request, running
from tests.fakes import HangingReader, StaticReader, make_cpu, make_gpu, make_process, make_snapshot

ALL = frozenset(Section)


def manual_state(interval_s: float = 0.1, **kwargs: object) -> ApiState:
    return ApiState(interval_s=interval_s, sections=ALL, collector=None, **kwargs)  # type: ignore[arg-type]


def frame(i: int, **overrides: object) -> object:
    return make_snapshot(
        timestamp=f"2026-04-20T00:00:{i % 60:02d}Z", hostname="test-host", **overrides
    )


def publish_every(server: object, interval_s: float, count: int) -> threading.Thread:
    def run() -> None:
        for i in range(count):
            server.publish(frame(i))  # type: ignore[attr-defined]
            time.sleep(interval_s)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_emits_at_least_three_frames_within_five_seconds_with_headers() -> None:
    collector = Collector(
        [StaticReader(Section.GPU, [make_gpu()]), StaticReader(Section.CPU, [make_cpu()])],
        timeout_s=1,
    )
    state = ApiState(
        interval_s=0.1, sections=frozenset({Section.GPU, Section.CPU}), collector=collector
    )
    with running(state, manual=False) as server:
        sse = SseReader(raw_request(server.port, "/events"))
        assert sse.status == 200
        assert sse.headers["content-type"] == "text/event-stream"
        assert sse.headers["cache-control"] == "no-store"
        assert sse.headers["x-accel-buffering"] == "no"
        first = sse.next_event()
        assert first == {"retry": "3000"}
        events = sse.events(3)
        ids = [int(e["id"]) for e in events]
        assert ids == sorted(ids) and len(set(ids)) == 3
        for ev in events:
            data = json.loads(ev["data"])
            assert data["schema"] == 1 and isinstance(data["timestamp"], str)
            assert "gpus" in data and "cpus" in data
        sse.close()


def test_include_filter_drops_other_sections() -> None:
    with running(manual_state()) as server:
        sse = SseReader(raw_request(server.port, "/events?include=gpu"))
        server.publish(frame(1))
        data = json.loads(sse.events(1)[0]["data"])
        assert "gpus" in data
        assert not {"cpus", "memory", "chassis"} & data.keys()
        sse.close()


def test_throttle_reduces_emission_rate() -> None:
    with running(manual_state(0.1)) as server:
        sse = SseReader(raw_request(server.port, "/events?throttle=1"))
        sse.sock.settimeout(0.3)
        publisher = publish_every(server, 0.1, 20)  # 2 s of frames every 100 ms
        got: list[dict[str, str]] = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                got += [e for e in [sse.next_event()] if e.get("event") == "snapshot"]
            except TimeoutError:
                continue
        publisher.join()
        assert 1 <= len(got) <= 3, len(got)
        sse.close()


def test_heartbeat_comment_when_quiet() -> None:
    with running(manual_state(1.0)) as server:
        sse = SseReader(raw_request(server.port, "/events?heartbeat=1"))
        assert sse.next_event() == {"retry": "3000"}
        started = time.monotonic()
        assert sse.next_event() == {"comment": "keep-alive"}
        assert time.monotonic() - started < 3
        sse.close()


@pytest.mark.parametrize(
    "query", ["throttle=abc", "throttle=-1", "heartbeat=nan", "throttle=inf", "heartbeat=1e999"]
)
def test_malformed_query_values_answer_400_json(query: str) -> None:
    with running(manual_state()) as server:
        sse = SseReader(raw_request(server.port, f"/events?{query}"))
        assert sse.status == 400
        assert sse.headers["content-type"].startswith("application/json")
        sse.close()


def big_frame(i: int) -> object:
    procs = [make_process(pid=1000 + n, command="x" * 200) for n in range(300)]
    return frame(i, processes=procs)


def test_lag_event_for_a_receiver_that_does_not_read_then_newest_frame() -> None:
    with running(manual_state()) as server:
        sse = SseReader(raw_request(server.port, "/events?include=gpu,process", rcvbuf=4096))
        assert sse.next_event() == {"retry": "3000"}
        # Stop reading; publish until the server has skipped frames for this client.
        seq = 0
        for i in range(400):
            seq = server.publish(big_frame(i))
            skipped = server.call(lambda: sum(s.dropped for s in server.state.bus._subscribers))
            if skipped >= 3:
                break
        else:
            pytest.fail("the server never skipped a frame for a stalled client")
        # The server held at most one frame beyond its bound for this client.
        pending = server.call(
            lambda: [s.transport.get_write_buffer_size() for s in server.state.bus._subscribers]
        )
        assert max(pending) <= MAX_PENDING_BYTES + 200_000
        # Catch up: drain, then the next publish brings `lag` and the newest frame.
        sse.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        drained: list[dict[str, str]] = []

        def read_all() -> None:
            try:
                while True:
                    drained.append(sse.next_event())
            except (EOFError, OSError):
                pass

        threading.Thread(target=read_all, daemon=True).start()
        time.sleep(0.5)
        newest = server.publish(big_frame(999))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(e.get("id") == str(newest) for e in drained):
            time.sleep(0.05)
        lag = [e for e in drained if e.get("event") == "lag"]
        assert lag, "no lag event"
        assert json.loads(lag[0]["data"])["dropped"] >= 3
        after_lag = drained[drained.index(lag[0]) + 1]
        assert after_lag["event"] == "snapshot" and int(after_lag["id"]) == newest > seq
        sse.close()


def test_fifty_non_reading_clients_do_not_stall_the_publisher() -> None:
    with running(manual_state()) as server:
        clients = [raw_request(server.port, "/events", rcvbuf=4096) for _ in range(50)]
        server.wait_for(lambda: len(server.state.bus._subscribers) == 50)
        done = threading.Event()

        def burst() -> None:
            for i in range(200):
                server.publish(big_frame(i))
            done.set()

        threading.Thread(target=burst, daemon=True).start()
        assert done.wait(20), "publishing stalled behind clients that do not read"
        # The server still answers other requests while those clients sit there.
        sse = SseReader(raw_request(server.port, "/events?include=cpu"))
        server.publish(frame(1))
        assert sse.events(1)
        for c in clients:
            c.close()
        server.wait_for(lambda: server.state.bus.subscriber_count == 1)
        sse.close()


def test_last_event_id_replays_missed_frames() -> None:
    with running(manual_state()) as server:
        seqs = [server.publish(frame(i)) for i in range(5)]
        sse = SseReader(raw_request(server.port, "/events", {"Last-Event-ID": str(seqs[1])}))
        events = sse.events(3, kind=None)[1:] + sse.events(1, kind=None)
        ids = [int(e["id"]) for e in events if e.get("event") == "snapshot"]
        assert ids == seqs[2:]
        server.publish(frame(9))
        assert int(sse.events(1)[0]["id"]) == seqs[-1] + 1
        sse.close()


def test_last_event_id_older_than_the_ring_gets_lag_then_held_frames() -> None:
    with running(manual_state()) as server:
        seqs = [server.publish(frame(i)) for i in range(70)]
        sse = SseReader(raw_request(server.port, "/events", {"Last-Event-ID": str(seqs[0])}))
        assert sse.next_event() == {"retry": "3000"}
        lag = sse.next_event()
        assert lag["event"] == "lag"
        dropped = json.loads(lag["data"])["dropped"]
        # The newest frames that fit the per-subscriber bound; the lag counts the rest.
        held = sse.events(len(seqs) - 1 - dropped)
        assert [int(e["id"]) for e in held] == seqs[-len(held) :]
        assert dropped >= seqs[-64] - seqs[0] - 1
        server.publish(frame(99))
        assert int(sse.events(1)[0]["id"]) == seqs[-1] + 1
        sse.close()


def test_garbage_last_event_id_is_ignored() -> None:
    with running(manual_state()) as server:
        server.publish(frame(0))
        sse = SseReader(raw_request(server.port, "/events", {"Last-Event-ID": "x" * 4000}))
        assert sse.status == 200
        seq = server.publish(frame(1))
        assert int(sse.events(1)[0]["id"]) == seq
        sse.close()


def test_subscriber_cap_is_exact_and_answers_503() -> None:
    with running(manual_state(max_subscribers=2)) as server:
        a = SseReader(raw_request(server.port, "/events"))
        b = SseReader(raw_request(server.port, "/events"))
        c = SseReader(raw_request(server.port, "/events"))
        assert (a.status, b.status, c.status) == (200, 200, 503)
        assert c.headers["retry-after"] == "5"
        assert c.headers["cache-control"] == "no-store"
        assert c.headers["content-type"].startswith("application/json")
        a.close()
        server.wait_for(lambda: server.state.bus.subscriber_count == 1)
        d = SseReader(raw_request(server.port, "/events"))
        assert d.status == 200
        b.close()
        c.close()
        d.close()


def test_hung_reader_keeps_the_cadence_and_reports_timeout() -> None:
    hanging = HangingReader(Section.CPU)
    collector = Collector([StaticReader(Section.GPU, [make_gpu()]), hanging], timeout_s=0.05)
    state = ApiState(
        interval_s=0.1, sections=frozenset({Section.GPU, Section.CPU}), collector=collector
    )
    try:
        with running(state, manual=False) as server:
            sse = SseReader(raw_request(server.port, "/events?include=gpu,cpu"))
            events = sse.events(8)
            for ev in events:
                data = json.loads(ev["data"])
                assert "gpus" in data and "cpus" not in data
                assert data["errors"][0]["section"] == "cpu"
                assert data["errors"][0]["kind"] == "timeout"
            assert hanging.calls == 1  # never called again while stuck
            sse.close()
    finally:
        hanging.release.set()
