"""An enrolled NPPO moves its endpoint or goes hub-only: asked by the node, signed by its
current key, recorded by a maintainer, logged, and listed from the next publish."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.directory import MaintainerSet, TrustedDirectory
from tests.ephyto_cli import ephyto, ok, refused


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Path]:
    """A one-maintainer registry with NL (direct endpoint) and KE (hub only) published."""
    paths = {"registry": tmp_path / "registry"}
    ok("registry", "init", "--dir", paths["registry"], "--maintainer", "ops")
    for cc, endpoint in (("NL", "https://nl.example:8443"), ("KE", None)):
        paths[cc] = tmp_path / cc.lower()
        extra = [] if endpoint is None else ["--endpoint", endpoint]
        ok("node", "init", "--country", cc, "--name", f"NPPO {cc}", "--dir", paths[cc], *extra)
        ok("registry", "add", paths[cc] / "enrolment-request.json", "--dir", paths["registry"])
    ok("registry", "publish", "--dir", paths["registry"])
    return paths


def _trusted(reg: Path) -> TrustedDirectory:
    anchor = json.loads((reg / "maintainers/maintainers.json").read_text())
    trusted = TrustedDirectory(MaintainerSet.from_plain(anchor))
    trusted.update((reg / "current.json").read_bytes(), datetime.now(UTC))
    return trusted


def _publish(reg: Path, trusted: TrustedDirectory) -> None:
    ok("registry", "publish", "--dir", reg)
    trusted.update((reg / "current.json").read_bytes(), datetime.now(UTC))


def test_move_go_hub_only_and_come_back(world: dict[str, Path]) -> None:
    reg, nl = world["registry"], world["NL"]
    trusted = _trusted(reg)
    out = ok("node", "change-endpoint", "--endpoint", "https://nl2.example:9443", "--dir", nl)
    assert "endpoint-change-request.json" in out
    request = nl / "endpoint-change-request.json"
    out = ok("registry", "set-endpoint", request, "--dir", reg)
    assert "recorded the endpoint change of NL; not published yet" in out
    # Not before the next publish.
    assert trusted.current is not None
    assert trusted.current.nppo("NL").endpoint == "https://nl.example:8443"
    _publish(reg, trusted)
    assert trusted.current.nppo("NL").endpoint == "https://nl2.example:9443"
    # The TLS pin stays: partners pin the key, not the host.
    assert trusted.current.nppo("NL").tls_pins

    ok("node", "change-endpoint", "--hub-only", "--dir", nl)
    ok("registry", "set-endpoint", request, "--dir", reg)
    _publish(reg, trusted)
    assert trusted.current.nppo("NL").endpoint is None

    show = ok("registry", "show", "NL", "--dir", reg)
    assert show.count("endpoint changed") == 2 and "hub only" in show
    entries = [json.loads(line) for line in (reg / "audit.log").read_text().splitlines()]
    moves = [e["details"] for e in entries if e["action"] == "set-endpoint"]
    assert [(m["from"], m["to"]) for m in moves] == [
        ("https://nl.example:8443", "https://nl2.example:9443"),
        ("https://nl2.example:9443", None),
    ]
    assert "audit log intact" in ok("registry", "log", "--verify", "--dir", reg)


def test_a_hub_only_nppo_gets_a_direct_endpoint(world: dict[str, Path]) -> None:
    reg, ke = world["registry"], world["KE"]
    trusted = _trusted(reg)
    ok("node", "change-endpoint", "--endpoint", "https://ke.example:8443", "--dir", ke)
    ok("registry", "set-endpoint", ke / "endpoint-change-request.json", "--dir", reg)
    _publish(reg, trusted)
    assert trusted.current is not None
    assert trusted.current.nppo("KE").endpoint == "https://ke.example:8443"


def test_refusals_change_nothing(world: dict[str, Path], tmp_path: Path) -> None:
    reg, nl, ke = world["registry"], world["NL"], world["KE"]
    before = (reg / "audit.log").read_bytes()
    ok("node", "change-endpoint", "--endpoint", "https://nl.example:8443", "--dir", nl)
    request = nl / "endpoint-change-request.json"
    assert "already listed as https://nl.example:8443" in refused(
        "registry", "set-endpoint", request, "--dir", reg
    )
    # KE's request with NL's name on it: KE's key is not NL's.
    ok("node", "change-endpoint", "--hub-only", "--dir", ke)
    forged = json.loads((ke / "endpoint-change-request.json").read_bytes())
    forged["body"]["country"] = "NL"
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged, separators=(",", ":"), sort_keys=True))
    assert "not a signing key of NL" in refused(
        "registry", "set-endpoint", forged_file, "--dir", reg
    )
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00not json")
    assert "naming a country" in refused("registry", "set-endpoint", garbage, "--dir", reg)
    assert "nope.json" in refused("registry", "set-endpoint", tmp_path / "nope.json", "--dir", reg)
    assert (reg / "audit.log").read_bytes() == before
    assert not (reg / "endpoints").exists() or not any((reg / "endpoints").iterdir())


def test_a_replayed_older_request_cannot_move_the_endpoint_back(
    world: dict[str, Path], tmp_path: Path
) -> None:
    reg, nl = world["registry"], world["NL"]
    request = nl / "endpoint-change-request.json"
    ok("node", "change-endpoint", "--endpoint", "https://old.example:8443", "--dir", nl)
    old = tmp_path / "old.json"
    shutil.copy(request, old)
    ok("registry", "set-endpoint", request, "--dir", reg)
    # Requests carry whole seconds: make sure the next one is later.
    created = json.loads(old.read_bytes())["body"]["created"]
    while datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == created:
        pass
    ok("node", "change-endpoint", "--endpoint", "https://new.example:8443", "--dir", nl)
    ok("registry", "set-endpoint", request, "--dir", reg)
    assert "a replay" in refused("registry", "set-endpoint", old, "--dir", reg)


def test_a_revoked_nppo_cannot_change(world: dict[str, Path]) -> None:
    reg, nl = world["registry"], world["NL"]
    ok("registry", "revoke", "NL", "--reason", "left", "--maintainer", "ops", "--dir", reg)
    ok("node", "change-endpoint", "--hub-only", "--dir", nl)
    assert "NL is revoked" in refused(
        "registry", "set-endpoint", nl / "endpoint-change-request.json", "--dir", reg
    )


def test_help_and_usage() -> None:
    assert "--hub-only" in ok("node", "change-endpoint", "--help")
    assert "endpoint-change-request.json" in ok("registry", "set-endpoint", "--help")
    both = ephyto("node", "change-endpoint", "--hub-only", "--endpoint", "https://x.example:1")
    assert both.returncode == 2 and "not allowed with" in both.stderr
