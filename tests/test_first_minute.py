"""A new machine's first minute: the Makefile's setup step and `make run`'s port check.

Each case runs the real script (or make itself) with a fake interpreter, a fake `id`
and a PATH that lacks or holds `apt-get`, and asserts the one message and the status.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "scripts" / "bootstrap-venv.sh"
CHECK_PORT = ROOT / "scripts" / "check-port.py"
BASH = shutil.which("bash") or "/bin/bash"
MAKE = shutil.which("make")


def write_exe(path: Path, body: str) -> Path:
    path.write_text("#!" + BASH + "\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def fake_python(bin_dir: Path, version: str, *, has_venv: bool, venv_marker: Path) -> Path:
    """Prints `version`; `import ensurepip, venv` works when has_venv or the marker exists."""
    return write_exe(
        bin_dir / "python3",
        f"""
case "$*" in
  *sys.version_info*) echo {version} ;;
  *ensurepip*) {"exit 0" if has_venv else f'[ -e "{venv_marker}" ] || exit 1'} ;;
  "-m venv "*) mkdir -p "$3/bin" && echo created > "$3/created" ;;
  *) exit 3 ;;
esac
""",
    )


def setup_bin(tmp_path: Path, *, uid: int, apt: bool) -> tuple[Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_exe(bin_dir / "id", f"echo {uid}\n")
    log = tmp_path / "apt.log"
    if apt:
        # "Installs" the venv package by creating the marker the fake interpreter looks for.
        write_exe(
            bin_dir / "apt-get",
            f'echo "$*" >> "{log}"\ncase "$1" in install) touch "{tmp_path}/venv-installed";; esac\n',
        )
    for tool in ("mkdir", "rm", "touch"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    return bin_dir, log


def run_bootstrap(bin_dir: Path, python: str, venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(BOOTSTRAP), python, str(venv)],
        env={"PATH": str(bin_dir), "HOME": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_old_python_names_found_and_needed_versions_and_python_variable(tmp_path: Path) -> None:
    bin_dir, _ = setup_bin(tmp_path, uid=1000, apt=False)
    fake_python(bin_dir, "3.10.12", has_venv=True, venv_marker=tmp_path / "m")
    result = run_bootstrap(bin_dir, "python3", tmp_path / "venv")
    assert result.returncode == 1
    assert "found Python 3.10.12" in result.stderr
    assert "needs Python 3.11 or newer" in result.stderr
    assert "make run PYTHON=python3.11" in result.stderr
    assert result.stderr.count("\n") == 1  # one message
    assert not (tmp_path / "venv").exists()


def test_missing_interpreter_says_how_to_name_one(tmp_path: Path) -> None:
    bin_dir, _ = setup_bin(tmp_path, uid=1000, apt=False)
    result = run_bootstrap(bin_dir, "python3.99", tmp_path / "venv")
    assert result.returncode == 1
    assert "no Python interpreter 'python3.99'" in result.stderr and "PYTHON=" in result.stderr


def test_missing_venv_module_without_root_gives_the_exact_command(tmp_path: Path) -> None:
    bin_dir, log = setup_bin(tmp_path, uid=1000, apt=True)
    fake_python(bin_dir, "3.12.3", has_venv=False, venv_marker=tmp_path / "venv-installed")
    result = run_bootstrap(bin_dir, "python3", tmp_path / "venv")
    assert result.returncode == 1
    assert "the venv module is missing" in result.stderr
    assert "Run: sudo apt-get install python3.12-venv" in result.stderr
    assert not log.exists()  # never tried to install without root
    assert not (tmp_path / "venv").exists()


def test_missing_venv_module_and_no_apt_as_root_gives_the_exact_command(tmp_path: Path) -> None:
    bin_dir, _ = setup_bin(tmp_path, uid=0, apt=False)
    fake_python(bin_dir, "3.11.2", has_venv=False, venv_marker=tmp_path / "venv-installed")
    result = run_bootstrap(bin_dir, "python3", tmp_path / "venv")
    assert result.returncode == 1
    assert "apt-get install python3.11-venv" in result.stderr


def test_missing_venv_module_as_root_with_apt_installs_the_versioned_package(
    tmp_path: Path,
) -> None:
    bin_dir, log = setup_bin(tmp_path, uid=0, apt=True)
    fake_python(bin_dir, "3.11.2", has_venv=False, venv_marker=tmp_path / "venv-installed")
    result = run_bootstrap(bin_dir, "python3", tmp_path / "venv")
    assert result.returncode == 0, result.stderr
    assert "installing python3.11-venv" in result.stderr
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq python3.11-venv"]
    assert (tmp_path / "venv" / "created").exists()


def test_half_made_venv_from_an_earlier_failure_is_started_again(tmp_path: Path) -> None:
    bin_dir, _ = setup_bin(tmp_path, uid=1000, apt=False)
    fake_python(bin_dir, "3.11.2", has_venv=True, venv_marker=tmp_path / "m")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "leftover").write_text("x")
    result = run_bootstrap(bin_dir, "python3", venv)
    assert result.returncode == 0, result.stderr
    assert (venv / "created").exists() and not (venv / "leftover").exists()


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_setup_step_runs_the_check(tmp_path: Path) -> None:
    """The Makefile's own setup target, with the old interpreter: one message, make fails."""
    bin_dir, _ = setup_bin(tmp_path, uid=1000, apt=False)
    fake = fake_python(bin_dir, "3.10.12", has_venv=True, venv_marker=tmp_path / "m")
    (bin_dir / "bash").symlink_to(BASH)
    assert MAKE is not None
    result = subprocess.run(
        [MAKE, "-C", str(ROOT), "venv", f"PYTHON={fake}", f"VENV={tmp_path / 'venv'}"],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "found Python 3.10.12" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_taken_names_the_make_variable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(CHECK_PORT), str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ},
        )
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert f"make run PORT={port + 1}" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_free_and_bad_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ok = subprocess.run(
        [sys.executable, str(CHECK_PORT), str(port)], capture_output=True, text=True, timeout=30
    )
    assert ok.returncode == 0 and ok.stderr == ""
    bad = subprocess.run(
        [sys.executable, str(CHECK_PORT), "http"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "PORT must be a number" in bad.stderr


@pytest.mark.skipif(
    MAKE is None or not (ROOT / ".venv" / ".installed-stamp").exists(),
    reason="needs make and the project's installed .venv",
)
def test_make_run_on_a_taken_port_says_so_without_a_traceback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        assert MAKE is not None
        result = subprocess.run(
            [MAKE, "-C", str(ROOT), "-q", "venv"], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            pytest.skip("the .venv is out of date; `make run` would reinstall it first")
        result = subprocess.run(
            [MAKE, "-C", str(ROOT), "run", f"PORT={port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"port {port} is already in use; serve on another one with: make run PORT=" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr + result.stdout
