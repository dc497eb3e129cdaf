"""The dashboard through a GPU reader failure and a reconnect, in headless Chromium.

A scripted `/events` tells the page what the wire contract allows: frames, one of
them without `gpus` (the GPU reader timed out, so the section is left out); then the
stream ends, the browser reconnects with `Last-Event-ID`, and the server answers as
smicast does: `event: lag` for the frames it no longer holds, the held frames it
missed (with their own, older timestamps), then live frames.
"""

from __future__ import annotations

import http.server
import importlib.resources
import threading
import time
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from smicast.encode import snapshot_json
from smicast.schema import ReaderError, Snapshot, utc_timestamp
from tests.fakes import make_gpu, make_snapshot
from tests.integration.browser import count, series_pixels, severe_console_entries, text, wait
from tests.integration.support import ARTIFACTS_DIR, CSP, serve_http

pytestmark = pytest.mark.integration

CARD = '[data-gpu-index="{}"]'
CHART = '[data-gpu-index="0"] [data-chart="utilization"]'
UTILIZATION_BLUE = (76, 194, 255)
HOLD_S = 3.0  # how long the stream pauses after the frame without GPUs


def frame(seq: int, at_s: float, *, gpus: bool = True) -> bytes:
    fields: dict[str, object] = {"timestamp": utc_timestamp(at_s), "hostname": "node-gap"}
    if gpus:
        fields["gpus"] = [
            make_gpu("NVIDIA H100", uuid="GPU-0", utilization=20.0 + seq),
            make_gpu("NVIDIA H100", uuid="GPU-1", utilization=60.0),
        ]
    else:
        fields["errors"] = [ReaderError(kind="timeout", message="gpu timed out", section="gpu")]
    snap: Snapshot = make_snapshot(**fields)
    if not gpus:
        snap = Snapshot(**{f: getattr(snap, f) for f in snap.__struct_fields__ if f != "gpus"})
    return f"event: snapshot\nid: {seq}\n".encode() + b"data: " + snapshot_json(snap) + b"\n\n"


@pytest.fixture
def scripted_origin() -> Iterator[str]:
    static = importlib.resources.files("smicast.api") / "static"
    done = threading.Event()
    clock: dict[str, float] = {}

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

        def at(self, offset_s: float, *parts: bytes) -> None:
            """Send `parts` at start + offset_s: a live frame leaves when it is stamped."""
            time.sleep(max(0.0, clock["start"] + offset_s - time.time()))
            for part in parts:
                self.wfile.write(part)
            self.wfile.flush()

        def do_GET(self) -> None:
            if self.path == "/":
                self.send("text/html; charset=utf-8", (static / "index.html").read_bytes())
            elif self.path.startswith("/static/dashboard."):
                name = self.path.rsplit("/", 1)[1]
                ctype = "text/javascript" if name.endswith(".js") else "text/css"
                self.send(ctype, (static / name).read_bytes())
            elif self.path == "/energy":
                self.send("application/json", b'{"since": null, "devices": []}')
            elif self.path.startswith("/events?"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                if self.headers.get("Last-Event-ID") is None:
                    t = clock.setdefault("start", float(int(time.time()) + 1))  # whole seconds
                    self.at(0, b"retry: 300\n\n", frame(1, t))
                    self.at(1, frame(2, t + 1))
                    self.at(2, frame(3, t + 2, gpus=False))  # stale cards until frame 4
                    self.at(2 + HOLD_S, frame(4, t + 2 + HOLD_S))
                    return  # the stream ends: the browser reconnects with Last-Event-ID: 4
                t = clock["start"]
                assert self.headers["Last-Event-ID"] == "4"
                # Back after an outage: frames 5 and 6 are gone, 7 and 8 are resent at once
                # with the live frame 9; they belong 1 s apart, not all at "now".
                self.at(
                    10,
                    b'event: lag\ndata: {"dropped":2}\n\n',
                    frame(7, t + 8),
                    frame(8, t + 9),
                    frame(9, t + 10),
                )
                done.wait(30)
            else:
                self.send_error(404)

    with serve_http(Handler, done) as origin:
        yield origin


def chart_attribute(driver: WebDriver, name: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, CHART).get_attribute(name))


def test_cards_survive_a_frame_without_gpus_and_resent_frames_keep_their_times(
    scripted_origin: str, browser: WebDriver
) -> None:
    browser.get(f"{scripted_origin}/")

    # Frame 3 has no `gpus`: both cards stay, marked stale, with their history.
    wait(browser).until(lambda d: count(d, "[data-stale]") == 2)
    assert count(browser, "[data-gpu-index]") == 2
    assert text(browser, CARD.format(0) + ' [data-field="name"]') == "NVIDIA H100"
    assert browser.find_element(By.ID, "reader-errors").is_displayed()
    wait(browser).until(lambda d: chart_attribute(d, "data-segments") == "1")  # frames 1-2
    assert 900 <= int(chart_attribute(browser, "data-last-segment-ms")) <= 1100

    # Reconnected: frames 7-9 arrive back to back but are plotted 1 s apart, after a gap
    # where frames 5 and 6 were lost. Lines: frames 1-2 | 4 | 7-9.
    wait(browser).until(lambda d: count(d, "#lag-notices li[data-reconnected]") == 1)
    wait(browser).until(lambda d: chart_attribute(d, "data-segments") == "3")
    assert 1900 <= int(chart_attribute(browser, "data-last-segment-ms")) <= 2100
    assert count(browser, "[data-stale]") == 0
    assert count(browser, "[data-gpu-index]") == 2
    assert series_pixels(browser, CHART, UTILIZATION_BLUE) > 10
    notice = browser.find_element(By.CSS_SELECTOR, "#lag-notices li[data-reconnected]")
    assert notice.get_attribute("data-reconnected") == "2"
    assert "reconnected; 2 frame(s) from the outage were no longer held" in notice.text
    assert "fell behind" not in text(browser, "#lag-notices")
    assert text(browser, "#lag-total") in ("", "0")

    ARTIFACTS_DIR.mkdir(exist_ok=True)
    screenshot = ARTIFACTS_DIR / "dashboard-gap-reconnect.png"
    assert browser.save_screenshot(str(screenshot))
    assert severe_console_entries(browser) == []
