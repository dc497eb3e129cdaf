"""`/snapshot`, `/metrics`, `/-/ready`, CORS and routing against a real server."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from smicast.api.cors import CorsPolicy
from smicast.api.state import ApiState
from smicast.collect import Collector
from smicast.include import Section
from tests.api_harness import running
from tests.fakes import StaticReader, make_gpu, make_process, make_snapshot

ALL = frozenset(Section)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(
    port: int, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def manual_state(**kwargs: object) -> ApiState:
    return ApiState(interval_s=1.0, sections=ALL, collector=None, **kwargs)  # type: ignore[arg-type]


class SlowCountingReader(StaticReader):
    def __init__(self, delay_s: float) -> None:
        super().__init__(Section.GPU, [make_gpu()], name="slow")
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def read(self):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls += 1
        time.sleep(self.delay_s)
        return list(self._items)


def test_readiness_transition_and_metrics_never_empty() -> None:
    with running(manual_state(hostname="snap-host")) as server:
        status, headers, body = get(server.port, "/-/ready")
        assert (
            status == 503
            and headers["retry-after"] == "1"
            and headers["cache-control"] == "no-store"
        )
        assert b"not ready" in body
        status, _, body = get(server.port, "/metrics")
        lines = body.decode().splitlines()
        samples = [line for line in lines if not line.startswith("#")]
        assert status == 200 and samples[0].startswith("all_smi_up{") and samples[0].endswith(" 0")
        assert samples[1].startswith("all_smi_build_info{")
        server.publish(make_snapshot(hostname="snap-host"))
        status, headers, body = get(server.port, "/-/ready")
        assert status == 200 and b"ready" in body and "retry-after" not in headers
        _, _, body = get(server.port, "/metrics")
        up = next(line for line in body.decode().splitlines() if line.startswith("all_smi_up{"))
        assert up.endswith(" 1")
        assert "all_smi_gpu_utilization{" in body.decode()


def test_snapshot_returns_latest_frame_pretty_and_include() -> None:
    with running(manual_state()) as server:
        server.publish(make_snapshot(hostname="snap-host"))
        status, headers, body = get(server.port, "/snapshot")
        assert status == 200
        assert headers["content-type"].startswith("application/json")
        assert headers["cache-control"] == "no-store" and headers["x-accel-buffering"] == "no"
        data = json.loads(body)
        assert data["hostname"] == "snap-host" and data["schema"] == 1
        assert {"gpus", "cpus", "memory", "chassis"} <= data.keys()
        _, _, body = get(server.port, "/snapshot?pretty=1")
        assert b'\n  "schema": 1' in body
        _, _, body = get(server.port, "/snapshot?include=cpu,memory")
        data = json.loads(body)
        assert "cpus" in data and "memory" in data and "gpus" not in data and "chassis" not in data
        _, _, body = get(server.port, "/snapshot?include=bogus")
        assert {"gpus", "cpus", "memory", "chassis"} <= json.loads(body).keys()


def test_stale_snapshot_triggers_one_shared_fresh_collection() -> None:
    clock = FakeClock()
    reader = SlowCountingReader(0.3)
    collector = Collector([reader], timeout_s=5)
    state = ApiState(
        interval_s=1.0, sections=frozenset({Section.GPU}), collector=collector, monotonic=clock
    )
    with running(state) as server:
        # Nothing published yet: the first request collects.
        status, _, body = get(server.port, "/snapshot?include=gpu")
        assert status == 200 and json.loads(body)["gpus"][0]["name"] == "A100"
        assert reader.calls == 1
        clock.now += 2.5  # older than 2 x interval
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda _: get(server.port, "/snapshot?include=gpu"), range(10)))
        assert all(r[0] == 200 for r in results)
        assert reader.calls == 2  # ten stale requests, one collection
        assert server.call(lambda: server.state.bus.seq) == 2  # and it was published as a frame


def test_process_strings_truncated_on_json_and_prometheus() -> None:
    long_cmd = "python " + "A" * 4096
    snap = make_snapshot(
        processes=[make_process(command=long_cmd, user="u" * 512, process_name="n" * 512)]
    )
    with running(manual_state()) as server:
        server.publish(snap)
        _, _, body = get(server.port, "/snapshot?include=process")
        proc = json.loads(body)["processes"][0]
        assert proc["command"].endswith("bytes truncated)") and len(proc["command"]) < 300
        assert proc["user"].startswith("u" * 128 + "...(384 bytes truncated)")
        assert proc["process_name"].endswith("...(384 bytes truncated)")
        _, _, body = get(server.port, "/metrics")
        text = body.decode()
        assert "A" * 257 not in text and "bytes truncated)" in text


def test_metrics_gzip_when_asked() -> None:
    with running(manual_state()) as server:
        server.publish(make_snapshot())
        status, headers, body = get(server.port, "/metrics", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["content-encoding"] == "gzip"
        assert gzip.decompress(body).decode().startswith("# HELP all_smi_up")
        _, plain_headers, plain = get(server.port, "/metrics")
        assert "content-encoding" not in plain_headers and plain == gzip.decompress(body)


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/-/healthy", 404),
        ("GET", "/nope", 404),
        ("POST", "/metrics", 405),
        ("DELETE", "/snapshot", 405),
        ("HEAD", "/metrics", 200),
        ("HEAD", "/snapshot", 200),
        ("HEAD", "/events", 200),
    ],
)
def test_routing(method: str, target: str, expected: int) -> None:
    with running(manual_state()) as server:
        server.publish(make_snapshot())
        status, _, body = get(server.port, target, method=method)
        assert status == expected
        if method == "HEAD":
            assert body == b""


def test_cors_denied_by_default() -> None:
    with running(manual_state()) as server:
        server.publish(make_snapshot())
        for target in ("/snapshot", "/metrics", "/-/ready"):
            _, headers, _ = get(server.port, target, {"Origin": "https://evil.example"})
            assert not any(h.startswith("access-control-") for h in headers)
        status, headers, _ = get(
            server.port, "/snapshot", {"Origin": "https://evil.example"}, method="OPTIONS"
        )
        assert status == 204 and "access-control-allow-origin" not in headers


def test_cors_allowlist_exact_match() -> None:
    policy = CorsPolicy.from_env(
        {"SMICAST_API_CORS_ALLOWED_ORIGINS": " https://ok.example , bad\r\nx ,"}
    )
    with running(manual_state(), policy=policy) as server:
        server.publish(make_snapshot())
        _, headers, _ = get(server.port, "/snapshot", {"Origin": "https://ok.example"})
        assert headers["access-control-allow-origin"] == "https://ok.example"
        assert headers["access-control-allow-methods"] == "GET, OPTIONS"
        assert headers["access-control-allow-headers"] == "accept, content-type, last-event-id"
        assert "origin" in headers["vary"].lower()
        _, headers, _ = get(server.port, "/snapshot", {"Origin": "https://ok.example.evil"})
        assert "access-control-allow-origin" not in headers
        status, headers, _ = get(
            server.port,
            "/events",
            {"Origin": "https://ok.example", "Access-Control-Request-Method": "GET"},
            method="OPTIONS",
        )
        assert status == 204 and headers["access-control-allow-origin"] == "https://ok.example"


def test_cors_wildcard() -> None:
    policy = CorsPolicy.from_env({"SMICAST_API_CORS_ALLOWED_ORIGINS": "*"})
    with running(manual_state(), policy=policy) as server:
        server.publish(make_snapshot())
        _, headers, _ = get(server.port, "/snapshot", {"Origin": "https://any.example"})
        assert headers["access-control-allow-origin"] == "*"


def test_oversized_header_is_refused_not_500() -> None:
    with running(manual_state()) as server:
        status, _, _ = get(server.port, "/snapshot", {"X-Big": "a" * 20_000})
        assert 400 <= status < 500
