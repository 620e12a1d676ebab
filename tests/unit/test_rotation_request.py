"""The rotation request (pure): version 2 rotates the TLS key and renews the window,
version 1 is still read, and hostile requests are refused saying why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id, tls_pin
from node.identity.enrolment import b64_text, format_time
from node.identity.keys import (
    TLS_SIGNATURE,
    NodeKeys,
    build_tls_certificate,
    certificate_pem,
    generate_keys,
)
from node.identity.rotation import (
    CONTEXT_CURRENT,
    CONTEXT_ENCRYPTION,
    CONTEXT_SIGNING,
    CONTEXT_TLS,
    RotationError,
    build_rotation_request,
    verify_rotation_request,
)
from tests.rotation_requests import VALIDITY, rotation_request_bytes, version_1_request_bytes

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CURRENT = Ed25519PrivateKey.generate()
CURRENT_PUBLIC = CURRENT.public_key().public_bytes_raw()


def _resigned(document: dict[str, Any], keys: NodeKeys) -> bytes:
    """`document` with every proof made again over its edited body, so that the edit
    itself is what the verifier judges (the test holds every key)."""
    assert keys.encryption_twin is not None
    body_bytes = canonical_bytes(document["body"])
    document["proofs"] = {
        "current_key": b64_text(CURRENT.sign(CONTEXT_CURRENT + body_bytes)),
        "signing_key": b64_text(keys.signing.sign(CONTEXT_SIGNING + body_bytes)),
        "encryption_key": b64_text(keys.encryption_twin.sign(CONTEXT_ENCRYPTION + body_bytes)),
        "tls": b64_text(keys.tls.sign(CONTEXT_TLS + body_bytes, TLS_SIGNATURE)),
    }
    return canonical_bytes(document)


def test_version_2_carries_the_new_tls_certificate_and_the_new_window() -> None:
    keys = generate_keys()
    raw = rotation_request_bytes(CURRENT, country="NL", created=T0, keys=keys)
    request = verify_rotation_request(raw, CURRENT_PUBLIC)
    assert request.valid_until == T0 + VALIDITY
    assert request.tls_certificate is not None
    assert request.tls_certificate.public_key() == keys.tls.public_key()
    assert request.tls_pin == tls_pin(request.tls_certificate)
    assert request.signing_key_id == keys.signing_key_id
    assert json.loads(raw)["body"]["version"] == 2


def test_version_1_requests_recorded_before_still_verify() -> None:
    keys = generate_keys()
    raw = version_1_request_bytes(CURRENT, keys, country="NL", created=T0)
    request = verify_rotation_request(raw, CURRENT_PUBLIC)
    assert (request.tls_certificate, request.tls_pin, request.valid_until) == (None, None, None)
    assert request.encryption_key_id == keys.encryption_key_id


@pytest.mark.parametrize("version", [True, 3, "2", None])
def test_an_unknown_version_is_refused(version: object) -> None:
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0))
    document["body"]["version"] = version
    with pytest.raises(RotationError, match="is not understood"):
        verify_rotation_request(canonical_bytes(document), CURRENT_PUBLIC)


def test_a_version_2_request_without_its_tls_part_is_refused() -> None:
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0))
    del document["body"]["tls"]
    with pytest.raises(RotationError, match="tls"):
        verify_rotation_request(canonical_bytes(document), CURRENT_PUBLIC)
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0))
    del document["proofs"]["tls"]
    with pytest.raises(RotationError, match="tls"):
        verify_rotation_request(canonical_bytes(document), CURRENT_PUBLIC)


def test_a_version_1_request_claiming_a_tls_key_is_refused() -> None:
    """Version 1 has no TLS field: a TLS part there is not silently ignored."""
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0))
    document["body"]["version"] = 1
    with pytest.raises(RotationError, match="unknown field 'tls'"):
        verify_rotation_request(canonical_bytes(document), CURRENT_PUBLIC)


def test_a_tls_proof_by_another_key_is_refused() -> None:
    """The current key signed the body (so the request is authorised), but the TLS proof
    is not by the key in the certificate: no possession, no rotation."""
    keys, stranger = generate_keys(), generate_keys()
    raw = rotation_request_bytes(CURRENT, country="NL", created=T0, keys=keys)
    document = json.loads(raw)
    body_bytes = canonical_bytes(document["body"])
    document["proofs"]["tls"] = b64_text(stranger.tls.sign(CONTEXT_TLS + body_bytes, TLS_SIGNATURE))
    with pytest.raises(RotationError, match=r"proofs\.tls"):
        verify_rotation_request(canonical_bytes(document), CURRENT_PUBLIC)


def test_a_swapped_certificate_breaks_the_current_keys_signature() -> None:
    """Someone replacing the certificate (to get their own pin listed) changes the body,
    which the NPPO's current key signed."""
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0))
    other = generate_keys().tls
    certificate = build_tls_certificate(
        other, country="NL", name="x", host=None, not_before=T0, not_after=T0 + VALIDITY
    )
    document["body"]["tls"]["certificate"] = certificate_pem(certificate).decode()
    document["body"]["tls"]["pin"] = tls_pin(certificate)
    with pytest.raises(RotationError, match="current signing key"):
        verify_rotation_request(canonical_bytes(document), CURRENT_PUBLIC)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pin", "sha256/" + "A" * 43 + "=", "pin"),
        ("certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "PEM"),
        ("certificate", "not a certificate", "PEM"),
        ("algorithm", "rsa-pkcs1-sha256", "algorithm"),
    ],
)
def test_a_malformed_tls_part_is_refused(field: str, value: str, message: str) -> None:
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0))
    document["body"]["tls"][field] = value
    with pytest.raises(RotationError, match=message):
        verify_rotation_request(canonical_bytes(document), CURRENT_PUBLIC)


