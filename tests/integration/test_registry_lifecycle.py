"""Suspend, reinstate, revoke: each signed and logged, each in the next published directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.directory import Directory, MaintainerSet, NppoNotActive, TrustedDirectory
from tests.ephyto_cli import ephyto, ok, refused


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A one-maintainer registry (`add`, as the demo uses it) with NL and KE published."""
    root = tmp_path_factory.mktemp("lifecycle")
    paths = {"registry": root / "registry"}
    ok("registry", "init", "--dir", paths["registry"], "--maintainer", "ops")
    for cc, name in (("NL", "NVWA"), ("KE", "KEPHIS")):
        paths[cc] = root / cc.lower()
        ok("node", "init", "--country", cc, "--name", name, "--dir", paths[cc])
        out = ok(
            "registry", "add", paths[cc] / "enrolment-request.json", "--dir", root / "registry"
        )
        assert f"enrolled {cc} ({name}); not published yet" in out
    ok("registry", "publish", "--dir", paths["registry"])
    return paths


def _published(reg: Path, trusted: TrustedDirectory) -> Directory:
    ok("registry", "publish", "--dir", reg)
    return trusted.update((reg / "current.json").read_bytes(), datetime.now(UTC))


@pytest.fixture(scope="module")
def trusted(world: dict[str, Path]) -> TrustedDirectory:
    reg = world["registry"]
    anchor = MaintainerSet.from_plain(
        json.loads((reg / "maintainers/maintainers.json").read_text())
    )
    trust = TrustedDirectory(anchor)
    trust.update((reg / "current.json").read_bytes(), datetime.now(UTC))
    return trust


def _dir(world: dict[str, Path]) -> list[str | Path]:
    return ["--dir", world["registry"]]


def test_suspend_then_reinstate(world: dict[str, Path], trusted: TrustedDirectory) -> None:
    reg = world["registry"]
    out = ok(
        "registry", "suspend", "NL", "--reason", "signing key reported lost",
        "--maintainer", "ops", *_dir(world),
    )  # fmt: skip
    assert "NL is now suspended" in out
    assert "suspended" in ok("registry", "show", "NL", *_dir(world))
    # Not before the next publish: the directory published stays as it was.
    assert trusted.current is not None and trusted.current.nppo("NL").status == "active"

    directory = _published(reg, trusted)
    assert directory.nppo("NL").status == "suspended"
    with pytest.raises(NppoNotActive):
        directory.active_nppo("NL")
    with pytest.raises(NppoNotActive):
        directory.signing_key("NL", directory.nppo("NL").keys[0].key_id, datetime.now(UTC))
    assert directory.active_nppo("KE").status == "active"

    assert "already suspended" in refused(
        "registry", "suspend", "NL", "--reason", "again", "--maintainer", "ops", *_dir(world)
    )
    assert "is now active" in ok("registry", "reinstate", "NL", "--maintainer", "ops", *_dir(world))
    assert _published(reg, trusted).active_nppo("NL").country == "NL"
    assert "nothing to reinstate" in refused(
        "registry", "reinstate", "NL", "--maintainer", "ops", *_dir(world)
    )


def test_revoke_is_final(world: dict[str, Path], trusted: TrustedDirectory) -> None:
    reg = world["registry"]
    assert "--reason" in _refused_argparse("registry", "revoke", "KE", "--maintainer", "ops")
    ok(
        "registry",
        "revoke",
        "KE",
        "--reason",
        "NPPO dissolved",
        "--maintainer",
        "ops",
        *_dir(world),
    )
    directory = _published(reg, trusted)
    assert directory.nppo("KE").status == "revoked"
    with pytest.raises(NppoNotActive):
        directory.active_nppo("KE")

    before = (reg / "status/KE.json").read_bytes(), (reg / "audit.log").read_bytes()
    for action in (["reinstate"], ["suspend", "--reason", "x"], ["revoke", "--reason", "x"]):
        error = refused(
            "registry", action[0], "KE", *action[1:], "--maintainer", "ops", *_dir(world)
        )
        assert "revocation is final" in error
    assert "revocation is final" in refused(
        "registry", "enrol", world["KE"] / "enrolment-request.json", *_dir(world)
    )
    assert ((reg / "status/KE.json").read_bytes(), (reg / "audit.log").read_bytes()) == before


def test_lifecycle_refusals_and_the_log(world: dict[str, Path]) -> None:
    reg = world["registry"]
    audit = (reg / "audit.log").read_bytes()
    assert "not a maintainer" in refused(
        "registry", "suspend", "NL", "--reason", "x", "--maintainer", "eve", *_dir(world)
    )
    assert "not an enrolled NPPO" in refused(
        "registry", "suspend", "US", "--reason", "x", "--maintainer", "ops", *_dir(world)
    )
    assert (reg / "audit.log").read_bytes() == audit

    log = ok("registry", "log", "--verify", *_dir(world))
    assert "suspend  by ops" in log and 'reason: "signing key reported lost"' in log
    assert "reinstate  by ops" in log
    assert "revoke  by ops" in log and 'reason: "NPPO dissolved"' in log
    assert "audit log intact" in log
    # A hand-edited status decision is caught, not published.
    status = reg / "status/KE.json"
    saved = status.read_bytes()
    status.write_bytes(saved.replace(b'"revoked"', b'"active"'))
    try:
        assert "does not verify" in refused("registry", "publish", *_dir(world))
    finally:
        status.write_bytes(saved)


def _refused_argparse(*args: str) -> str:
    result = ephyto(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    return result.stderr
