"""The dashboard at `/` in headless Chromium, driven by chromedriver."""

from __future__ import annotations

import http.server
import importlib.resources
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from smicast.encode import snapshot_json
from smicast.record.format import header_line
from smicast.schema import ReaderError
from tests.fakes import make_gpu, make_snapshot
from tests.integration.browser import (
    connection_state,
    count,
    series_pixels,
    severe_console_entries,
    text,
    wait,
)
from tests.integration.support import (
    ARTIFACTS_DIR,
    CSP,
    SmicastServer,
    SseStream,
    http_get,
    serve_http,
    smicast_server,
)

pytestmark = pytest.mark.integration

HOSTILE_GPU_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_HOSTNAME = "<script>alert(2)</script>"
UTILIZATION = '[data-gpu-index="{}"] [data-field="utilization"]'
UTILIZATION_BLUE = (76, 194, 255)  # the utilization series colour in dashboard.js


def test_dashboard_headers(smicast: SmicastServer) -> None:
    page = http_get(f"{smicast.url}/")
    assert page.status == 200
    assert page.header("content-type").startswith("text/html")
    assert page.header("content-security-policy") == CSP
    body = page.body.decode()
    assert "<script>" not in body and "style=" not in body and "<style" not in body
    for asset, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        got = http_get(f"{smicast.url}/static/{asset}")
        assert got.status == 200, asset
        assert got.header("content-type").startswith(ctype), got.headers


def test_dashboard_shows_live_gpus(smicast: SmicastServer, browser: WebDriver) -> None:
    browser.get(f"{smicast.url}/")

    wait(browser).until(lambda d: count(d, "[data-gpu-index]") == 8)
    wait(browser).until(lambda d: connection_state(d) == "live")
    assert text(browser, "#connection-state") == "live"
    snapshot = http_get(f"{smicast.url}/snapshot?include=gpu").json()
    assert text(browser, "#hostname") == snapshot["hostname"]
    names = [text(browser, f'[data-gpu-index="{i}"] [data-field="name"]') for i in range(8)]
    assert names == [g["name"] for g in snapshot["gpus"]]

    first = text(browser, UTILIZATION.format(0))
    assert first.endswith(" %"), first
    # The simulated devices walk every frame; some device's utilization moves within a few.
    before = [text(browser, UTILIZATION.format(i)) for i in range(8)]
    wait(browser).until(lambda d: [text(d, UTILIZATION.format(i)) for i in range(8)] != before)
    for i in range(8):
        for name, unit in (("memory", " GiB"), ("temperature", " °C"), ("power", " W")):
            value = text(browser, f'[data-gpu-index="{i}"] [data-field="{name}"]')
            assert value.endswith(unit), (i, name, value)
    # Energy since the agent started (GET /energy): kWh per GPU and for the host.
    energy = '[data-gpu-index="{}"] [data-field="energy"]'
    wait(browser).until(lambda d: all(text(d, energy.format(i)).endswith(" kWh") for i in range(8)))
    assert " kWh since " in text(browser, '#chassis [data-field="energy"]')
    assert text(browser, '#cpu [data-field="utilization"]').endswith(" %")
    assert text(browser, '#memory [data-field="utilization"]').endswith(" %")
    assert text(browser, "#last-frame") != "—"

    # The charts keep history: after a few frames the utilization line is drawn.
    chart = '[data-gpu-index="0"] [data-chart="utilization"]'
    wait(browser).until(lambda d: series_pixels(d, chart, UTILIZATION_BLUE) > 10)

    ARTIFACTS_DIR.mkdir(exist_ok=True)
    screenshot = ARTIFACTS_DIR / "dashboard.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000

    assert severe_console_entries(browser) == []


def write_hostile_trace(path: Path, frames: int = 5) -> None:
    """A small trace whose strings would run script if the page used innerHTML."""
    lines = [header_line([HOSTILE_HOSTNAME], 1000)]
    for n in range(frames):
        gpus = [
            make_gpu(HOSTILE_GPU_NAME, uuid="GPU-0", hostname=HOSTILE_HOSTNAME, utilization=10.0),
            make_gpu("NVIDIA A100", uuid="GPU-1", hostname=HOSTILE_HOSTNAME, utilization=50.0),
        ]
        snapshot = make_snapshot(
            hostname=HOSTILE_HOSTNAME, timestamp=f"2026-04-20T12:00:{n:02d}Z", gpus=gpus
        )
        lines.append(snapshot_json(snapshot) + b"\n")
    path.write_bytes(b"".join(lines))


def test_hostile_gpu_name_renders_as_text(tmp_path: Path, browser: WebDriver) -> None:
    trace = tmp_path / "hostile.ndjson"
    write_hostile_trace(trace)

    with smicast_server(tmp_path, "--replay", str(trace), "--loop") as server:
        browser.get(f"{server.url}/")
        wait(browser).until(lambda d: count(d, "[data-gpu-index]") == 2)
        name = browser.find_element(By.CSS_SELECTOR, '[data-gpu-index="0"] [data-field="name"]')
        wait(browser).until(lambda d: name.text == HOSTILE_GPU_NAME)
        assert browser.execute_script("return arguments[0].textContent", name) == HOSTILE_GPU_NAME
        assert name.find_elements(By.XPATH, "./*") == []
        assert text(browser, "#hostname") == HOSTILE_HOSTNAME
        assert count(browser, "img, main script, header script") == 0
        assert HOSTILE_HOSTNAME in browser.title
        with pytest.raises(NoAlertPresentException):
            _ = browser.switch_to.alert.text
        assert severe_console_entries(browser) == []


