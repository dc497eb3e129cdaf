"""nginx in front of `/events`, configured with the documented examples/nginx-smicast.conf."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.support import (
    REPO_ROOT,
    SmicastServer,
    SseStream,
    free_port,
    http_get,
    require_tool,
    running,
    wait_for_port,
)

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "examples" / "nginx-smicast.conf"
READ_TIMEOUT_S = 2  # nginx's proxy_read_timeout for /events in this test

MAIN_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/smicast.conf;
}}
"""


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{EXAMPLE.name} should contain {old!r} exactly once"
    return text.replace(old, new)


def site_config(upstream_port: int, listen_port: int) -> str:
    """The example, pointed at this test's smicast and port, with a short read timeout."""
    text = EXAMPLE.read_text()
    text = replace_once(text, "server 127.0.0.1:9090;", f"server 127.0.0.1:{upstream_port};")
    text = replace_once(text, "listen 80;", f"listen 127.0.0.1:{listen_port};")
    return replace_once(text, "proxy_read_timeout 75s;", f"proxy_read_timeout {READ_TIMEOUT_S}s;")


@dataclass
class Nginx:
    port: int
    directory: Path


@pytest.fixture(scope="module")
def nginx(smicast: SmicastServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    binary = require_tool("nginx", "/usr/sbin/nginx")
    directory = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (directory / "smicast.conf").write_text(site_config(smicast.port, port))
    conf = directory / "nginx.conf"
    conf.write_text(MAIN_CONF.format(dir=directory))
    # -e: the startup error log, before the configuration names ours (no /var/log needed).
    argv = [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    with running(argv, directory / "nginx.out") as proc:
        wait_for_port(port, 15, "nginx to listen", directory / "error.log")
        assert proc.poll() is None
        yield Nginx(port, directory)


def test_proxies_ordinary_routes(nginx: Nginx) -> None:
    ready = http_get(f"http://127.0.0.1:{nginx.port}/-/ready")
    assert ready.status == 200
    snapshot = http_get(f"http://127.0.0.1:{nginx.port}/snapshot?include=gpu").json()
    assert len(snapshot["gpus"]) == 8


def test_frames_pass_through_unbuffered(smicast: SmicastServer, nginx: Nginx) -> None:
    path = "/events?include=gpu"
    with (
        SseStream("127.0.0.1", smicast.port, path) as direct,
        SseStream("127.0.0.1", nginx.port, path) as proxied,
    ):
        assert proxied.response.status == 200
        assert proxied.response.getheader("Content-Type", "").startswith("text/event-stream")
        # The first frame of each stream may be a catch-up frame sent on connect; the
        # following ones are published once and written to both at the same moment.
        got_direct = direct.events("snapshot", 5, timeout_s=15)[1:]
        got_proxied = proxied.events("snapshot", 5, timeout_s=15)[1:]

    arrived = {m.id: m.arrived_at for m in got_direct}
    delays = [m.arrived_at - arrived[m.id] for m in got_proxied if m.id in arrived]
    assert len(delays) >= 3, (sorted(arrived), [m.id for m in got_proxied])
    for m in got_proxied:
        assert len(json.loads(m.data)["gpus"]) == 8
    # Buffered, a frame would wait for the next one (a second here) or for the buffer
    # to fill. Unbuffered, it is only nginx's own hop late.
    assert statistics.median(delays) < 0.05, delays
    assert max(abs(d) for d in delays) < 0.25, delays


def test_heartbeat_keeps_a_quiet_stream_open(nginx: Nginx) -> None:
    # throttle=30: after the first frame the stream carries nothing but heartbeats.
    # They come every second, well inside nginx's 2 s read timeout.
    with SseStream("127.0.0.1", nginx.port, "/events?throttle=30&heartbeat=1") as stream:
        messages = stream.read_for(5.5)
        assert not stream.ended, (stream.error, [m.comment or m.event for m in messages])

    snapshots = [m for m in messages if m.event == "snapshot"]
    heartbeats = [m for m in messages if m.comment == "keep-alive"]
    assert len(snapshots) == 1, [m.id for m in snapshots]
    assert len(heartbeats) >= 3, [m.comment or m.event for m in messages]


def test_without_heartbeat_nginx_closes_the_quiet_stream(nginx: Nginx) -> None:
    # The control for the test above: with the default 30 s heartbeat the same quiet
    # stream outlives nginx's read timeout, and nginx ends it.
    with SseStream("127.0.0.1", nginx.port, "/events?throttle=30") as stream:
        messages = stream.read_for(READ_TIMEOUT_S + 6)
        assert stream.ended, [m.comment or m.event for m in messages]
        assert stream.ended_at is not None
        assert stream.ended_at - stream.opened_at < READ_TIMEOUT_S + 4
    assert [m.event for m in messages if m.event == "snapshot"] == ["snapshot"]