def test_a_certificate_that_does_not_cover_the_new_window_is_refused() -> None:
    keys = generate_keys()
    short = build_tls_certificate(
        keys.tls, country="NL", name="x", host=None, not_before=T0, not_after=T0 + timedelta(1)
    )
    with pytest.raises(RotationError, match="does not cover"):
        build_rotation_request(
            CURRENT, keys, short, country="NL", created=T0, valid_until=T0 + VALIDITY
        )


def test_a_window_that_ends_before_it_begins_is_refused() -> None:
    keys = generate_keys()
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0, keys=keys))
    document["body"]["valid_until"] = document["body"]["created"]
    with pytest.raises(RotationError, match="valid_until: not after"):
        verify_rotation_request(_resigned(document, keys), CURRENT_PUBLIC)


def test_a_validity_the_certificate_does_not_cover_is_refused() -> None:
    keys = generate_keys()
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0, keys=keys))
    document["body"]["valid_until"] = format_time(T0 + VALIDITY + timedelta(days=1))
    with pytest.raises(RotationError, match="does not cover"):
        verify_rotation_request(_resigned(document, keys), CURRENT_PUBLIC)


def test_a_certificate_whose_pin_is_wrong_is_refused_even_when_signed() -> None:
    keys = generate_keys()
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0, keys=keys))
    document["body"]["tls"]["pin"] = "sha256/" + "A" * 43 + "="
    with pytest.raises(RotationError, match="pin"):
        verify_rotation_request(_resigned(document, keys), CURRENT_PUBLIC)


def test_resigning_an_unedited_request_keeps_it_valid() -> None:
    """The helper above re-signs faithfully: what the other tests refuse is their edit."""
    keys = generate_keys()
    document = json.loads(rotation_request_bytes(CURRENT, country="NL", created=T0, keys=keys))
    assert verify_rotation_request(_resigned(document, keys), CURRENT_PUBLIC).valid_until


def test_a_certificate_for_another_key_is_refused_when_building() -> None:
    keys = generate_keys()
    other = build_tls_certificate(
        generate_keys().tls, country="NL", name="x", host=None, not_before=T0,
        not_after=T0 + VALIDITY,
    )  # fmt: skip
    with pytest.raises(RotationError, match="not for the new TLS key"):
        build_rotation_request(
            CURRENT, keys, other, country="NL", created=T0, valid_until=T0 + VALIDITY
        )


def test_the_key_id_the_request_names_is_the_current_keys() -> None:
    raw = rotation_request_bytes(CURRENT, country="NL", created=T0)
    assert json.loads(raw)["body"]["current_key_id"] == key_id(CURRENT_PUBLIC)