def test_dashboard_reconnects_after_a_server_restart(tmp_path: Path, browser: WebDriver) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with smicast_server(tmp_path / "first", "--simulate", "nvidia:2") as server:
        port = server.port
        browser.get(f"{server.url}/")
        wait(browser).until(lambda d: connection_state(d) == "live")
        last_before = text(browser, "#last-frame")

    # The server is gone: the page says so and when it last heard from it.
    wait(browser).until(lambda d: connection_state(d) == "reconnecting")
    wait(browser).until(lambda d: "last frame" in text(d, "#connection-detail"))

    with smicast_server(tmp_path / "second", "--simulate", "nvidia:2", port=port):
        wait(browser, 30).until(lambda d: connection_state(d) == "live")
        wait(browser).until(lambda d: text(d, "#last-frame") != last_before)
        assert count(browser, "[data-gpu-index]") == 2


def test_dashboard_retries_when_the_server_turns_it_away(
    tmp_path: Path, browser: WebDriver
) -> None:
    # A 503 (over the subscriber cap) makes the browser give up on an EventSource for
    # good; the page must open a new one itself, with backoff, until it gets in.
    cap = {"SMICAST_API_MAX_SSE_SUBSCRIBERS": "1"}
    with smicast_server(tmp_path, "--simulate", "nvidia:2", environ=cap) as server:
        with SseStream("127.0.0.1", server.port, "/events") as holder:
            holder.events("snapshot", 1, timeout_s=10)
            browser.get(f"{server.url}/")
            wait(browser).until(lambda d: "retrying in" in text(d, "#connection-detail"))
            assert connection_state(browser) == "connecting"
            assert count(browser, "[data-gpu-index]") == 0
        wait(browser, 30).until(lambda d: connection_state(d) == "live")
        assert count(browser, "[data-gpu-index]") == 2


# -- lag notices and reader errors, from a scripted stream ---------------------------------
# The real server sends `event: lag` only to a client that cannot keep up, which a
# browser on loopback always can; so the page is served here with a stream that says
# exactly what the wire contract allows: a frame, a lag event, an error event (the
# server could not encode a frame), a frame with reader errors.

HOSTILE_ERROR = "<b>reader exceeded timeout of 5000 ms</b>"


def scripted_events() -> bytes:
    plain = make_snapshot()
    failing = make_snapshot(
        errors=[ReaderError(kind="timeout", message=HOSTILE_ERROR, section="gpu")]
    )
    return b"".join(
        [
            b"retry: 1000\n\n",
            b"event: snapshot\nid: 1\ndata: " + snapshot_json(plain) + b"\n\n",
            b'event: lag\ndata: {"dropped":3}\n\n',
            b'event: error\ndata: {"error":"<i>could not encode a frame</i>"}\n\n',
            b"event: snapshot\nid: 5\ndata: " + snapshot_json(failing) + b"\n\n",
        ]
    )


@pytest.fixture
def scripted_origin() -> Iterator[str]:
    static = importlib.resources.files("smicast.api") / "static"
    done = threading.Event()
    body = scripted_events()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def send(self, ctype: str, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/":
                self.send("text/html; charset=utf-8", (static / "index.html").read_bytes())
            elif self.path == "/static/dashboard.js":
                self.send("text/javascript", (static / "dashboard.js").read_bytes())
            elif self.path == "/static/dashboard.css":
                self.send("text/css", (static / "dashboard.css").read_bytes())
            elif self.path == "/energy":
                self.send("application/json", b'{"since": null, "devices": []}')
            elif self.path.startswith("/events?"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                done.wait(30)  # hold the stream open; a reconnect would replay the script
            else:
                self.send_error(404)

    with serve_http(Handler, done) as origin:
        yield origin


def test_dashboard_shows_lag_and_reader_errors(scripted_origin: str, browser: WebDriver) -> None:
    browser.get(f"{scripted_origin}/")

    wait(browser).until(lambda d: text(d, "#lag-total") == "3")
    assert browser.find_element(By.ID, "notices").is_displayed()
    wait(browser).until(lambda d: count(d, "#lag-notices li") == 2)
    server_error, lag = browser.find_elements(By.CSS_SELECTOR, "#lag-notices li")  # newest first
    assert lag.get_attribute("data-dropped") == "3"
    assert "skipped 3 frame(s)" in lag.text
    assert server_error.text.endswith("server error: <i>could not encode a frame</i>")
    assert count(browser, "#lag-notices i") == 0

    wait(browser).until(lambda d: d.find_element(By.ID, "reader-errors").is_displayed())
    errors = browser.find_elements(By.CSS_SELECTOR, "#reader-error-list li")
    assert [e.text for e in errors] == [f"gpu (timeout): {HOSTILE_ERROR}"]
    assert count(browser, "#reader-error-list b") == 0
    assert count(browser, "[data-gpu-index]") == 2
    assert connection_state(browser) == "live"
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS_DIR / "dashboard-notices.png"))
    assert severe_console_entries(browser) == []
