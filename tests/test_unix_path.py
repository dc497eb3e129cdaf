"""The default socket path (XDG_RUNTIME_DIR, a private directory) and one-line path checks."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from smicast.api.unix_path import (
    MAX_SOCKET_PATH_BYTES,
    SocketPathError,
    check_socket_path,
    default_socket_path,
)

ROOT = os.geteuid() == 0
USER = os.geteuid() or 1000  # a non-root uid that owns the test's directories


def owned(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(exist_ok=True)
    path.chmod(mode)
    if ROOT:
        os.chown(path, USER, -1)
    return path


def test_root_uses_run_when_it_can(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert default_socket_path({}, euid=0, run_dir=run, tmp_dir=tmp_path) == run / "smicast.sock"


def test_a_user_gets_xdg_runtime_dir(tmp_path: Path) -> None:
    runtime = owned(tmp_path / "user-1000")
    environ = {"XDG_RUNTIME_DIR": str(runtime)}
    path = default_socket_path(environ, euid=USER, run_dir=tmp_path, tmp_dir=tmp_path)
    assert path == runtime / "smicast.sock"


@pytest.mark.parametrize("runtime", [None, "relative/dir", "/nonexistent/runtime", "shared"])
def test_without_a_usable_runtime_dir_a_private_directory(
    tmp_path: Path, runtime: str | None
) -> None:
    environ = {}
    if runtime == "shared":  # others may enter it: not a runtime directory to trust
        runtime = str(owned(tmp_path / "shared", 0o755))
    if runtime is not None:
        environ["XDG_RUNTIME_DIR"] = runtime
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    if ROOT:  # as a user the call makes it; root stands in for USER by making it first
        owned(tmp / f"smicast-{USER}")
    path = default_socket_path(environ, euid=USER, run_dir=tmp_path, tmp_dir=tmp)
    assert path == tmp / f"smicast-{USER}" / "smicast.sock"
    assert stat.S_IMODE(path.parent.lstat().st_mode) == 0o700


@pytest.mark.parametrize("planted", ["other owner", "open mode", "symlink"])
def test_a_planted_private_directory_is_refused(tmp_path: Path, planted: str) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    target = tmp / f"smicast-{USER}"
    if planted == "symlink":
        owned(tmp_path / "elsewhere")
        target.symlink_to(tmp_path / "elsewhere")
    elif planted == "open mode":
        owned(target, 0o777)
    else:
        target.mkdir(mode=0o700)  # ours only if we are USER; pretend to be someone else
    euid = USER if planted != "other owner" else USER + 1
    with pytest.raises(SocketPathError) as caught:
        default_socket_path({}, euid=euid, run_dir=tmp_path, tmp_dir=tmp)
    assert "is not a private directory of this user" in str(caught.value.strerror)
    assert "\n" not in str(caught.value.strerror)


def test_a_path_too_long_for_a_socket(tmp_path: Path) -> None:
    path = tmp_path / ("s" * MAX_SOCKET_PATH_BYTES)
    with pytest.raises(SocketPathError, match=r"a Unix socket path holds at most 107"):
        check_socket_path(path)


def test_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SocketPathError) as caught:
        check_socket_path(tmp_path / "missing" / "s.sock")
    assert caught.value.strerror == (
        f"unix:{tmp_path}/missing/s.sock: the directory {tmp_path}/missing does not exist"
    )


def test_an_unwritable_directory(tmp_path: Path) -> None:
    # Root may write anywhere; the permission check is the OS edge, passed in.
    with pytest.raises(SocketPathError, match="no permission to create a socket in"):
        check_socket_path(tmp_path / "s.sock", access=lambda path, mode: False)


@pytest.mark.skipif(not ROOT, reason="makes a socket owned by another user")
def test_a_stale_socket_of_another_user_in_a_sticky_directory(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    path = sticky / "smicast.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # stale: nobody listens
    os.chown(path, 4242, -1)
    with pytest.raises(SocketPathError) as caught:
        check_socket_path(path, euid=1000)
    assert "a socket of another user (uid 4242) is in the way" in str(caught.value.strerror)
    check_socket_path(path, euid=4242)  # its owner may replace it
    check_socket_path(path, euid=0)


def test_an_ordinary_path_passes(tmp_path: Path) -> None:
    check_socket_path(tmp_path / "smicast.sock")


def test_the_private_directory_is_made_0700_and_reused(tmp_path: Path) -> None:
    me = os.geteuid()
    kwargs = {"euid": me, "run_dir": tmp_path / "no-run", "tmp_dir": tmp_path}
    path = default_socket_path({}, **kwargs)  # type: ignore[arg-type]
    assert path == tmp_path / f"smicast-{me}" / "smicast.sock"
    assert stat.S_IMODE(path.parent.lstat().st_mode) == 0o700
    assert default_socket_path({}, **kwargs) == path  # type: ignore[arg-type]
