"""`ephyto demo --keep-running --json` gives scripts every process's metrics and
readiness URLs (issue 12), and each answers: the nodes', the registry's and the hub's."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

from tests.cli.test_demo_cli import _demo


def _ready(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert json.loads(response.read())["ready"] is True
        return int(response.status)


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def test_every_process_of_the_demo_says_where_its_metrics_and_readiness_are(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "demo"
    with _demo(workdir, "--keep-running", "--json") as demo:
        while demo.line(demo.stdout) != "]":
            pass
        reach = json.loads(demo.line(demo.stdout))
        for node in reach["nodes"]:
            assert node["metrics"].startswith("http://127.0.0.1:"), node
            assert node["metrics"].endswith("/metrics") and node["ready"].endswith("/health/ready")
            assert _ready(node["ready"]) == 200
            assert "ephyto_messages_sent_total" in _metrics(node["metrics"])
        assert _ready(reach["registry_ready"]) == 200
        assert "ephyto_registry_published_version" in _metrics(reach["registry_metrics"])
        assert _ready(reach["hub_ready"]) == 200
        assert "ephyto_hub_envelopes_total" in _metrics(reach["hub_metrics"])
        urls = [n["metrics"] for n in reach["nodes"]] + [
            reach["registry_metrics"],
            reach["hub_metrics"],
        ]
        assert len(set(urls)) == 6  # a listener of its own per process
        assert demo.stop(signal.SIGTERM) == 0
