"""`ephyto demo`, the README's main command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.test_cert_cli import ephyto


def _processes_under(directory: Path) -> list[str]:
    """Command lines of live processes that mention `directory` (the demo's children)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(directory) in command:
            found.append(command)
    return found


def test_demo_exchanges_both_ways_falls_back_and_leaves_nothing_running(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = ephyto("demo", "--json", "--dir", workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    assert {tuple(sorted(row)) for row in rows} == {
        ("certificate", "from", "latency_ms", "route", "status", "to")
    }
    assert all(row["status"].startswith("delivered") for row in rows), rows
    by_number = {row["certificate"]: row for row in rows}
    # US was down for the first certificate sent to it: it went through the hub.
    assert by_number["NL-DEMO-0000"]["route"] == "hub"
    # CL has no endpoint: reached through the hub only; what CL sends goes direct.
    assert by_number["KE-DEMO-0100"]["route"] == "hub"
    assert by_number["CL-DEMO-0001"]["route"] == "direct"
    assert {row["route"] for row in rows} == {"direct", "hub"}
    assert any("withdrawal" in row["certificate"] for row in rows)
    assert any("replaces" in row["certificate"] for row in rows)
    assert _processes_under(workdir) == []


def test_demo_has_help() -> None:
    result = ephyto("demo", "--help")
    assert result.returncode == 0
    assert "--keep-running" in result.stdout


def test_demo_refuses_a_directory_it_cannot_use(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = ephyto("demo", "--dir", blocker / "demo")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
