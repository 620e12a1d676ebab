"""`ephyto node rotate-keys --finish` and `ephyto registry show CC`, as operators run them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.ephyto_cli import ephyto, ok


def test_help_names_finish() -> None:
    result = ephyto("node", "rotate-keys", "--help")
    assert result.returncode == 0
    assert "--finish" in result.stdout and "keys/retired/" in result.stdout


def test_finish_is_refused_in_one_line_until_due_and_show_lists_rotations(tmp_path: Path) -> None:
    node, registry = tmp_path / "n", tmp_path / "r"
    ok("node", "init", "--country", "NL", "--name", "N", "--dir", node)
    ok("registry", "init", "--dir", registry)
    ok("registry", "add", node / "enrolment-request.json", "--dir", registry)
    ok("registry", "publish", "--dir", registry)
    ok("node", "configure", "--dir", node, "--registry", "http://127.0.0.1:9/directory.json",
        "--anchor", registry / "maintainers" / "maintainers.json")  # fmt: skip

    # No directory cached yet: refused, saying how to get one.
    result = ephyto("node", "rotate-keys", "--finish", "--dir", node)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "ephyto node serve" in result.stderr and "nothing changed" in result.stderr

    shutil.copy(registry / "current.json", node / "directory.json")
    result = ephyto("node", "rotate-keys", "--finish", "--dir", node)
    assert result.returncode == 2 and "no rotation to finish" in result.stderr

    rotated = ok("node", "rotate-keys", "--dir", node)
    new_id = re.search(r"new signing key id\s+(\S+)", rotated)
    assert new_id is not None
    before = (node / "node.toml").read_bytes()
    result = ephyto("node", "rotate-keys", "--finish", "--dir", node)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "send" in result.stderr and "rotation-request.json" in result.stderr

    shown = ok("registry", "show", "NL", "--dir", registry)
    assert "key rotations      none" in shown
    ok("registry", "rotate", node / "rotation-request.json", "--overlap", "2", "--dir", registry)
    ok("registry", "publish", "--dir", registry)
    shown = ok("registry", "show", "NL", "--dir", registry)
    assert "key rotations      1" in shown
    assert re.search(rf"new signing key id\s+{new_id[1]}", shown)
    assert "new keys valid from" in shown and "old keys valid until" in shown

    shutil.copy(registry / "current.json", node / "directory.json")
    result = ephyto("node", "rotate-keys", "--finish", "--dir", node)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "the overlap runs until" in result.stderr and "nothing changed" in result.stderr
    assert (node / "node.toml").read_bytes() == before
    assert (node / "keys/signing.next.key").exists() and not (node / "keys/retired").exists()


def test_a_node_toml_naming_half_of_the_next_tls_identity_is_refused(tmp_path: Path) -> None:
    """A next TLS key without its certificate (a hand edit gone wrong): --finish refuses
    in one line, and nothing changes."""
    node, registry = tmp_path / "n", tmp_path / "r"
    ok("node", "init", "--country", "NL", "--name", "N", "--dir", node)
    ok("registry", "init", "--dir", registry)
    ok("registry", "add", node / "enrolment-request.json", "--dir", registry)
    ok("registry", "publish", "--dir", registry)
    ok("node", "configure", "--dir", node, "--registry", "http://127.0.0.1:9/directory.json",
        "--anchor", registry / "maintainers" / "maintainers.json")  # fmt: skip
    ok("node", "rotate-keys", "--dir", node)
    shutil.copy(registry / "current.json", node / "directory.json")
    config = node / "node.toml"
    edited = re.sub(r"(?m)^next_tls_certificate = .*\n", "", config.read_text())
    assert edited != config.read_text()
    config.write_text(edited)
    before = {p: p.read_bytes() for p in sorted(node.rglob("*")) if p.is_file()}
    result = ephyto("node", "rotate-keys", "--finish", "--dir", node)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "without the other" in result.stderr and "nothing changed" in result.stderr
    assert {p: p.read_bytes() for p in sorted(node.rglob("*")) if p.is_file()} == before
