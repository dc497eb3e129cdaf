"""Fixtures for the integration suite: a real `smicast api` on 127.0.0.1 and a Unix socket.

One simulated 8-GPU server is shared by the whole session (starting Python costs a
second or two on a small machine); tests that need other options start their own
with `support.smicast_server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.support import SmicastServer, smicast_server

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


@pytest.fixture(scope="session")
def smicast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmicastServer]:
    """`smicast api --simulate nvidia:8 --interval 1`, ready, on TCP and `s.sock`."""
    with smicast_server(tmp_path_factory.mktemp("smicast"), "--simulate", "nvidia:8") as server:
        yield server


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile, driven by chromedriver."""
    from tests.integration.browser import chromium

    with chromium(tmp_path) as driver:
        yield driver
