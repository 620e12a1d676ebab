"""The registry's side of a TLS key rotation, with a real registry on disk: what it
publishes for a rotation of version 2 (the old pin capped at the overlap, the new one for
the new window), and what it refuses (a pin already any party's, a window that ends inside
the overlap). Nodes and TLS are tested in the node's own rotation tests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import tls_pin
from node.directory import NppoEntry, TrustedDirectory
from node.identity.enrolment import build_request, verify_request
from node.identity.keys import (
    NodeKeys,
    build_tls_certificate,
    generate_keys,
    load_certificate,
    load_signing_key,
    load_tls_key,
)
from node.identity.store import init_node
from registry.publish import EnrolmentRefused, RegistryError
from registry.state import RegistryState
from tests.rotation_requests import VALIDITY, rotation_request_bytes, version_1_request_bytes

T0 = datetime.now(UTC).replace(microsecond=0)
T1 = T0 + timedelta(hours=1)
OVERLAP = timedelta(hours=24)


@dataclass
class Party:
    signing: Ed25519PrivateKey
    tls_pin: str
    node_dir: Path


@dataclass
class World:
    root: Path
    registry: RegistryState
    nl: Party
    ke: Party


def _party(root: Path, country: str) -> tuple[Party, bytes]:
    made = init_node(root / country, country=country, name=f"NPPO {country}", endpoint=None, now=T0)
    signing = made.private_keys[0]
    party = Party(
        load_signing_key(signing.read_bytes(), str(signing)),
        tls_pin(load_certificate(made.certificate.read_bytes(), str(made.certificate))),
        made.directory,
    )
    return party, made.request.read_bytes()


@pytest.fixture
def world(tmp_path: Path) -> World:
    registry = RegistryState.init(
        tmp_path / "registry", maintainer="m1", threshold=1, now=T0, actor="test"
    )
    nl, nl_request = _party(tmp_path, "NL")
    ke, ke_request = _party(tmp_path, "KE")
    registry.enrol(nl_request, T0, "test")
    registry.enrol(ke_request, T0, "test")
    return World(tmp_path, registry, nl, ke)


def _record(world: World, raw: bytes, at: datetime = T1) -> None:
    signer = world.registry.default_signer()
    assert signer is not None
    world.registry.rotate(raw, OVERLAP, at, "test", signer)


def _published_nl(world: World, at: datetime) -> NppoEntry:
    _, data = world.registry.publish(at, "test", code_lists={})
    trusted = TrustedDirectory(world.registry.maintainers)
    return trusted.update(data, at).nppo("NL")


def test_a_tls_rotation_caps_the_old_pin_and_lists_the_new_one_for_the_new_window(
    world: World,
) -> None:
    keys = generate_keys()
    _record(world, rotation_request_bytes(world.nl.signing, country="NL", created=T1, keys=keys))
    entry = _published_nl(world, T1)
    old, new = entry.tls_pins
    assert old.pin == world.nl.tls_pin and old.valid_until == T1 + OVERLAP
    assert new.valid_from == T1 and new.valid_until == T1 + VALIDITY
    assert new.certificate is not None and b"BEGIN CERTIFICATE" in new.certificate
    # The keys renew their window with it: not capped at the enrolment's end any more.
    newest = [k for k in entry.keys if k.key_id == keys.signing_key_id]
    assert newest and newest[0].valid_until == T1 + VALIDITY
    # Both pins name NL during the overlap; after it only the new one does.
    during, after = T1 + OVERLAP / 2, T1 + OVERLAP + timedelta(seconds=1)
    assert [p.valid_at(during) for p in entry.tls_pins] == [True, True]
    assert [p.valid_at(after) for p in entry.tls_pins] == [False, True]
    audit = world.registry.audit_entries()[-2]  # the rotation, then the publish
    assert audit["details"]["tls_pin"] == new.pin


def test_a_second_rotation_moves_the_pin_on_and_a_version_1_one_keeps_it(world: World) -> None:
    first = generate_keys()
    _record(world, rotation_request_bytes(world.nl.signing, country="NL", created=T1, keys=first))
    later = T1 + OVERLAP + timedelta(hours=1)
    second = generate_keys()
    _record(
        world,
        rotation_request_bytes(first.signing, country="NL", created=later, keys=second),
        at=later,
    )
    pins = _published_nl(world, later).tls_pins
    assert [p.valid_until for p in pins[:2]] == [T1 + OVERLAP, later + OVERLAP]
    assert pins[2].valid_from == later
    # A version 1 request (as recorded before TLS keys rotated): keys move, the pin stays.
    third_at = later + OVERLAP + timedelta(hours=1)
    third = generate_keys()
    _record(
        world,
        version_1_request_bytes(second.signing, third, country="NL", created=third_at),
        at=third_at,
    )
    entry = _published_nl(world, third_at)
    assert [p.pin for p in entry.tls_pins] == [p.pin for p in pins]
    assert entry.tls_pins[-1].valid_until == later + VALIDITY
    newest = next(k for k in entry.keys if k.key_id == third.signing_key_id)
    assert newest.valid_until == later + VALIDITY  # the window before it, not the enrolment's


def _with_tls_of(keys: NodeKeys, node_dir: Path) -> NodeKeys:
    path = node_dir / "keys" / "tls.key"
    return replace(keys, tls=load_tls_key(path.read_bytes(), str(path)))


def test_a_pin_that_is_another_partys_is_refused_and_nothing_is_written(world: World) -> None:
    """A TLS client is known by its pin: NL must not take KE's, even holding KE's key."""
    stolen = _with_tls_of(generate_keys(), world.ke.node_dir)
    raw = rotation_request_bytes(world.nl.signing, country="NL", created=T1, keys=stolen)
    with pytest.raises(
        RegistryError, match=f"TLS pin {world.ke.tls_pin} is already enrolled for KE"
    ):
        _record(world, raw)
    assert not (world.registry.root / "rotations").exists() or not any(
        (world.registry.root / "rotations").iterdir()
    )


def test_an_enrolment_with_a_pin_rotated_away_is_refused(world: World) -> None:
    """The pin NL rotated to names NL: a new country presenting it is refused."""
    keys = generate_keys()
    _record(world, rotation_request_bytes(world.nl.signing, country="NL", created=T1, keys=keys))
    # A request cannot carry NL's new TLS key without that key: the test lends it.
    us_keys = replace(generate_keys(), tls=keys.tls)
    certificate = build_tls_certificate(
        keys.tls, country="US", name="NPPO US", host=None, not_before=T1, not_after=T1 + VALIDITY
    )
    raw = build_request(
        us_keys, certificate, country="US", name="NPPO US", endpoint=None, created=T1,
        valid_from=T1, valid_until=T1 + VALIDITY,
    )  # fmt: skip
    assert verify_request(raw).tls_pin == tls_pin(certificate)
    with pytest.raises(EnrolmentRefused, match="is already enrolled for NL"):
        world.registry.enrol(raw, T1, "test")


def test_new_keys_that_expire_inside_the_overlap_are_refused(world: World) -> None:
    raw = rotation_request_bytes(
        world.nl.signing, country="NL", created=T1, validity=timedelta(hours=12)
    )
    with pytest.raises(RegistryError, match="not beyond the overlap"):
        _record(world, raw)
