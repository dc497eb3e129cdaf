"""A real Prometheus server scrapes smicast; its HTTP API shows what it stored."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.support import (
    REPO_ROOT,
    SmicastServer,
    free_port,
    http_get,
    require_tool,
    running,
    wait_until,
)

pytestmark = pytest.mark.integration

GRAFANA_DASHBOARD = REPO_ROOT / "examples" / "grafana-dashboard.json"
# The first scrape lands up to a scrape interval after start-up; with Prometheus's own
# start-up that is 5-6 s on a small machine.
FIRST_DATA_TIMEOUT_S = 20

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: smicast
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


@dataclass
class Prometheus:
    url: str
    log_path: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        got = http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        assert got.status == 200, (promql, got.body[:500])
        answer = got.json()
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


@pytest.fixture(scope="module")
def prometheus(
    smicast: SmicastServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = require_tool("prometheus")
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(CONFIG.format(port=smicast.port))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    log_path = directory / "prometheus.log"
    with running(argv, log_path):
        server = Prometheus(f"http://127.0.0.1:{port}", log_path)
        yield server


@pytest.fixture(scope="module")
def scraped(prometheus: Prometheus) -> Prometheus:
    """Prometheus once it holds smicast's samples: all_smi_up 1 and the 8 GPUs."""

    def has_data() -> bool | None:
        try:
            up = prometheus.query("all_smi_up == 1")
            gpus = prometheus.query("all_smi_gpu_utilization")
        except (OSError, AssertionError):
            return None  # not listening or not ready yet
        return True if up and len(gpus) == 8 else None

    wait_until(
        has_data,
        FIRST_DATA_TIMEOUT_S,
        "Prometheus to store all_smi_up == 1 and 8 all_smi_gpu_utilization series",
        prometheus.log_path,
        interval_s=0.25,
    )
    return prometheus


def test_prometheus_scrapes_smicast(scraped: Prometheus, smicast: SmicastServer) -> None:
    target = f"127.0.0.1:{smicast.port}"
    up = scraped.query("all_smi_up")
    assert [s["value"][1] for s in up] == ["1"]
    assert up[0]["metric"]["instance"] == target
    assert scraped.query(f'up{{job="smicast", instance="{target}"}}')[0]["value"][1] == "1"

    gpus = scraped.query("all_smi_gpu_utilization")
    assert sorted(int(s["metric"]["gpu_index"]) for s in gpus) == list(range(8))
    for series in gpus:
        assert 0 <= float(series["value"][1]) <= 100
        assert series["metric"]["gpu"].startswith("NVIDIA")

    targets = http_get(f"{scraped.url}/api/v1/targets").json()["data"]["activeTargets"]
    ours = [t for t in targets if t["labels"]["instance"] == target]
    assert len(ours) == 1
    assert ours[0]["health"] == "up", ours[0]
    assert ours[0]["lastError"] == "", ours[0]


def grafana_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_grafana_dashboard_queries_return_data(scraped: Prometheus) -> None:
    """Every panel of examples/grafana-dashboard.json finds data in a real scrape."""
    queries = grafana_queries()
    assert len(queries) >= 8
    for title, expr in queries:
        assert "all_smi_" in expr, title
        # Grafana's "All" is the regex `.+`; the template variables become that here.
        promql = re.sub(r"\$(instance|gpu)\b", ".+", expr)
        assert "$" not in promql, (title, expr)
        assert scraped.query(promql), f"panel {title!r}: no data for {promql}"

    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"instance", "gpu"} <= variables.keys()
    # label_values(all_smi_up, instance) and label_values(..., gpu_index) have values:
    assert scraped.query("all_smi_up")[0]["metric"]["instance"]
    assert len(scraped.query('all_smi_gpu_memory_total_bytes{instance=~".+"}')) == 8
