"""`ephyto doctor` against a real network (tests/integration/test_doctor.py's world) when
the node's key files are encrypted: it decrypts them with the passphrase node.toml names,
so its own checks pass, and it opens its pinned TLS connections to partners and the hub
with the encrypted TLS key (the passphrase handed to the TLS context, as the node does).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.doctor.checks import worst
from node.identity.config import load_config
from node.identity.keys import is_encrypted_pem
from node.identity.protect import protect_keys
from node.identity.protection import SecretSource
from tests.integration.test_doctor import (
    World,
    _by_check,
    _doctor,
    _problems,
    world,  # noqa: F401  (the fixture)
)

PASSPHRASE = "world passphrase"
VARIABLE = "EPHYTO_TEST_DOCTOR_WORLD_PASSPHRASE"


def _protect(node_dir: Path, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ephyto node protect-keys` on the node, its passphrase by `kind` (env or file)."""
    if kind == "env":
        monkeypatch.setenv(VARIABLE, PASSPHRASE)
        source = SecretSource("env", VARIABLE)
    else:
        (tmp_path / "keys.pass").write_text(PASSPHRASE + "\n")
        source = SecretSource("file", "keys.pass")
    protect_keys(node_dir, source, cwd=tmp_path)
    config = load_config(node_dir / "node.toml")
    assert is_encrypted_pem(config.path(config.keys.tls_key).read_bytes())


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["env", "file"])
async def test_a_protected_node_is_healthy_and_reaches_its_partners(
    world: World,  # noqa: F811
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _protect(world.nodes["NL"], kind, tmp_path, monkeypatch)
    await world.serve_partners()

    findings = await _doctor(world.nodes["NL"])

    assert _problems(findings) == []
    assert worst(findings) == "ok", [f for f in findings if f.status != "ok"]
    checks = _by_check(findings)
    assert "decrypts 3 key file(s)" in checks["passphrase"].detail
    for check in ("signing key id", "encryption key id", "TLS pin"):
        assert checks[check].status == "ok", checks[check]
    # TLS with the encrypted key: the partner and the hub accepted the node's certificate.
    assert "our certificate accepted" in checks["partner US"].detail
    assert "our certificate accepted" in checks["hub"].detail


@pytest.mark.asyncio
async def test_without_the_passphrase_the_one_problem_is_the_passphrase(
    world: World,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _protect(world.nodes["NL"], "env", tmp_path, monkeypatch)
    monkeypatch.delenv(VARIABLE)
    await world.serve_partners()

    findings = await _doctor(world.nodes["NL"])

    assert [f.check for f in _problems(findings)] == ["passphrase"]
    checks = _by_check(findings)
    assert "and the connections made with them" in checks["passphrase"].detail
    # What needs no key is still checked: the directory, the registry, this node's entry.
    for check in ("directory", "registry", "listed", "endpoint"):
        assert checks[check].status == "ok", checks[check]
    assert "partner US" not in checks and "hub" not in checks
