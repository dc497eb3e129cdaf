"""`smicast api --web-config` against real clients: curl, openssl s_client, Prometheus,
headless Chromium, and Debian's prometheus-node-exporter reading the same web-config file."""

from __future__ import annotations

import contextlib
import re
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.integration.browser import connection_state, count, severe_console_entries, wait
from tests.integration.support import (
    ARTIFACTS_DIR,
    STARTUP_TIMEOUT_S,
    free_port,
    http_get,
    require_tool,
    running,
    smicast_argv,
    wait_until,
)
from tests.tls_material import Pki, make_pki

pytestmark = pytest.mark.integration

PASSWORD = "wonder land"  # a space, as real passwords have
_HTTPS_LINE = re.compile(r"smicast api: listening on https://127\.0\.0\.1:(\d+)")


@dataclass
class TlsServer:
    port: int
    pki: Pki
    config: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def curl(self, path: str, *args: str) -> subprocess.CompletedProcess[str]:
        """curl with our CA; prints the status code last."""
        return subprocess.run(
            [
                require_tool("curl"),
                "-sS",
                "--max-time",
                "10",
                "--cacert",
                str(self.pki.ca),
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                *args,
                f"{self.url}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )


def hash_password(password: str, cost: int = 5) -> str:
    """What an operator does: `smicast hash-password`, here fed on stdin."""
    done = subprocess.run(
        [sys.executable, "-m", "smicast", "hash-password", "--cost", str(cost)],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def web_config(pki: Pki, users: dict[str, str], extra_tls: str = "") -> str:
    lines = [
        "tls_server_config:",
        f"  cert_file: {pki.cert}",
        f"  key_file: {pki.key}",
        *(f"  {line}" for line in extra_tls.splitlines() if line),
        "http_server_config:",
        "  headers:",
        "    X-Frame-Options: deny",
        "basic_auth_users:",
        *(f"  {name}: {hashed}" for name, hashed in users.items()),
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password(PASSWORD)


@contextlib.contextmanager
def tls_smicast(directory: Path, pki: Pki, config_text: str, *args: str) -> Iterator[TlsServer]:
    config = directory / "web.yml"
    config.write_text(config_text)
    log_path = directory / "smicast.log"
    port = free_port()
    argv = smicast_argv(
        "--port", str(port), "--bind", "127.0.0.1", "--interval", "1", "--simulate", "nvidia:4"
    )
    argv += ["--web-config", str(config), *args]
    with running(argv, log_path) as proc:

        def listening() -> bool | None:
            if proc.poll() is not None:
                pytest.fail(f"smicast exited early:\n{log_path.read_text()}", pytrace=False)
            return True if _HTTPS_LINE.search(log_path.read_text(errors="replace")) else None

        wait_until(listening, STARTUP_TIMEOUT_S, "smicast api to listen on https", log_path)
        yield TlsServer(port, pki, config, log_path)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, alice_hash: str
) -> Iterator[TlsServer]:
    directory = tmp_path_factory.mktemp("tls-smicast")
    with tls_smicast(directory, pki, web_config(pki, {"alice": alice_hash})) as running_server:
        wait_until(
            lambda: (
                True
                if running_server.curl("/-/ready", "-u", f"alice:{PASSWORD}").stdout == "200"
                else None
            ),
            STARTUP_TIMEOUT_S,
            "smicast to be ready over TLS",
            running_server.log_path,
        )
        yield running_server


def test_curl_with_and_without_credentials(server: TlsServer) -> None:
    for path in ("/metrics", "/snapshot", "/-/ready", "/"):
        assert server.curl(path).stdout == "401", path
        assert server.curl(path, "-u", f"alice:{PASSWORD}").stdout == "200", path
    assert server.curl("/metrics", "-u", "alice:wrong").stdout == "401"
    assert server.curl("/metrics", "-u", "alice:" + "x" * 73).stdout == "401"
    ca, url = [str(server.pki.ca)], f"{server.url}/metrics"
    head = subprocess.run(
        [require_tool("curl"), "-sS", "-D", "-", "-o", "/dev/null", "--cacert", *ca, url],
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout.lower()
    assert 'www-authenticate: basic realm="smicast"' in head
    assert "strict-transport-security: max-age=31536000" in head
    assert "x-frame-options: deny" in head
    assert f"dashboard: https://127.0.0.1:{server.port}/" in server.log_path.read_text()
    # Without our CA curl refuses the certificate: the server really speaks TLS with it.
    done = subprocess.run(
        [require_tool("curl"), "-sS", "--max-time", "10", f"{server.url}/-/ready"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 60, done.stderr  # peer certificate cannot be authenticated


def test_openssl_refuses_tls_1_1_and_accepts_1_2(server: TlsServer) -> None:
    openssl = require_tool("openssl")

    address = f"127.0.0.1:{server.port}"

    def handshake(flag: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [openssl, "s_client", flag, "-connect", address, "-CAfile", str(server.pki.ca)],
            input="",
            capture_output=True,
            text=True,
            timeout=20,
        )

    old = handshake("-tls1_1")
    assert old.returncode != 0
    assert "Cipher is (NONE)" in old.stdout, old.stdout
    ok = handshake("-tls1_2")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Protocol  : TLSv1.2" in ok.stdout
    assert "Verify return code: 0 (ok)" in ok.stdout


def test_reload_adds_a_user_and_a_broken_file_keeps_the_old(
    server: TlsServer, alice_hash: str
) -> None:
    bob = hash_password("builder", cost=4)
    assert server.curl("/-/ready", "-u", "bob:builder").stdout == "401"
    server.config.write_text(web_config(server.pki, {"alice": alice_hash, "bob": bob}))
    wait_until(
        lambda: True if server.curl("/-/ready", "-u", "bob:builder").stdout == "200" else None,
        10,
        "the new user to be accepted",
        server.log_path,
    )
    server.config.write_text("basic_auth_users:\n  carol: plain-text\n")
    wait_until(
        # the file is looked at when a request or handshake comes in, as in the toolkit
        lambda: (
            True
            if server.curl("/-/ready", "-u", "bob:builder").stdout == "200"
            and "not reloaded" in server.log_path.read_text()
            else None
        ),
        10,
        "the broken file to be refused",
        server.log_path,
    )
    assert "basic_auth_users.carol: not a bcrypt hash" in server.log_path.read_text()
    assert server.curl("/-/ready", "-u", "bob:builder").stdout == "200"
    server.config.write_text(web_config(server.pki, {"alice": alice_hash}))  # as the others expect
    wait_until(
        lambda: True if server.curl("/-/ready", "-u", "bob:builder").stdout == "401" else None,
        10,
        "bob to be removed again",
        server.log_path,
    )


def test_unknown_key_exits_2_naming_it(tmp_path: Path, pki: Pki) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {pki.cert}\n  keyfile: {pki.key}\n")
    done = subprocess.run(
        smicast_argv("--port", str(free_port()), "--web-config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "tls_server_config.keyfile: unknown key" in done.stderr


def test_client_certificate_required(tmp_path: Path, pki: Pki, alice_hash: str) -> None:
    text = web_config(
        pki,
        {},
        extra_tls=f"client_auth_type: RequireAndVerifyClientCert\nclient_ca_file: {pki.ca}",
    ).replace("basic_auth_users:\n", "")
    with tls_smicast(tmp_path, pki, text) as tls:
        cert = ["--cert", str(pki.client_cert), "--key", str(pki.client_key)]
        wait_until(
            lambda: True if tls.curl("/-/ready", *cert).stdout == "200" else None,
            STARTUP_TIMEOUT_S,
            "smicast to be ready with a client certificate",
            tls.log_path,
        )
        refused = tls.curl("/-/ready")
        assert refused.stdout == "000" and refused.returncode != 0, refused
        rogue = ["--cert", str(pki.other_client_cert), "--key", str(pki.other_client_key)]
        assert tls.curl("/-/ready", *rogue).stdout == "000"


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: smicast_tls
    scheme: https
    tls_config: {{ca_file: {ca}}}
    basic_auth: {{username: alice, password: "{password}"}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: smicast_wrong_password
    scheme: https
    tls_config: {{ca_file: {ca}}}
    basic_auth: {{username: alice, password: "not it"}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


def test_prometheus_scrapes_through_tls_and_basic_auth(tmp_path: Path, server: TlsServer) -> None:
    binary = require_tool("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        PROMETHEUS_CONFIG.format(ca=server.pki.ca, password=PASSWORD, port=server.port)
    )
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    log_path = tmp_path / "prometheus.log"

    def up(job: str) -> str | None:
        query = urllib.parse.urlencode({"query": f'up{{job="{job}"}}'})
        try:
            got = http_get(f"http://127.0.0.1:{port}/api/v1/query?{query}")
        except OSError:
            return None
        result = got.json()["data"]["result"] if got.status == 200 else []
        return str(result[0]["value"][1]) if result else None

    with running(argv, log_path):
        wait_until(lambda: up("smicast_tls") == "1" or None, 30, "up == 1 over TLS", log_path)
        wait_until(lambda: up("smicast_wrong_password") == "0" or None, 30, "up == 0", log_path)
        query = urllib.parse.urlencode({"query": 'all_smi_up{job="smicast_tls"}'})
        got = http_get(f"http://127.0.0.1:{port}/api/v1/query?{query}").json()
        assert got["data"]["result"][0]["value"][1] == "1"


def test_node_exporter_accepts_the_same_web_config(tmp_path: Path, server: TlsServer) -> None:
    """The format matches: the Debian prometheus-node-exporter serves with our very file."""
    binary = require_tool("prometheus-node-exporter", "/usr/bin/prometheus-node-exporter")
    port = free_port()
    argv = [
        binary,
        f"--web.config.file={server.config}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        "--collector.loadavg",
    ]
    log_path = tmp_path / "node-exporter.log"
    node = TlsServer(port, server.pki, server.config, log_path)
    with running(argv, log_path):
        wait_until(
            lambda: (
                True if node.curl("/metrics", "-u", f"alice:{PASSWORD}").stdout == "200" else None
            ),
            STARTUP_TIMEOUT_S,
            "node_exporter to serve with the web config",
            log_path,
        )
        assert node.curl("/metrics").stdout == "401"
        assert node.curl("/metrics", "-u", "alice:wrong").stdout == "401"
    assert "TLS is enabled" in log_path.read_text()


def test_browser_dashboard_over_https_with_basic_auth(
    server: TlsServer, browser: WebDriver
) -> None:
    browser.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": True})
    user = urllib.parse.quote(f"alice:{PASSWORD}", safe=":")
    browser.get(f"https://{user}@127.0.0.1:{server.port}/")
    wait(browser).until(lambda d: count(d, "[data-gpu-index]") == 4)
    wait(browser).until(lambda d: connection_state(d) == "live")
    first = browser.find_element("id", "last-frame").text
    wait(browser).until(lambda d: d.find_element("id", "last-frame").text != first)
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS_DIR / "dashboard-https-basic-auth.png"))
    assert severe_console_entries(browser) == []


def test_plain_http_to_the_tls_port_gets_nothing(server: TlsServer) -> None:
    with pytest.raises((OSError, ssl.SSLError)):
        http_get(f"http://127.0.0.1:{server.port}/-/ready")
    time.sleep(0)  # the server keeps serving others
    assert server.curl("/-/ready", "-u", f"alice:{PASSWORD}").stdout == "200"
