"""`[log] format = "json"` as operators use it: `ephyto node serve` writes one JSON object
per line (time, level, logger, message), and `ephyto registry serve` refuses a bad
`--metrics` in one line, starting nothing (issue 12)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from node.demo.network import free_port
from node.identity.config import dump_config, load_config
from tests.cli.test_cert_cli import ephyto
from tests.integration.test_node_serve import Server, run


def test_node_serve_logs_json_lines_for_log_shippers(tmp_path: Path) -> None:
    registry_dir, node_dir = tmp_path / "registry", tmp_path / "nl"
    run("registry", "init", "--dir", registry_dir)
    run("node", "init", "--country", "NL", "--name", "NVWA", "--dir", node_dir)
    run("node", "configure", "--dir", node_dir, "--registry",
        f"http://127.0.0.1:{free_port()}/directory.json",  # nobody listens: warnings
        "--anchor", registry_dir / "maintainers" / "maintainers.json",
        "--api-port", str(free_port()))  # fmt: skip
    path = node_dir / "node.toml"
    path.write_text(dump_config(dataclasses.replace(load_config(path), log_format="json")))
    server = Server("nl", ["node", "serve", "--dir", str(node_dir)], tmp_path)
    try:
        server.wait_for(re.compile(r"^node NL ready: "))
        assert server.terminate() == 0, server.output()
    finally:
        server.close()
    lines = server.stderr.read_text().splitlines()
    documents = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(d) for d in documents)
    ready = [d for d in documents if d["message"].startswith("node NL ready: ")]
    assert ready and ready[0]["level"] == "INFO" and ready[0]["logger"] == "node.service"
    assert any(d["level"] == "WARNING" for d in documents)  # the registry is not there


def test_registry_serve_refuses_a_bad_metrics_address(tmp_path: Path) -> None:
    run("registry", "init", "--dir", tmp_path / "registry")
    for bad in ("nowhere", "127.0.0.1:99999", "[::1"):
        result = ephyto("registry", "serve", "--dir", tmp_path / "registry", "--metrics", bad)
        assert result.returncode == 2
        assert result.stderr.startswith("ephyto: error: --metrics: "), result.stderr
        assert "Traceback" not in result.stderr
    result = ephyto("registry", "serve", "--dir", tmp_path / "registry", "--log-format", "yaml")
    assert result.returncode == 2 and "invalid choice: 'yaml'" in result.stderr
