"""`ephyto node rotate-keys` and `ephyto registry rotate`, run as operators run them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.identity.config import load_config
from tests.cli.test_cert_cli import ephyto


@pytest.mark.parametrize("command", [("node", "rotate-keys"), ("registry", "rotate")])
def test_help(command: tuple[str, str]) -> None:
    result = ephyto(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "rotation" in result.stdout


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    node, registry = tmp_path / "n", tmp_path / "r"
    assert ephyto("node", "init", "--country", "NL", "--name", "N", "--dir", node).returncode == 0
    assert ephyto("registry", "init", "--dir", registry).returncode == 0
    added = ephyto("registry", "add", node / "enrolment-request.json", "--dir", registry)
    assert added.returncode == 0, added.stderr
    return node, registry


def test_rotate_end_to_end_and_twice_is_refused_in_one_line(tmp_path: Path) -> None:
    node, registry = _setup(tmp_path)
    result = ephyto("node", "rotate-keys", "--dir", node)
    assert result.returncode == 0, result.stderr
    assert "PRIVATE KEY" not in result.stdout
    assert load_config(node / "node.toml").keys.next_signing is not None
    again = ephyto("node", "rotate-keys", "--dir", node)
    assert again.returncode == 2
    assert len(again.stderr.splitlines()) == 1
    assert "rotation is pending" in again.stderr
    request = node / "rotation-request.json"
    recorded = ephyto("registry", "rotate", request, "--overlap", "24", "--dir", registry)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded the key rotation of NL" in recorded.stdout
    new_pin = re.search(r"new TLS pin\s+(\S+)", result.stdout)
    assert new_pin is not None and f"new TLS pin            {new_pin[1]}" in recorded.stdout
    log = ephyto("registry", "log", "--dir", registry)
    assert "rotate" in log.stdout
    published = ephyto("registry", "publish", "--dir", registry)
    assert published.returncode == 0, published.stderr


@pytest.mark.parametrize(
    ("overlap", "message"),
    [
        ("abc", "expected whole hours"),
        ("0", "expected whole hours"),
        ("-3", "whole hours"),
        ("30s", "from 1 minute"),  # a duration, but too short
        ("91d", "to 90 days"),
        ("9" * 30, "whole hours"),  # too large for a timedelta: refused, not a traceback
    ],
)
def test_bad_overlap_is_one_line(tmp_path: Path, overlap: str, message: str) -> None:
    node, registry = _setup(tmp_path)
    assert ephyto("node", "rotate-keys", "--dir", node).returncode == 0
    result = ephyto(
        "registry", "rotate", node / "rotation-request.json", f"--overlap={overlap}",
        "--dir", registry,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert not (registry / "rotations").exists()


def test_a_bad_request_is_one_line(tmp_path: Path) -> None:
    _, registry = _setup(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"body": {"country": "NL"}}')
    result = ephyto("registry", "rotate", bad, "--overlap", "24", "--dir", registry)
    assert result.returncode == 2
    assert result.stderr.startswith("ephyto: error: ")
    assert len(result.stderr.splitlines()) == 1
    missing = ephyto("node", "rotate-keys", "--dir", tmp_path / "none")
    assert missing.returncode == 2
    assert len(missing.stderr.splitlines()) == 1
