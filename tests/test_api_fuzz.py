"""Whatever the query string, the server answers without a 5xx."""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smicast.api.state import ApiState
from smicast.include import Section
from tests.api_harness import RunningServer
from tests.fakes import make_snapshot

KEYS = st.sampled_from(["include", "throttle", "heartbeat", "pretty", "x", "include[]", ""])
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "-1",
            "1e309",
            "NaN",
            "0x10",
            "1_000",
            "٣",
            " 5 ",
            "gpu,,cpu",
            "inf",
            "-0",
            "99999999999999999999",
        ]
    ),
)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    state = ApiState(interval_s=0.5, sections=frozenset(Section), collector=None)
    srv = RunningServer(state)
    srv.publish(make_snapshot())
    yield srv
    srv.stop()


def status_of(port: int, target: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                break
            head += data
    return int(head.split(b" ", 2)[1])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/events", "/snapshot", "/metrics", "/-/ready"]),
    pairs=st.lists(st.tuples(KEYS, VALUES), max_size=4),
)
def test_query_strings_never_5xx(
    server: RunningServer, path: str, pairs: list[tuple[str, str]]
) -> None:
    query = urllib.parse.urlencode(pairs)
    status = status_of(server.port, f"{path}?{query}" if query else path)
    assert status < 500, (path, query)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(min_size=1, max_size=60).map(
        lambda b: urllib.parse.quote_from_bytes(b, safe="=&%+;")
    )
)
def test_raw_percent_encoded_queries_never_5xx(server: RunningServer, raw: str) -> None:
    assert status_of(server.port, f"/events?{raw}") < 500
    assert status_of(server.port, f"/snapshot?{raw}") < 500
