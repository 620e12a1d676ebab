"""Rotation requests made in memory for tests: version 2 as `rotate-keys` writes it, and
version 1 as nodes wrote it before the TLS key rotated (registries still hold those)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.identity.enrolment import _key_entry, b64_text, format_time
from node.identity.keys import NodeKeys, build_tls_certificate, generate_keys
from node.identity.rotation import (
    CONTEXT_CURRENT,
    CONTEXT_ENCRYPTION,
    CONTEXT_SIGNING,
    build_rotation_request,
)

VALIDITY = timedelta(days=730)


def rotation_request_bytes(
    current: Ed25519PrivateKey,
    *,
    country: str,
    created: datetime,
    keys: NodeKeys | None = None,
    validity: timedelta = VALIDITY,
) -> bytes:
    """A version 2 request to `keys` (fresh ones by default), signed by `current`."""
    keys = keys or generate_keys()
    certificate = build_tls_certificate(
        keys.tls,
        country=country,
        name=f"NPPO {country}",
        host=None,
        not_before=created,
        not_after=created + validity,
    )
    return build_rotation_request(
        current, keys, certificate, country=country, created=created, valid_until=created + validity
    )


def version_1_request_bytes(
    current: Ed25519PrivateKey, keys: NodeKeys, *, country: str, created: datetime
) -> bytes:
    """A version 1 request (no TLS key, no validity), signed as nodes used to."""
    assert keys.encryption_twin is not None
    body = {
        "type": "ephyto-rotation-request",
        "version": 1,
        "country": country,
        "created": format_time(created),
        "current_key_id": key_id(current.public_key().public_bytes_raw()),
        "signing_key": _key_entry("ed25519", keys.signing.public_key().public_bytes_raw()),
        "encryption_key": _key_entry("x25519", keys.encryption.public_key().public_bytes_raw()),
    }
    body_bytes = canonical_bytes(body)
    proofs = {
        "current_key": b64_text(current.sign(CONTEXT_CURRENT + body_bytes)),
        "signing_key": b64_text(keys.signing.sign(CONTEXT_SIGNING + body_bytes)),
        "encryption_key": b64_text(keys.encryption_twin.sign(CONTEXT_ENCRYPTION + body_bytes)),
    }
    return canonical_bytes({"body": body, "proofs": proofs})
