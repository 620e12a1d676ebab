"""`ephyto registry set-hub`: the hub's request verified, recorded, published and shown."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.crypto.ids import tls_pin
from node.directory import MaintainerSet, TrustedDirectory
from node.hub.request import verify_hub_request
from node.identity.keys import load_certificate
from tests.cli.test_cert_cli import ephyto


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("registry-hub")
    paths = {"registry": root / "registry", "hub": root / "hub", "KE": root / "ke"}
    for args in (
        ("registry", "init", "--dir", paths["registry"]),
        ("hub", "init", "--name", "Hub One", "--endpoint", "https://hub.example:9443",
         "--dir", paths["hub"]),
        ("node", "init", "--country", "KE", "--name", "KEPHIS", "--dir", paths["KE"]),
        ("registry", "add", paths["KE"] / "enrolment-request.json", "--dir", paths["registry"]),
    ):  # fmt: skip
        result = ephyto(*args)
        assert result.returncode == 0, result.stderr
    return paths


def _audit(registry: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (registry / "audit.log").read_text().splitlines()]


def test_set_hub_publish_and_show(world: dict[str, Path]) -> None:
    reg = world["registry"]
    request = world["hub"] / "hub-request.json"
    pin = tls_pin(load_certificate((world["hub"] / "keys/tls.crt").read_bytes(), "hub"))

    recorded = ephyto("registry", "set-hub", request, "--dir", reg)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded the hub Hub One; not published yet" in recorded.stdout
    assert pin in recorded.stdout
    assert (reg / "hub.json").read_bytes() == request.read_bytes()
    entry = _audit(reg)[-1]
    assert entry["action"] == "set-hub"
    assert entry["details"]["tls_pin"] == pin  # type: ignore[index]

    again = ephyto("registry", "set-hub", request, "--dir", reg)
    assert again.returncode == 2 and "already recorded with this very request" in again.stderr

    published = ephyto("registry", "publish", "--dir", reg)
    assert published.returncode == 0, published.stderr
    assert f"hub      Hub One at https://hub.example:9443 ({pin})" in published.stdout
    anchor = MaintainerSet.from_plain(
        json.loads((reg / "maintainers/maintainers.json").read_text())
    )
    directory = TrustedDirectory(anchor).update(
        (reg / "current.json").read_bytes(), datetime.now(UTC)
    )
    assert directory.hub is not None
    assert (directory.hub.name, directory.hub.endpoint) == ("Hub One", "https://hub.example:9443")
    assert directory.hub_tls_pins(datetime.now(UTC)) == {pin}
    # The pin carries the certificate, as an NPPO's does: nodes load it as a TLS anchor.
    assert directory.hub.tls_pins[0].certificate == (world["hub"] / "keys/tls.crt").read_bytes()
    assert directory.hub.tls_pins[0].certificate in directory.tls_certificates(datetime.now(UTC))

    shown = ephyto("registry", "show", "--dir", reg)
    assert shown.returncode == 0, shown.stderr
    assert "hub: Hub One" in shown.stdout and pin in shown.stdout
    assert "not published yet" not in shown.stdout


def test_a_tampered_hub_request_is_refused_and_nothing_changes(
    world: dict[str, Path], tmp_path: Path
) -> None:
    reg = world["registry"]
    before = ((reg / "hub.json").read_bytes() if (reg / "hub.json").exists() else None, _audit(reg))
    raw = (world["hub"] / "hub-request.json").read_bytes()
    for name, data in (
        ("renamed", raw.replace(b'"name":"Hub One"', b'"name":"Hub Two"')),
        ("moved", raw.replace(b"hub.example:9443", b"evil.example:9443")),
        ("not-json", b"{"),
    ):
        path = tmp_path / f"{name}.json"
        path.write_bytes(data)
        result = ephyto("registry", "set-hub", path, "--dir", reg)
        assert result.returncode == 2, name
        assert result.stderr.startswith("ephyto: error: ") and len(result.stderr.splitlines()) == 1
    after = ((reg / "hub.json").read_bytes() if (reg / "hub.json").exists() else None, _audit(reg))
    assert after == before


def test_an_nppo_enrolment_request_is_no_hub_request(world: dict[str, Path]) -> None:
    result = ephyto(
        "registry", "set-hub", world["KE"] / "enrolment-request.json", "--dir", world["registry"]
    )
    assert result.returncode == 2
    assert "unknown field" in result.stderr or "body.type" in result.stderr


def test_the_hub_request_proves_the_tls_key(world: dict[str, Path]) -> None:
    request = verify_hub_request((world["hub"] / "hub-request.json").read_bytes())
    assert request.endpoint.url == "https://hub.example:9443"
    assert request.name == "Hub One"
