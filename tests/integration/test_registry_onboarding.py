"""Onboarding as a workflow: enrol, pending, approve (2 of 3), reject, log; via the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.directory import MaintainerSet, TrustedDirectory
from tests.cli.test_cert_cli import ephyto

MAINTAINERS = ("alice", "bob", "carol")


def _ok(*args: str | Path) -> str:
    result = ephyto(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _refused(*args: str | Path) -> str:
    result = ephyto(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("ephyto: error: "), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr


def _snapshot(reg: Path) -> dict[str, bytes]:
    """Every file of the registry and its bytes: "nothing changed" is checked against it."""
    return {
        str(p.relative_to(reg)): p.read_bytes()
        for p in sorted(reg.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onboarding")
    paths = {"registry": root / "registry"}
    names = [arg for name in MAINTAINERS for arg in ("--maintainer", name)]
    out = _ok("registry", "init", "--dir", paths["registry"], "--threshold", "2", *names)
    assert "threshold 2 of 3 maintainer keys" in out
    for cc, name, extra in (
        ("US", "APHIS", ["--endpoint", "https://node.us.example:8443"]),
        ("KE", "KEPHIS", []),
        ("CL", "SAG", []),
    ):
        paths[cc] = root / cc.lower()
        _ok("node", "init", "--country", cc, "--name", name, "--dir", paths[cc], *extra)
    return paths


def _reg(world: dict[str, Path]) -> list[str | Path]:
    return ["--dir", world["registry"]]


def _anchor(reg: Path) -> MaintainerSet:
    return MaintainerSet.from_plain(json.loads((reg / "maintainers/maintainers.json").read_text()))


def test_governance_commands_have_help() -> None:
    for command in (
        "enrol", "pending", "approve", "reject", "suspend", "reinstate", "revoke", "log", "show",
    ):  # fmt: skip
        result = ephyto("registry", command, "--help")
        assert result.returncode == 0 and "usage: ephyto registry" in result.stdout


def test_init_refuses_a_threshold_above_the_maintainers(tmp_path: Path) -> None:
    error = _refused("registry", "init", "--dir", tmp_path / "r", "--threshold", "2")
    assert "threshold 2" in error
    assert not (tmp_path / "r").exists()


def test_enrol_approve_to_threshold_publish_and_verify(world: dict[str, Path]) -> None:
    reg = world["registry"]
    request = world["US"] / "enrolment-request.json"

    queued = _ok("registry", "enrol", request, *_reg(world))
    assert "queued US (APHIS); needs 2 maintainer approvals" in queued
    assert not (reg / "nppos/US.json").exists()  # queued, not enrolled

    pending = _ok("registry", "pending", *_reg(world))
    assert "pending enrolment requests: 1" in pending
    assert "US  APHIS" in pending and "https://node.us.example:8443" in pending
    assert "approvals          0 of 2 (none)" in pending and "queued  " in pending
    shown = _ok("registry", "show", "US", *_reg(world))
    assert "US  APHIS: queued, awaiting approvals" in shown and "request sha256" in shown

    first = _ok("registry", "approve", "US", "--maintainer", "alice", *_reg(world))
    assert "1 of 2 approvals (alice)" in first and "not enrolled yet" in first
    # One maintainer approving twice counts once; a name outside the set is refused.
    before = _snapshot(reg)
    assert "already approved" in _refused(
        "registry", "approve", "US", "--maintainer", "alice", *_reg(world)
    )
    assert "not a maintainer" in _refused(
        "registry", "approve", "US", "--maintainer", "mallory", *_reg(world)
    )
    assert _snapshot(reg) == before

    below = _ok("registry", "publish", *_reg(world))
    assert "NPPOs    none" in below  # one approval of two: not published

    second = _ok("registry", "approve", "US", "--maintainer", "carol", *_reg(world))
    assert "2 of 2 approvals (alice, carol)" in second
    assert "enrolled US (APHIS)" in second
    assert (reg / "nppos/US.json").read_bytes() == request.read_bytes()
    assert "pending enrolment requests: 0" in _ok("registry", "pending", *_reg(world))

    published = _ok("registry", "publish", *_reg(world))
    assert "NPPOs    US" in published
    directory = TrustedDirectory(_anchor(reg)).update(
        (reg / "current.json").read_bytes(), datetime.now(UTC)
    )
    entry = directory.active_nppo("US")
    assert entry.endpoint == "https://node.us.example:8443"
    # Both approvals are signed statements kept beside the request.
    approvals = list((reg / "approvals").glob("*/*.json"))
    assert len(approvals) == 2
    shown = _ok("registry", "show", "US", *_reg(world))
    assert "enrolled, active" in shown and "alice (" in shown and "carol (" in shown


def test_reject_with_reason(world: dict[str, Path]) -> None:
    reg = world["registry"]
    _ok("registry", "enrol", world["KE"] / "enrolment-request.json", *_reg(world))
    _ok("registry", "approve", "KE", "--maintainer", "bob", *_reg(world))
    out = _ok(
        "registry", "reject", "KE", "--reason", "key id not confirmed by phone",
        "--maintainer", "carol", *_reg(world),
    )  # fmt: skip
    assert "carol rejected the request of KE" in out
    assert not (reg / "queue/KE.json").exists() and not (reg / "nppos/KE.json").exists()
    assert "KE" not in _ok("registry", "pending", *_reg(world))
    assert "no request for 'KE' is queued" in _refused(
        "registry", "approve", "KE", "--maintainer", "alice", *_reg(world)
    )
    # Queued again, it starts from no approvals: bob's earlier one went with the rejection.
    _ok("registry", "enrol", world["KE"] / "enrolment-request.json", *_reg(world))
    again = _ok("registry", "approve", "KE", "--maintainer", "alice", *_reg(world))
    assert "1 of 2 approvals (alice)" in again


def test_bad_input_changes_nothing(world: dict[str, Path], tmp_path: Path) -> None:
    reg = world["registry"]
    raw = (world["CL"] / "enrolment-request.json").read_bytes()
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(raw.replace(b'"name":"SAG"', b'"name":"SAX"'))
    malformed = tmp_path / "malformed.json"
    malformed.write_bytes(b"{not json")
    before = _snapshot(reg)
    assert "proof" in _refused("registry", "enrol", tampered, *_reg(world))
    assert "not JSON" in _refused("registry", "enrol", malformed, *_reg(world))
    assert "already enrolled" in _refused(
        "registry", "enrol", world["US"] / "enrolment-request.json", *_reg(world)
    )
    _refused("registry", "approve", "ZZ", "--maintainer", "alice", *_reg(world))
    _refused("registry", "approve", "not-a-country", "--maintainer", "alice", *_reg(world))
    _refused("registry", "reject", "CL", "--reason", "x", "--maintainer", "alice", *_reg(world))
    _refused("registry", "reject", "US", "--reason", " ", "--maintainer", "alice", *_reg(world))
    _refused("registry", "show", "ZZ", *_reg(world))
    _refused("registry", "suspend", "ZZ", "--reason", "x", "--maintainer", "bob", *_reg(world))
    assert _snapshot(reg) == before


def test_the_log_shows_it_all_and_verify_detects_tampering(world: dict[str, Path]) -> None:
    reg = world["registry"]
    log = _ok("registry", "log", *_reg(world))
    for expected in (
        "init  by alice",
        "queue  by no maintainer key",
        "approve  by alice",
        "approve  by carol",
        "reject  by carol (user ",
        'reason: "key id not confirmed by phone"',
        "publish  by alice",
    ):
        assert expected in log, expected
    intact = _ok("registry", "log", "--verify", *_reg(world))
    assert "audit log intact" in intact
    entries = [json.loads(x) for x in (reg / "audit.log").read_text().splitlines()]
    assert all("prev" in e for e in entries)
    assert all("sig" in e for e in entries if e["action"] != "queue")

    lines = (reg / "audit.log").read_bytes().splitlines(keepends=True)
    number = next(i for i, e in enumerate(entries) if e["action"] == "reject")
    altered = lines[number].replace(b"key id not confirmed", b"approved by everyone")
    try:
        (reg / "audit.log").write_bytes(b"".join([*lines[:number], altered, *lines[number + 1 :]]))
        broken = ephyto("registry", "log", "--verify", *_reg(world))
        assert broken.returncode == 1
        assert "audit log BROKEN" in broken.stdout
        assert f"line {number + 1}: the signature of carol does not verify" in broken.stdout
        assert f"line {number + 2}: `prev` is not the SHA-256 of the line before" in broken.stdout

        (reg / "audit.log").write_bytes(b"".join([*lines[:number], *lines[number + 1 :]]))
        removed = ephyto("registry", "log", "--verify", *_reg(world))
        assert removed.returncode == 1
        assert f"line {number + 1}: `prev` is not the SHA-256" in removed.stdout
    finally:
        (reg / "audit.log").write_bytes(b"".join(lines))
    assert "audit log intact" in _ok("registry", "log", "--verify", *_reg(world))


def test_add_is_refused_where_the_keys_here_are_below_the_threshold(
    world: dict[str, Path],
) -> None:
    reg = world["registry"]
    keys = sorted((reg / "maintainers").glob("*.key"))
    aside = [k.with_suffix(".aside") for k in keys[1:]]
    for key, moved in zip(keys[1:], aside, strict=True):
        key.rename(moved)
    try:
        before = _snapshot(reg)
        error = _refused("registry", "add", world["CL"] / "enrolment-request.json", *_reg(world))
        assert "use `ephyto registry enrol`" in error
        assert _snapshot(reg) == before
    finally:
        for key, moved in zip(keys[1:], aside, strict=True):
            moved.rename(key)
