"""Reading the small generated files of /proc and /sys, cheaply."""

from __future__ import annotations

import os

_FIRST_READ = 4096


def read_bytes(path: str) -> bytes:
    """The whole file. os.open/os.read costs half of Path.read_bytes, and a small first
    read avoids allocating a large buffer per file; kernel files are generated whole, so
    only a full first chunk (a long cmdline, a big cpuinfo) can have more behind it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _FIRST_READ)
        if len(data) == _FIRST_READ:
            parts = [data]
            while chunk := os.read(fd, 65536):
                parts.append(chunk)
            data = b"".join(parts)
        return data
    finally:
        os.close(fd)


def read_text(path: str) -> str:
    return read_bytes(path).decode()
