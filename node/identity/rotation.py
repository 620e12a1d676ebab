"""The key rotation request: an NPPO's new signing and encryption keys, signed by its
current signing key (docs/protocol.md, Part B).

Canonical JSON of `{"body": {...}, "proofs": {...}}`, like the enrolment request:

- `proofs.current_key`: Ed25519 by the CURRENT signing key (the one the registry lists),
  which authorises the change;
- `proofs.signing_key`: Ed25519 by the NEW signing key (possession);
- `proofs.encryption_key`: Ed25519 by the new X25519 key's twin (possession, as enrolment).

Each signs its own context string followed by the canonical bytes of `body`. The TLS
key is not rotated here. Pure: the caller passes the time and the current key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.identity.enrolment import (
    EnrolmentError,
    _key,
    _key_entry,
    _proof,
    b64_text,
    check_country,
    format_time,
    load_canonical_request,
    parse_time,
    read_object,
)
from node.identity.keys import (
    NodeKeys,
    edwards_candidates,
    is_low_order_ed25519,
    verify_ed25519,
)

FORMAT = "ephyto-rotation-request"
VERSION = 1
MAX_ROTATION_BYTES = 16 * 1024
CONTEXT_CURRENT = b"ephyto rotation request v1: current signing key\x00"
CONTEXT_SIGNING = b"ephyto rotation request v1: new signing key\x00"
CONTEXT_ENCRYPTION = b"ephyto rotation request v1: new encryption key\x00"

_BODY_FIELDS = frozenset(
    {"type", "version", "country", "created", "current_key_id", "signing_key", "encryption_key"}
)
_PROOF_FIELDS = frozenset({"current_key", "signing_key", "encryption_key"})


class RotationError(EnrolmentError):
    """A rotation request that is malformed or does not verify."""


@dataclass(frozen=True, slots=True)
class RotationRequest:
    """A verified rotation request: who, when, which key signed it, the new keys."""

    country: str
    created: datetime
    current_key_id: str
    signing_key: bytes
    encryption_key: bytes

    @property
    def signing_key_id(self) -> str:
        return key_id(self.signing_key)

    @property
    def encryption_key_id(self) -> str:
        return key_id(self.encryption_key)


def build_rotation_request(
    current: Ed25519PrivateKey, new: NodeKeys, *, country: str, created: datetime
) -> bytes:
    """The canonical bytes of a rotation request to `new`'s keys, signed by `current`."""
    if new.encryption_twin is None:
        raise RotationError("the new encryption key's seed is gone: make a new key")
    twin = new.encryption_twin.public_key().public_bytes_raw()
    if twin not in edwards_candidates(new.encryption.public_key().public_bytes_raw()):
        raise RotationError("the new encryption key was not made from the seed given with it")
    body = {
        "type": FORMAT,
        "version": VERSION,
        "country": check_country(country),
        "created": format_time(created),
        "current_key_id": key_id(current.public_key().public_bytes_raw()),
        "signing_key": _key_entry("ed25519", new.signing.public_key().public_bytes_raw()),
        "encryption_key": _key_entry("x25519", new.encryption.public_key().public_bytes_raw()),
    }
    body_bytes = canonical_bytes(body)
    proofs = {
        "current_key": b64_text(current.sign(CONTEXT_CURRENT + body_bytes)),
        "signing_key": b64_text(new.signing.sign(CONTEXT_SIGNING + body_bytes)),
        "encryption_key": b64_text(new.encryption_twin.sign(CONTEXT_ENCRYPTION + body_bytes)),
    }
    return canonical_bytes({"body": body, "proofs": proofs})


def verify_rotation_request(data: bytes, current_signing_key: bytes) -> RotationRequest:
    """The request in `data`, authorised by `current_signing_key` (raw Ed25519) and every
    possession proof checked; RotationError saying what failed otherwise."""
    document = load_canonical_request(
        data, max_bytes=MAX_ROTATION_BYTES, what="rotation request", error=RotationError
    )
    try:
        top = read_object(document, {"body", "proofs"}, "request")
        body = read_object(top["body"], _BODY_FIELDS, "body")
        proofs = read_object(top["proofs"], _PROOF_FIELDS, "proofs")
        if body["type"] != FORMAT:
            raise RotationError(f"body.type: expected {FORMAT!r}, got {body['type']!r}")
        if body["version"] != VERSION:
            raise RotationError(f"body.version: only version {VERSION} is understood")
        country = check_country(str(body["country"]))
        created = parse_time(str(body["created"]), "body.created")
        signing = _key(body, "signing_key", "ed25519")
        encryption = _key(body, "encryption_key", "x25519")
        current_proof = _proof(proofs, "current_key")
        signing_proof = _proof(proofs, "signing_key")
        encryption_proof = _proof(proofs, "encryption_key")
    except EnrolmentError as e:
        raise RotationError(str(e)) from None
    body_bytes = canonical_bytes(body)
    if body["current_key_id"] != key_id(current_signing_key):
        raise RotationError(
            f"body.current_key_id: signed by key {body['current_key_id']},"
            f" the registry lists {key_id(current_signing_key)} for {country}"
        )
    if not verify_ed25519(current_signing_key, current_proof, CONTEXT_CURRENT + body_bytes):
        raise RotationError("proofs.current_key: not signed by the NPPO's current signing key")
    if is_low_order_ed25519(signing):
        raise RotationError("body.signing_key: not a usable Ed25519 public key")
    if signing == current_signing_key:
        raise RotationError("body.signing_key: is the current key, nothing rotates")
    if not verify_ed25519(signing, signing_proof, CONTEXT_SIGNING + body_bytes):
        raise RotationError("proofs.signing_key: the new signing key's proof does not verify")
    try:
        twins = edwards_candidates(encryption)
    except ValueError as e:
        raise RotationError(f"body.encryption_key: {e}") from None
    if not any(verify_ed25519(t, encryption_proof, CONTEXT_ENCRYPTION + body_bytes) for t in twins):
        raise RotationError("proofs.encryption_key: the new encryption key's proof does not verify")
    return RotationRequest(
        country=country,
        created=created,
        current_key_id=str(body["current_key_id"]),
        signing_key=signing,
        encryption_key=encryption,
    )
