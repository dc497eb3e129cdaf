"""TLS, basic auth, bearer tokens and reloads against a real server and real HTTPS clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from smicast.api.access import AccessControl, exposure_warnings
from smicast.api.auth import Authenticator
from smicast.api.state import ApiState
from smicast.include import DEFAULT_SECTIONS
from tests.api_harness import RunningServer, running
from tests.fakes import make_snapshot
from tests.tls_material import Pki, bcrypt_hash, make_pki, web_config_yaml


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(
    port: int,
    target: str,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target, headers=headers or {})
        resp = conn.getresponse()
        headers_out: dict[str, str] = {}
        for k, v in resp.getheaders():
            key = k.lower()
            headers_out[key] = f"{headers_out[key]}, {v}" if key in headers_out else v
        return resp.status, headers_out, resp.read()
    finally:
        conn.close()


@pytest.fixture
def state() -> ApiState:
    return ApiState(interval_s=1.0, sections=DEFAULT_SECTIONS, collector=None)


@contextlib.contextmanager
def serve(
    state: ApiState,
    config_file: Path | None,
    token_file: Path | None = None,
    clock: Clock | None = None,
    unix_path: Path | None = None,
) -> Iterator[RunningServer]:
    access = AccessControl(config_file, token_file, monotonic=clock or Clock())
    with running(state, access=access, unix_path=unix_path) as server:
        yield server


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_tls_and_basic_auth_on_every_route(tmp_path: Path, pki: Pki, state: ApiState) -> None:
    config = write(tmp_path / "web.yml", web_config_yaml(pki, {"alice": "wonder"}))
    ctx = client_context(pki)
    with serve(state, config) as server:
        server.publish(make_snapshot())
        for target in ("/metrics", "/snapshot", "/events", "/-/ready", "/", "/static/app.js", "/x"):
            status, headers, body = get(server.port, target, context=ctx)
            assert status == 401, target
            assert headers["www-authenticate"] == 'Basic realm="smicast", charset="UTF-8"'
            assert headers["strict-transport-security"] == "max-age=31536000"
            assert b"unauthorized" in body
        status, headers, body = get(server.port, "/metrics", basic("alice", "wonder"), ctx)
        assert status == 200 and body.startswith(b"# HELP all_smi_up")
        assert headers["strict-transport-security"] == "max-age=31536000"
        assert get(server.port, "/-/ready", basic("alice", "wonder!"), ctx)[0] == 401
        assert get(server.port, "/-/ready", basic("mallory", "wonder"), ctx)[0] == 401
        assert get(server.port, "/-/ready", basic("alice", "x" * 73), ctx)[0] == 401
        assert get(server.port, "/-/ready", {"Authorization": "Basic !!"}, ctx)[0] == 401
        assert get(server.port, "/-/ready", {"Authorization": "Bearer wonder"}, ctx)[0] == 401
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            get(server.port, "/-/ready")  # plain HTTP to a TLS port


def test_unix_socket_needs_no_credentials(tmp_path: Path, pki: Pki, state: ApiState) -> None:
    config = write(tmp_path / "web.yml", web_config_yaml(pki, {"alice": "wonder"}))
    sock_path = tmp_path / "s.sock"
    with serve(state, config, unix_path=sock_path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(sock_path))
            sock.sendall(b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 503")  # no frame yet, but not 401
        assert b"strict-transport-security" not in reply.lower()


def test_bearer_tokens(tmp_path: Path, state: ApiState) -> None:
    tokens = write(tmp_path / "tokens", "# fleet\n\ns3cr3t-token\nsecond-token\n")
    with serve(state, None, tokens) as server:
        status, headers, _ = get(server.port, "/-/ready")
        assert status == 401 and headers["www-authenticate"] == 'Bearer realm="smicast"'
        assert get(server.port, "/-/ready", {"Authorization": "Bearer s3cr3t-token"})[0] == 503
        assert get(server.port, "/-/ready", {"Authorization": "bearer second-token"})[0] == 503
        assert get(server.port, "/-/ready", {"Authorization": "Bearer s3cr3t"})[0] == 401
        assert "strict-transport-security" not in headers  # no TLS, no HSTS


def test_users_and_tokens_together(tmp_path: Path, state: ApiState) -> None:
    config = write(tmp_path / "web.yml", web_config_yaml(None, {"alice": "wonder"}))
    tokens = write(tmp_path / "tokens", "tok\n")
    with serve(state, config, tokens) as server:
        status, headers, _ = get(server.port, "/-/ready")
        assert status == 401
        assert headers["www-authenticate"] == (
            'Basic realm="smicast", charset="UTF-8", Bearer realm="smicast"'
        )
        assert get(server.port, "/-/ready", basic("alice", "wonder"))[0] == 503
        assert get(server.port, "/-/ready", {"Authorization": "Bearer tok"})[0] == 503


def test_reload_adds_a_user_and_a_broken_file_keeps_the_old(
    tmp_path: Path, pki: Pki, state: ApiState, caplog: pytest.LogCaptureFixture
) -> None:
    config = write(tmp_path / "web.yml", web_config_yaml(pki, {"alice": "wonder"}))
    ctx = client_context(pki)
    clock = Clock()
    with serve(state, config, clock=clock) as server:
        assert get(server.port, "/-/ready", basic("bob", "builder"), ctx)[0] == 401
        write(config, web_config_yaml(pki, {"alice": "wonder", "bob": "builder"}))
        assert get(server.port, "/-/ready", basic("bob", "builder"), ctx)[0] == 401  # < 1 s
        clock.now += 1.5
        assert get(server.port, "/-/ready", basic("bob", "builder"), ctx)[0] == 503
        with caplog.at_level(logging.WARNING, logger="smicast.api"):
            write(config, "basic_auth_users:\n  carol: not-a-hash\n")
            clock.now += 1.5
            assert get(server.port, "/-/ready", basic("bob", "builder"), ctx)[0] == 503
            clock.now += 1.5
            assert get(server.port, "/-/ready", basic("alice", "wonder"), ctx)[0] == 503
        refusals = [r for r in caplog.records if "not reloaded" in r.getMessage()]
        assert len(refusals) == 1  # logged once per broken version, not per request
        assert "basic_auth_users.carol: not a bcrypt hash" in refusals[0].getMessage()


def test_client_certificate_required(tmp_path: Path, pki: Pki, state: ApiState) -> None:
    config = write(
        tmp_path / "web.yml", web_config_yaml(pki, client_auth="RequireAndVerifyClientCert")
    )
    with serve(state, config) as server:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            get(server.port, "/-/ready", context=client_context(pki))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            ctx = client_context(pki, pki.other_client_cert, pki.other_client_key)
            get(server.port, "/-/ready", context=ctx)
        ctx = client_context(pki, pki.client_cert, pki.client_key)
        assert get(server.port, "/-/ready", context=ctx)[0] == 503


def test_client_allowed_sans(tmp_path: Path, pki: Pki, state: ApiState) -> None:
    sans = "client_allowed_sans: [someone.else.example.org]"
    config = write(
        tmp_path / "web.yml",
        web_config_yaml(pki, client_auth="RequireAndVerifyClientCert", extra_tls=sans),
    )
    clock = Clock()
    ctx = client_context(pki, pki.client_cert, pki.client_key)
    with serve(state, config, clock=clock) as server:
        assert get(server.port, "/-/ready", context=ctx)[0] == 403
        write(
            config,
            web_config_yaml(
                pki,
                client_auth="RequireAndVerifyClientCert",
                extra_tls=sans.replace("someone.else", "scraper"),
            ),
        )
        clock.now += 1.5
        assert get(server.port, "/-/ready", context=ctx)[0] == 503


def test_old_tls_versions_refused_by_default(tmp_path: Path, pki: Pki, state: ApiState) -> None:
    config = write(tmp_path / "web.yml", web_config_yaml(pki))
    with serve(state, config) as server:
        ctx = client_context(pki)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        assert get(server.port, "/-/ready", context=ctx)[0] == 503
        ctx = client_context(pki)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        assert get(server.port, "/-/ready", context=ctx)[0] == 503


def test_configured_headers_and_the_dashboard_keeps_its_own_csp(
    tmp_path: Path, pki: Pki, state: ApiState
) -> None:
    extra = (
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        "    Content-Security-Policy: default-src 'self'\n"
        "    Strict-Transport-Security: max-age=60; includeSubDomains\n"
    )
    config = write(tmp_path / "web.yml", web_config_yaml(pki, extra=extra))
    with serve(state, config) as server:
        status, headers, _ = get(server.port, "/-/ready", context=client_context(pki))
        assert headers["x-frame-options"] == "deny"
        assert headers["strict-transport-security"] == "max-age=60; includeSubDomains"
        assert headers["content-security-policy"] == "default-src 'self'"
        status, headers, _ = get(server.port, "/", context=client_context(pki))
        assert status == 200
        assert headers["content-security-policy"].startswith("default-src 'none'")


def test_certificate_rotation_reaches_new_handshakes(
    tmp_path: Path, pki: Pki, state: ApiState
) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(pki.cert.read_bytes())
    key.write_bytes(pki.key.read_bytes())
    config = write(
        tmp_path / "web.yml", f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    )
    other = make_pki(tmp_path / "other")
    clock = Clock()
    with serve(state, config, clock=clock) as server:
        assert get(server.port, "/-/ready", context=client_context(pki))[0] == 503
        cert.write_bytes(other.cert.read_bytes())
        key.write_bytes(other.key.read_bytes())
        clock.now += 1.5
        assert get(server.port, "/-/ready", context=client_context(other))[0] == 503
        with pytest.raises(ssl.SSLError):
            get(server.port, "/-/ready", context=client_context(pki))


def test_rate_limit(tmp_path: Path, state: ApiState) -> None:
    config = write(tmp_path / "web.yml", "rate_limit:\n  interval: 1h\n  burst: 2\n")
    with serve(state, config) as server:
        assert [get(server.port, "/-/ready")[0] for _ in range(3)] == [503, 503, 429]


def test_bcrypt_runs_once_per_credential_and_never_caches_failures() -> None:
    calls: list[bytes] = []
    costs: list[bytes] = []

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        costs.append(hashed[4:7])
        return bcrypt.checkpw(password, hashed)

    auth = Authenticator({"alice": bcrypt_hash("wonder").encode()}, check_password=counting)
    header = basic("alice", "wonder")["Authorization"]
    wrong = basic("alice", "nope")["Authorization"]
    unknown = basic("mallory", "wonder")["Authorization"]

    async def scenario() -> list[bool]:
        return [
            await auth.allowed(header),
            await auth.allowed(header),
            await auth.allowed(wrong),
            await auth.allowed(wrong),
            await auth.allowed(unknown),
            await auth.allowed(basic("alice", "w" * 73)["Authorization"]),
        ]

    assert asyncio.run(scenario()) == [True, True, False, False, False, False]
    # one check for the good password, one per wrong attempt, one (dummy) for the unknown user
    assert calls == [b"wonder", b"nope", b"nope", b"wonder"]
    assert set(costs) == {b"04$"}  # the unknown user costs what a known one does


def test_exposure_warning_only_beyond_loopback(tmp_path: Path) -> None:
    tokens = write(tmp_path / "tokens", "tok\n")
    with socket.socket() as lo, socket.socket() as anywhere:
        lo.bind(("127.0.0.1", 0))
        anywhere.bind(("0.0.0.0", 0))
        assert exposure_warnings([lo], None, processes=True) == []
        warned = exposure_warnings([lo, anywhere], None, processes=True)
        assert len(warned) == 1 and "command lines" in warned[0]
        assert exposure_warnings([anywhere], None, processes=False) == []
        access = AccessControl(None, tokens)
        warned = exposure_warnings([anywhere], access, processes=True)
        assert warned == [
            "authentication without TLS: passwords and tokens cross the network in clear "
            "text (add tls_server_config to the web config)"
        ]


def test_concurrent_logins_with_one_credential_share_one_bcrypt_check() -> None:
    calls: list[bytes] = []

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return bcrypt.checkpw(password, hashed)

    auth = Authenticator({"alice": bcrypt_hash("wonder").encode()}, check_password=counting)

    async def burst() -> list[bool]:
        header = basic("alice", "wonder")["Authorization"]
        return list(await asyncio.gather(*(auth.allowed(header) for _ in range(50))))

    assert asyncio.run(burst()) == [True] * 50
    assert calls == [b"wonder"]
