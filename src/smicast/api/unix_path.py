"""Where `smicast api --socket` listens, and why a socket path cannot work, in one line.

Default path: `/run/smicast.sock` for root (where /run is writable), else
`$XDG_RUNTIME_DIR/smicast.sock` (a directory only this user may enter), else a
directory of this user's own, `/tmp/smicast-UID/`, created mode 0700 and checked
before use: a socket directly in /tmp could be taken first by any local user.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

SOCKET_NAME: Final = "smicast.sock"
# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH_BYTES: Final = 107


class SocketPathError(OSError):
    """The socket path cannot work; `strerror` is the one-line reason, naming the path."""


def _is_private_dir(path: Path, euid: int) -> bool:
    """A real directory (not a symlink) owned by `euid` that nobody else may enter."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == euid and st.st_mode & 0o077 == 0


def default_socket_path(
    environ: Mapping[str, str] | None = None,
    *,
    euid: int | None = None,
    run_dir: Path = Path("/run"),
    tmp_dir: Path = Path("/tmp"),  # noqa: S108  (a private directory is made inside)
) -> Path:
    """The socket path `--socket` without a value means; raises SocketPathError."""
    environ = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    if euid == 0 and os.access(run_dir, os.W_OK | os.X_OK):
        return run_dir / SOCKET_NAME
    runtime = Path(environ.get("XDG_RUNTIME_DIR") or "relative")
    if runtime.is_absolute() and _is_private_dir(runtime, euid):
        return runtime / SOCKET_NAME
    private = tmp_dir / f"smicast-{euid}"
    try:
        private.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SocketPathError(
            exc.errno, f"cannot create {private} for the socket: {exc.strerror}"
        ) from exc
    if not _is_private_dir(private, euid):
        raise SocketPathError(
            errno.EPERM,
            f"{private} is not a private directory of this user (owner, mode 0700, no "
            "symlink), so it cannot hold the socket; set XDG_RUNTIME_DIR or give --socket PATH",
        )
    return private / SOCKET_NAME


def check_socket_path(
    path: Path,
    *,
    euid: int | None = None,
    access: Callable[[Path, int], bool] = os.access,
) -> None:
    """Raise SocketPathError when a socket cannot be created at `path`; say why in one line."""
    euid = os.geteuid() if euid is None else euid
    shown = f"unix:{path}"
    if path.name in ("", ".", ".."):
        raise SocketPathError(errno.EINVAL, f"{shown}: not a file name for a socket")
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise SocketPathError(
            errno.ENAMETOOLONG,
            f"{shown}: the path is {size} bytes; a Unix socket path holds at most "
            f"{MAX_SOCKET_PATH_BYTES}",
        )
    parent = path.parent
    try:
        parent_st = parent.stat()
    except FileNotFoundError:
        raise SocketPathError(
            errno.ENOENT, f"{shown}: the directory {parent} does not exist"
        ) from None
    except OSError as exc:
        raise SocketPathError(exc.errno, f"{shown}: {parent}: {exc.strerror}") from exc
    if not stat.S_ISDIR(parent_st.st_mode):
        raise SocketPathError(errno.ENOTDIR, f"{shown}: {parent} is not a directory")
    if not access(parent, os.W_OK | os.X_OK):
        raise SocketPathError(
            errno.EACCES, f"{shown}: no permission to create a socket in {parent}"
        )
    try:
        st = path.lstat()
    except OSError:
        return
    sticky_for_us = parent_st.st_mode & stat.S_ISVTX and parent_st.st_uid != euid
    if stat.S_ISSOCK(st.st_mode) and euid != 0 and st.st_uid != euid and sticky_for_us:
        raise SocketPathError(
            errno.EPERM,
            f"{shown}: a socket of another user (uid {st.st_uid}) is in the way, and only "
            f"its owner may remove it from the sticky directory {parent}; use another path",
        )
