"""examples/sse_client.html in headless Chromium, from another origin: CORS allowlist and default."""

from __future__ import annotations

import functools
import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.integration.browser import count, severe_console_entries, text, wait
from tests.integration.support import (
    REPO_ROOT,
    SmicastServer,
    http_get,
    serve_http,
    smicast_server,
)

pytestmark = pytest.mark.integration


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def examples_origin() -> Iterator[str]:
    """examples/ served from a second origin, as an operator's own web page would be."""
    handler = functools.partial(_QuietHandler, directory=str(REPO_ROOT / "examples"))
    with serve_http(handler) as origin:
        yield origin


def open_example_client(browser: WebDriver, page_origin: str, server_url: str) -> None:
    browser.get(f"{page_origin}/sse_client.html")
    base = browser.find_element(By.ID, "base")
    base.clear()
    base.send_keys(server_url)
    browser.find_element(By.CSS_SELECTOR, "#connect button[type=submit]").click()


def test_example_client_with_cors_allowlist(
    tmp_path: Path, browser: WebDriver, examples_origin: str
) -> None:
    allow = {"SMICAST_API_CORS_ALLOWED_ORIGINS": examples_origin}
    with smicast_server(tmp_path, "--simulate", "nvidia:3", environ=allow) as server:
        open_example_client(browser, examples_origin, server.url)

        wait(browser).until(lambda d: count(d, "#gpus tr") == 3)
        assert text(browser, "#status") == "open"
        snapshot = http_get(f"{server.url}/snapshot?include=gpu").json()
        assert text(browser, "#host") == snapshot["hostname"]
        first_row = browser.find_elements(By.CSS_SELECTOR, "#gpus tr:first-child td")
        assert first_row[1].text == snapshot["gpus"][0]["name"]
        assert severe_console_entries(browser) == []


def test_example_client_is_refused_without_cors(
    smicast: SmicastServer, browser: WebDriver, examples_origin: str
) -> None:
    # The default: no CORS headers, so a page from another origin cannot read the stream.
    open_example_client(browser, examples_origin, smicast.url)

    wait(browser).until(lambda d: text(d, "#status").startswith("closed"))
    assert count(browser, "#gpus tr") == 0
    assert any("CORS" in e["message"] for e in severe_console_entries(browser))
