"""`promtool check metrics` on what smicast serves, and `promtool check config` on the example."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.support import (
    REPO_ROOT,
    SmicastServer,
    http_get,
    require_tool,
    smicast_server,
)

pytestmark = pytest.mark.integration


def promtool(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require_tool("promtool"), *args], input=stdin, capture_output=True, timeout=30, check=False
    )


# promtool's naming lint objects to three family names that the all-smi wire contract
# fixes (reference §5.6); renaming them would break every all-smi dashboard and the
# Rust `view` client. Any other finding, and any parse error, fails the test.
CONTRACT_NAMES_PROMTOOL_DISLIKES = frozenset(
    f'all_smi_cpu_{what}_count non-histogram and non-summary metrics should not have "_count" suffix'
    for what in ("core", "socket", "thread")
)
LINT_FINDINGS = 3  # promtool's exit status when it only has lint findings


def check_metrics(url: str) -> bytes:
    got = http_get(f"{url}/metrics")
    assert got.status == 200
    assert got.header("content-type").startswith("text/plain"), got.headers
    done = promtool("check", "metrics", stdin=got.body)
    report = (done.stdout + done.stderr).decode(errors="replace")
    findings = {line.strip() for line in report.splitlines() if line.strip()}
    assert findings <= CONTRACT_NAMES_PROMTOOL_DISLIKES, report
    assert done.returncode == (LINT_FINDINGS if findings else 0), report
    return got.body


def test_metrics_pass_promtool(smicast: SmicastServer) -> None:
    body = check_metrics(smicast.url)
    assert b"\nall_smi_gpu_utilization{" in body
    assert b"all_smi_process_" not in body


def test_metrics_with_processes_pass_promtool(tmp_path: Path) -> None:
    require_tool("promtool")
    with smicast_server(tmp_path, "--simulate", "nvidia:8", "--processes") as server:
        body = check_metrics(server.url)
    assert b"\nall_smi_process_memory_used_bytes{" in body


def test_example_prometheus_config_is_valid() -> None:
    done = promtool("check", "config", str(REPO_ROOT / "examples" / "prometheus.yml"))
    assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")


# all-smi types three Tenstorrent families as counters without `_total`; the names are
# its wire contract, so promtool's naming lint on them is expected as well.
TENSTORRENT_COUNTERS_PROMTOOL_DISLIKES = frozenset(
    f'all_smi_tenstorrent_{name} counter metrics should have "_total" suffix'
    for name in ("heartbeat", "arc0_health", "arc3_health")
)


@pytest.mark.parametrize("platform", ["nvidia", "amd", "gaudi", "tenstorrent"])
def test_golden_prometheus_text_passes_promtool(platform: str) -> None:
    text = (REPO_ROOT / "tests" / "data" / "golden" / f"prometheus-{platform}.txt").read_bytes()
    done = promtool("check", "metrics", stdin=text)
    report = (done.stdout + done.stderr).decode(errors="replace")
    findings = {line.strip() for line in report.splitlines() if line.strip()}
    allowed = CONTRACT_NAMES_PROMTOOL_DISLIKES | TENSTORRENT_COUNTERS_PROMTOOL_DISLIKES
    assert findings <= allowed, report
    assert done.returncode == (LINT_FINDINGS if findings else 0), report
