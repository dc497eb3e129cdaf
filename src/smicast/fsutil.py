"""Files we create: mode 0600, never through a symlink, never over something that exists.

Telemetry can name users and command lines, so output is owner-only. `O_NOFOLLOW`
refuses a symlink planted at the final path component; `O_EXCL` refuses any existing
file, so a pre-created file with looser permissions is never written into.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o600
_CREATE_FLAGS: Final = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_MAX_TEMP_TRIES: Final = 64


class OutputError(OSError):
    """A file could not be written; the message names the file and the reason."""


def output_error(path: Path, exc: OSError) -> OutputError:
    """`exc` as an OutputError naming `path` (unchanged if it already is one)."""
    if isinstance(exc, OutputError):
        return exc
    return OutputError(exc.errno, _describe(path, exc))


def _describe(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP or (exc.errno == errno.EEXIST and path.is_symlink()):
        return f"{path}: refusing to write through a symbolic link"
    if exc.errno == errno.EEXIST:
        return f"{path}: file exists; refusing to overwrite it"
    if exc.errno == errno.ENOSPC:
        return f"{path}: no space left on device"
    return f"{path}: {exc.strerror or exc}"


def create_new(path: Path) -> int:
    """Open a new file for writing (0600, no symlink, must not exist); returns the fd."""
    try:
        return os.open(path, _CREATE_FLAGS, FILE_MODE)
    except OSError as exc:
        raise OutputError(exc.errno, _describe(path, exc)) from exc


def write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        raise OutputError(exc.errno, _describe(path, exc)) from exc


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a sibling temp file (0600, no symlink), fsync, rename.

    Readers of `path` see the old content or the new, never a half-written file;
    on any failure the temp file is removed and `path` is untouched. Errors name
    `path` (the user's), never the temporary name, unless the temporary name is
    itself the problem (a symlink planted there).
    """
    if path.name in ("", ".", "..") or path.is_dir():
        raise OutputError(errno.EISDIR, f"{path}: is a directory; give a file name")
    fd, tmp = -1, path
    for n in range(_MAX_TEMP_TRIES + 1):
        tmp = path.with_name(f"{path.name}.tmp" if n == 0 else f"{path.name}.tmp.{n}")
        try:
            fd = os.open(tmp, _CREATE_FLAGS, FILE_MODE)
            break
        except FileExistsError:
            if tmp.is_symlink():
                raise OutputError(
                    errno.ELOOP, _describe(tmp, OSError(errno.ELOOP, "symlink"))
                ) from None
            continue
        except OSError as exc:  # no such directory, not writable...
            raise OutputError(exc.errno, _describe(path, exc)) from exc
    if fd < 0:
        raise OutputError(errno.EEXIST, f"{path}: no free temporary name beside it")
    try:
        write_all(fd, data, path)
        try:
            os.fsync(fd)
        except OSError as exc:
            raise OutputError(exc.errno, _describe(path, exc)) from exc
        fd, closing = -1, fd
        try:
            os.close(closing)
        except OSError as exc:  # NFS and friends report write errors at close
            raise OutputError(exc.errno, _describe(path, exc)) from exc
        if path.is_symlink():
            raise OutputError(errno.ELOOP, _describe(path, OSError(errno.ELOOP, "symlink")))
        try:
            tmp.replace(path)
        except OSError as exc:
            raise OutputError(exc.errno, _describe(path, exc)) from exc
        fsync_dir(path.parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def fsync_dir(directory: Path) -> None:
    """Make a new or renamed entry's name survive power loss; best effort."""
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_capped(path: Path, max_bytes: int, *, follow_symlinks: bool = True) -> bytes:
    """At most `max_bytes + 1` bytes of `path`: a result longer than `max_bytes` means the
    file is too large (the caller says so in its own words). OSError as `open` raises it;
    with `follow_symlinks=False` a symbolic link is refused (ELOOP)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        return f.read(max_bytes + 1)
