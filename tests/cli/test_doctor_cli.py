"""`ephyto doctor`, run as an operator runs it: in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cert_cli import ephyto


def test_doctor_has_help() -> None:
    result = ephyto("doctor", "--help")
    assert result.returncode == 0
    assert "usage: ephyto doctor" in result.stdout
    for option in ("--dir", "--json", "--offline", "--timeout"):
        assert option in result.stdout


def test_a_directory_without_a_node_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = ephyto("doctor", "--dir", tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.startswith("ephyto: error: ")
    assert len(result.stderr.splitlines()) == 1
    assert "no node.toml" in result.stderr and "ephyto node init" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_bad_timeout_is_a_usage_error(tmp_path: Path) -> None:
    result = ephyto("doctor", "--dir", tmp_path, "--timeout", "soon")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def _unconfigured_node(tmp_path: Path) -> Path:
    directory = tmp_path / "nl"
    made = ephyto("node", "init", "--country", "NL", "--name", "NVWA", "--dir", directory)
    assert made.returncode == 0, made.stderr
    return directory


def test_json_is_a_list_of_findings(tmp_path: Path) -> None:
    directory = _unconfigured_node(tmp_path)

    result = ephyto("doctor", "--dir", directory, "--json")

    assert result.returncode == 1  # no registry configured: a problem
    findings = json.loads(result.stdout)
    assert isinstance(findings, list) and findings
    for finding in findings:
        assert set(finding) == {"check", "status", "detail", "action"}
        assert finding["status"] in ("ok", "warning", "problem")
        assert (finding["action"] is None) == (finding["status"] == "ok")
    config = next(f for f in findings if f["check"] == "config")
    assert config["status"] == "problem"
    assert "ephyto node configure" in config["action"]


def test_the_report_is_one_line_per_check_with_what_to_do(tmp_path: Path) -> None:
    directory = _unconfigured_node(tmp_path)
    (directory / "keys/tls.key").chmod(0o640)

    result = ephyto("doctor", "--dir", directory, "--offline")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"ephyto doctor: the node in {directory} (offline)"
    assert any(line.startswith("problem  config") and "-> run `ephyto node configure" in line
               for line in lines)  # fmt: skip
    tls = next(line for line in lines if line.startswith("warning  TLS key"))
    assert f"-> chmod 600 {directory / 'keys/tls.key'}" in tls
    assert lines[-1] == "3 ok, 1 warning(s), 1 problem(s)"
    assert "PRIVATE KEY" not in result.stdout and "Traceback" not in result.stderr
