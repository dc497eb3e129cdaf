"""Files we write: owner-only, atomic, never through a symbolic link (reference §2.10, §6.2)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from smicast.fsutil import FILE_MODE, OutputError, atomic_write, create_new, write_all


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def leftovers(directory: Path, name: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(f"{name}.tmp"))


def test_atomic_write_creates_an_owner_only_file(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "snap.json"
    data = b'{"schema":1}\n' + "ü".encode() * 10_000
    atomic_write(path, data)
    assert path.read_bytes() == data
    assert mode(path) == FILE_MODE == 0o600
    assert leftovers(tmp_path, "snap.json") == []


def test_atomic_write_replaces_an_existing_file_by_rename(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(b"old content that is longer than the new one")
    path.chmod(0o644)
    old_inode = path.stat().st_ino
    held = path.open("rb")  # a reader holding the old file keeps seeing the old content
    try:
        atomic_write(path, b"new")
        assert path.read_bytes() == b"new"
        assert mode(path) == 0o600
        assert path.stat().st_ino != old_inode  # a new file renamed over, not rewritten
        assert held.read() == b"old content that is longer than the new one"
    finally:
        held.close()
    assert leftovers(tmp_path, "snap.json") == []


def test_atomic_write_empty_data(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    atomic_write(path, b"")
    assert path.read_bytes() == b""


def test_dangling_symlink_at_the_temp_name_is_refused(tmp_path: Path) -> None:
    # reference §6.2 #13: nothing is written through it, its target is not created
    path = tmp_path / "snap.json"
    target = tmp_path / "elsewhere" / "victim"
    target.parent.mkdir()
    (tmp_path / "snap.json.tmp").symlink_to(target)
    with pytest.raises(OutputError) as info:
        atomic_write(path, b"data")
    assert "symbolic link" in str(info.value.strerror)
    assert not target.exists()
    assert not path.exists()
    assert (tmp_path / "snap.json.tmp").is_symlink()  # not ours to remove


def test_symlink_to_an_existing_file_at_the_temp_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    (tmp_path / "snap.json.tmp").symlink_to(target)
    with pytest.raises(OutputError):
        atomic_write(path, b"data")
    assert target.read_bytes() == b"keep me"
    assert not path.exists()


def test_symlink_at_the_path_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    path.symlink_to(target)
    with pytest.raises(OutputError) as info:
        atomic_write(path, b"data")
    assert "symbolic link" in str(info.value.strerror)
    assert path.is_symlink()
    assert target.read_bytes() == b"keep me"
    assert leftovers(tmp_path, "snap.json") == []  # the temp file is removed on failure


def test_a_stale_temp_file_is_left_alone_and_another_name_used(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    stale = tmp_path / "snap.json.tmp"
    stale.write_bytes(b"someone else's")
    atomic_write(path, b"data")
    assert path.read_bytes() == b"data"
    assert stale.read_bytes() == b"someone else's"
    assert leftovers(tmp_path, "snap.json") == ["snap.json.tmp"]


def test_no_free_temp_name_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    (tmp_path / "snap.json.tmp").write_bytes(b"")
    for n in range(1, 65):
        (tmp_path / f"snap.json.tmp.{n}").write_bytes(b"")
    with pytest.raises(OutputError, match="no free temporary name"):
        atomic_write(path, b"data")
    assert not path.exists()


def test_missing_directory_is_an_output_error(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "snap.json"
    with pytest.raises(OutputError) as info:
        atomic_write(path, b"data")
    # The path the user gave, not the temporary file beside it.
    assert info.value.strerror == f"{path}: No such file or directory"


@pytest.mark.parametrize("name", [".", "..", "", "dir"])
def test_a_directory_as_the_output_is_refused_before_anything_is_written(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dir").mkdir()
    monkeypatch.chdir(tmp_path)
    path = Path(name)
    with pytest.raises(OutputError) as info:
        atomic_write(path, b"data")
    assert info.value.strerror == f"{path}: is a directory; give a file name"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


def test_a_failed_fsync_closes_the_temp_file_and_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[int] = []
    real_open = os.open

    def tracking_open(*args: object, **kwargs: object) -> int:
        fd = real_open(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(fd)
        return fd

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "open", tracking_open)
    monkeypatch.setattr(os, "fsync", failing_fsync)  # an OS edge with no seam
    path = tmp_path / "snap.json"
    with pytest.raises(OutputError, match="Input/output error"):
        atomic_write(path, b"data")
    monkeypatch.undo()
    for fd in opened:
        with pytest.raises(OSError):
            os.fstat(fd)
    assert list(tmp_path.iterdir()) == []


def test_failure_at_rename_is_an_output_error_and_removes_the_temp_file(tmp_path: Path) -> None:
    # A directory where the file should go: the temp file is written, the rename fails.
    path = tmp_path / "snap.json"
    path.mkdir()
    with pytest.raises(OutputError) as info:
        atomic_write(path, b"data")
    assert str(path) in str(info.value.strerror)
    assert path.is_dir()
    assert leftovers(tmp_path, "snap.json") == []


def test_create_new_makes_an_owner_only_file(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "trace.ndjson"
    fd = create_new(path)
    try:
        write_all(fd, b"line\n", path)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"line\n"
    assert mode(path) == 0o600


def test_create_new_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "trace.ndjson"
    path.write_bytes(b"keep")
    path.chmod(0o644)
    with pytest.raises(OutputError) as info:
        create_new(path)
    assert "file exists" in str(info.value.strerror)
    assert path.read_bytes() == b"keep"


@pytest.mark.parametrize("dangling", [True, False])
def test_create_new_refuses_a_symlink(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "target"
    if not dangling:
        target.write_bytes(b"keep")
    path = tmp_path / "trace.ndjson"
    path.symlink_to(target)
    with pytest.raises(OutputError) as info:
        create_new(path)
    assert "symbolic link" in str(info.value.strerror)
    assert target.exists() is not dangling
    if not dangling:
        assert target.read_bytes() == b"keep"


def test_read_capped_reads_one_byte_past_the_cap_and_can_refuse_links(tmp_path: Path) -> None:
    from smicast.fsutil import read_capped

    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_capped(path, 1000) == b"x" * 100
    assert read_capped(path, 10) == b"x" * 11  # longer than the cap: the caller says too large
    link = tmp_path / "link"
    link.symlink_to(path)
    assert read_capped(link, 1000) == b"x" * 100
    with pytest.raises(OSError) as info:
        read_capped(link, 1000, follow_symlinks=False)
    assert info.value.errno == errno.ELOOP
