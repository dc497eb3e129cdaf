"""Suite-wide settings: no test writes the real state directory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every `smicast api` a test starts, in-process or as a child, keeps its energy totals
    in a temporary directory, not in /var/lib/smicast or the user's ~/.local/state."""
    previous = os.environ.get("SMICAST_STATE_DIR")
    os.environ["SMICAST_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        os.environ.pop("SMICAST_STATE_DIR", None)
    else:
        os.environ["SMICAST_STATE_DIR"] = previous
