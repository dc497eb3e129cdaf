"""Suite-wide settings: no test writes the real state directory."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_PREVIOUS = "_SMICAST_STATE_DIR_BEFORE_TESTS"


def pytest_configure(config: pytest.Config) -> None:
    """Every `smicast api` a test starts, in-process or as a child, keeps its energy totals
    in a temporary directory, not in /var/lib/smicast or the user's ~/.local/state.

    Set before collection: some test modules copy the environment when imported.
    """
    os.environ[_PREVIOUS] = os.environ.get("SMICAST_STATE_DIR", "")
    os.environ["SMICAST_STATE_DIR"] = tempfile.mkdtemp(prefix="smicast-state-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.get("SMICAST_STATE_DIR", ""), ignore_errors=True)
    previous = os.environ.pop(_PREVIOUS, "")
    if previous:
        os.environ["SMICAST_STATE_DIR"] = previous
    else:
        os.environ.pop("SMICAST_STATE_DIR", None)
