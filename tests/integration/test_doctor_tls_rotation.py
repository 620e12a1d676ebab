"""`ephyto doctor` on a node whose TLS key rotates with its other keys (offline: the cache).

The node, registry and helpers of test_doctor_rotation: `rotate_keys` makes the next TLS
key and certificate too, and the registry lists the new pin from the rotation on and the
old one until the end of the overlap. The doctor reads the real clock, so the rotations
are placed around now.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from node.crypto.ids import tls_pin
from node.identity.config import load_config
from node.identity.keys import (
    build_tls_certificate,
    certificate_pem,
    load_certificate,
    private_key_pem,
)
from tests.integration.test_doctor_rotation import NOW, Node, _finish
from tests.integration.test_doctor_rotation import node as node  # the fixture


def _pins(node: Node) -> tuple[str, str]:
    config = load_config(node.directory / "node.toml")
    assert config.keys.next_tls_certificate is not None
    current = config.path(config.keys.tls_certificate).read_bytes()
    following = config.path(config.keys.next_tls_certificate).read_bytes()
    return tls_pin(load_certificate(current, "c")), tls_pin(load_certificate(following, "n"))


@pytest.mark.asyncio
async def test_in_the_first_half_of_the_overlap_the_current_certificate_is_presented(
    node: Node,
) -> None:
    node.rotate(NOW - timedelta(hours=2), timedelta(hours=24))
    old, new = _pins(node)

    checks = await node.doctor()

    assert checks["next TLS key"].status == "ok"
    following = checks["next TLS certificate"]
    assert following.status == "ok" and new in following.detail
    assert checks["TLS pin"].status == "ok" and old in checks["TLS pin"].detail
    rotation = checks["TLS rotation"]
    assert rotation.status == "ok", rotation
    assert new in rotation.detail and "presents its current one until" in rotation.detail
    assert "--finish" in rotation.detail


@pytest.mark.asyncio
async def test_in_the_second_half_the_next_certificate_is_presented(node: Node) -> None:
    node.rotate(NOW - timedelta(hours=2), timedelta(hours=3))  # halfway: 30 minutes ago

    rotation = (await node.doctor())["TLS rotation"]

    assert rotation.status == "ok", rotation
    assert "presents it since" in rotation.detail


@pytest.mark.asyncio
async def test_after_the_overlap_the_old_pin_is_no_fault_and_finish_moves_the_tls_files(
    node: Node,
) -> None:
    node.rotate(NOW - timedelta(hours=3), timedelta(hours=1))
    old, new = _pins(node)

    checks = await node.doctor()

    rotation = checks["TLS rotation"]
    assert rotation.status == "warning" and "overlap ended" in rotation.detail
    assert rotation.action is not None and "rotate-keys --finish" in rotation.action
    pin = checks["TLS pin"]  # the current pin expired: the next one is in use
    assert pin.status == "warning" and old in pin.detail and new in pin.detail

    code, out, err = _finish(node)
    assert code == 0, err
    assert f"current TLS pin            {new}" in out
    assert "old certificate kept" in out and "PRIVATE KEY" not in out

    after = await node.doctor()
    assert "TLS rotation" not in after and "next TLS key" not in after
    assert after["TLS pin"].status == "ok" and new in after["TLS pin"].detail
    assert after["TLS certificate"].status == "ok"


@pytest.mark.asyncio
async def test_a_next_certificate_for_another_key_is_a_problem(node: Node) -> None:
    node.rotate(NOW - timedelta(hours=2), timedelta(hours=24))
    _other_tls(node, with_key=False)

    checks = await node.doctor()

    wrong = checks["next TLS certificate"]
    assert wrong.status == "problem" and "not the certificate of the TLS key" in wrong.detail
    assert "TLS rotation" not in checks  # nothing to compare without it


@pytest.mark.asyncio
async def test_next_tls_files_the_directory_does_not_list_are_a_problem(node: Node) -> None:
    node.rotate(NOW - timedelta(hours=2), timedelta(hours=24))
    _other_tls(node, with_key=True)  # made after the request was sent

    rotation = (await node.doctor())["TLS rotation"]

    assert rotation.status == "problem" and "refuse" in rotation.detail
    assert rotation.action is not None and "tls.next.crt" in rotation.action


def _other_tls(node: Node, *, with_key: bool) -> None:
    """A certificate for another TLS key in place of the next one (and that key too)."""
    other = ec.generate_private_key(ec.SECP256R1())
    certificate = build_tls_certificate(
        other,
        country="NL",
        name="NVWA",
        host=None,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=90),
    )
    (node.directory / "keys/tls.next.crt").write_bytes(certificate_pem(certificate))
    if with_key:
        (node.directory / "keys/tls.next.key").write_bytes(private_key_pem(other))
