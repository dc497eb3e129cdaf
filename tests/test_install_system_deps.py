"""scripts/install-system-deps.sh never stops a service it did not start.

The script runs against stand-ins for apt-get, systemctl, service and id on PATH: a
fake package install that starts services the way Debian's postinst does (through
policy-rc.d), and a service table in a file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "install-system-deps.sh"

APT_GET = """#!/bin/bash
# postinst: start each service unless policy-rc.d forbids it (exit 101)
[ "$1" = install ] || exit 0
for svc in prometheus prometheus-node-exporter nginx; do
    if [ -x "$POLICY_RC_D" ]; then "$POLICY_RC_D" "$svc" start; rc=$?; else rc=0; fi
    if [ "$rc" != 101 ] || [ "$svc" = "$STUBBORN" ]; then echo "$svc" >> "$STATE/running"; fi
done
"""
SYSTEMCTL = """#!/bin/bash
case "$1" in
    is-active) grep -qx "$3" "$STATE/running" ;;
    stop) echo "$2" >> "$STATE/stopped"; grep -vx "$2" "$STATE/running" > "$STATE/r" || true
          mv "$STATE/r" "$STATE/running" ;;
esac
"""


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {
        "apt-get": APT_GET,
        "systemctl": SYSTEMCTL,
        "service": "#!/bin/bash\nexit 1\n",
        "id": "#!/bin/bash\necho 0\n",
    }.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for tool in ("sort", "tee", "chmod", "rm", "grep", "mv", "cat"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "running").write_text("")
    return tmp_path


def run_script(root: Path, *, running: list[str], stubborn: str = "") -> tuple[str, list[str]]:
    state = root / "state"
    (state / "running").write_text("".join(f"{s}\n" for s in running))
    env = {
        "PATH": str(root / "bin"),
        "STATE": str(state),
        "POLICY_RC_D": str(root / "policy-rc.d"),
        "STUBBORN": stubborn,
    }
    done = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    stopped = state / "stopped"
    return done.stderr, stopped.read_text().split() if stopped.exists() else []


def test_nothing_running_before_is_stopped_and_the_install_starts_nothing(stubs: Path) -> None:
    err, stopped = run_script(stubs, running=["nginx", "prometheus"])
    assert "installing" in err
    assert stopped == []
    assert (stubs / "state" / "running").read_text().split() == ["nginx", "prometheus"]
    assert not (stubs / "policy-rc.d").exists()  # removed after the install


def test_a_service_the_install_started_anyway_is_stopped_and_only_that(stubs: Path) -> None:
    err, stopped = run_script(stubs, running=["nginx"], stubborn="prometheus-node-exporter")
    assert stopped == ["prometheus-node-exporter"]
    assert "stopping prometheus-node-exporter, which the install started" in err
    assert (stubs / "state" / "running").read_text().split() == ["nginx"]


def test_an_existing_policy_is_left_alone(stubs: Path) -> None:
    policy = stubs / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    run_script(stubs, running=[])
    assert policy.read_text() == "#!/bin/sh\nexit 101\n"


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
