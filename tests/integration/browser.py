"""Headless Chromium through chromedriver, and small readers of the page it shows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.integration.support import require_tool

PAGE_TIMEOUT_S = 30
FRAME_TIMEOUT_S = 20
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--window-size=1440,1100",
)


@contextlib.contextmanager
def chromium(directory: Path) -> Iterator[WebDriver]:
    """A fresh Chromium (its profile in `directory`) with the console log captured."""
    chromedriver = require_tool("chromedriver", "/usr/bin/chromedriver")
    binary = require_tool("chromium", "/usr/bin/chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={directory / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(directory / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        driver.set_script_timeout(PAGE_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, timeout_s: float = FRAME_TIMEOUT_S) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, timeout_s, poll_frequency=0.1)


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def count(driver: WebDriver, css: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def connection_state(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "connection").get_attribute("data-state"))


def severe_console_entries(driver: WebDriver) -> list[dict[str, Any]]:
    """Console errors: script errors, CSP violations, failed loads."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def series_pixels(driver: WebDriver, css: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of a chart canvas are drawn in the series colour."""
    return int(
        driver.execute_script(
            """
            const [canvas, r, g, b] = arguments;
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
              if (data[i + 3] > 200 && Math.abs(data[i] - r) < 12 &&
                  Math.abs(data[i + 1] - g) < 12 && Math.abs(data[i + 2] - b) < 12) n++;
            }
            return n;
            """,
            driver.find_element(By.CSS_SELECTOR, css),
            *rgb,
        )
    )
