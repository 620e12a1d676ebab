"""The key rotation request: an NPPO's new signing, encryption and TLS keys, signed by
its current signing key (docs/protocol.md, Part B).

Canonical JSON of `{"body": {...}, "proofs": {...}}`, like the enrolment request:

- `proofs.current_key`: Ed25519 by the CURRENT signing key (the one the registry lists),
  which authorises the change;
- `proofs.signing_key`: Ed25519 by the NEW signing key (possession);
- `proofs.encryption_key`: Ed25519 by the new X25519 key's twin (possession, as enrolment);
- `proofs.tls` (version 2): ECDSA by the new TLS key (possession, as enrolment).

Each signs its own context string followed by the canonical bytes of `body`.

Version 2 (what `build_rotation_request` writes) also carries the new TLS certificate and
`valid_until`, the end of the new keys' window: a rotation renews the keys, so it renews
their validity too. Version 1 (signing and encryption keys only, valid until the end of
the enrolment's window) is still read, since a registry re-verifies every rotation it
recorded each time it publishes. Pure: the caller passes the time and the current key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id, tls_pin
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
    read_tls_certificate,
)
from node.identity.keys import (
    TLS_SIGNATURE,
    NodeKeys,
    certificate_pem,
    edwards_candidates,
    is_low_order_ed25519,
    verify_ed25519,
    verify_tls_signature,
)

FORMAT = "ephyto-rotation-request"
VERSION = 2  # what this node writes; version 1 is still read
MAX_ROTATION_BYTES = 16 * 1024
# The context strings keep their "v1": they separate the kinds of proof, not versions
# (the body, which every proof signs, carries the version).
CONTEXT_CURRENT = b"ephyto rotation request v1: current signing key\x00"
CONTEXT_SIGNING = b"ephyto rotation request v1: new signing key\x00"
CONTEXT_ENCRYPTION = b"ephyto rotation request v1: new encryption key\x00"
CONTEXT_TLS = b"ephyto rotation request v1: new tls key\x00"

_V1_BODY = frozenset(
    {"type", "version", "country", "created", "current_key_id", "signing_key", "encryption_key"}
)
_V1_PROOFS = frozenset({"current_key", "signing_key", "encryption_key"})
_BODY_FIELDS = {1: _V1_BODY, 2: _V1_BODY | {"valid_until", "tls"}}
_PROOF_FIELDS = {1: _V1_PROOFS, 2: _V1_PROOFS | {"tls"}}


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
    # Version 2: the new keys' window ends here, and the TLS key rotates too. None in a
    # version 1 request: the enrolment's window end and TLS certificate stand.
    valid_until: datetime | None = None
    tls_certificate: x509.Certificate | None = None

    @property
    def signing_key_id(self) -> str:
        return key_id(self.signing_key)

    @property
    def encryption_key_id(self) -> str:
        return key_id(self.encryption_key)

    @property
    def tls_pin(self) -> str | None:
        return None if self.tls_certificate is None else tls_pin(self.tls_certificate)


def build_rotation_request(
    current: Ed25519PrivateKey,
    new: NodeKeys,
    certificate: x509.Certificate,
    *,
    country: str,
    created: datetime,
    valid_until: datetime,
) -> bytes:
    """The canonical bytes of a rotation request to `new`'s keys and `certificate` (the
    self-signed certificate of `new.tls`, covering `created` to `valid_until`), signed by
    `current`. RotationError when the parts do not fit together."""
    if new.encryption_twin is None:
        raise RotationError("the new encryption key's seed is gone: make a new key")
    twin = new.encryption_twin.public_key().public_bytes_raw()
    if twin not in edwards_candidates(new.encryption.public_key().public_bytes_raw()):
        raise RotationError("the new encryption key was not made from the seed given with it")
    if certificate.public_key() != new.tls.public_key():
        raise RotationError("the new TLS certificate is not for the new TLS key")
    body = {
        "type": FORMAT,
        "version": VERSION,
        "country": check_country(country),
        "created": format_time(created),
        "valid_until": format_time(valid_until),
        "current_key_id": key_id(current.public_key().public_bytes_raw()),
        "signing_key": _key_entry("ed25519", new.signing.public_key().public_bytes_raw()),
        "encryption_key": _key_entry("x25519", new.encryption.public_key().public_bytes_raw()),
        "tls": {
            "algorithm": "ecdsa-p256-sha256",
            "certificate": certificate_pem(certificate).decode("ascii"),
            "pin": tls_pin(certificate),
        },
    }
    body_bytes = canonical_bytes(body)
    proofs = {
        "current_key": b64_text(current.sign(CONTEXT_CURRENT + body_bytes)),
        "signing_key": b64_text(new.signing.sign(CONTEXT_SIGNING + body_bytes)),
        "encryption_key": b64_text(new.encryption_twin.sign(CONTEXT_ENCRYPTION + body_bytes)),
        "tls": b64_text(new.tls.sign(CONTEXT_TLS + body_bytes, TLS_SIGNATURE)),
    }
    data = canonical_bytes({"body": body, "proofs": proofs})
    verify_rotation_request(data, current.public_key().public_bytes_raw())
    return data


def verify_rotation_request(data: bytes, current_signing_key: bytes) -> RotationRequest:
    """The request in `data`, authorised by `current_signing_key` (raw Ed25519) and every
    possession proof checked; RotationError saying what failed otherwise."""
    document = load_canonical_request(
        data, max_bytes=MAX_ROTATION_BYTES, what="rotation request", error=RotationError
    )
    try:
        top = read_object(document, {"body", "proofs"}, "request")
        version = top["body"].get("version") if isinstance(top["body"], dict) else None
        # bool is an int in Python: `true` must not pass for version 1.
        if type(version) is not int or version not in _BODY_FIELDS:
            raise RotationError(
                f"body.version: {version!r} is not understood (versions 1 and 2 are)"
            )
        body = read_object(top["body"], _BODY_FIELDS[version], "body")
        proofs = read_object(top["proofs"], _PROOF_FIELDS[version], "proofs")
        if body["type"] != FORMAT:
            raise RotationError(f"body.type: expected {FORMAT!r}, got {body['type']!r}")
        country = check_country(str(body["country"]))
        created = parse_time(str(body["created"]), "body.created")
        signing = _key(body, "signing_key", "ed25519")
        encryption = _key(body, "encryption_key", "x25519")
        current_proof = _proof(proofs, "current_key")
        signing_proof = _proof(proofs, "signing_key")
        encryption_proof = _proof(proofs, "encryption_key")
        valid_until = certificate = None
        if version >= 2:
            valid_until = parse_time(str(body["valid_until"]), "body.valid_until")
            if valid_until <= created:
                raise RotationError("body.valid_until: not after body.created")
            # The name in the certificate is not checked: partners trust the pin, and the
            # endpoint changes by a request of its own, independently of the keys.
            certificate = read_tls_certificate(
                body["tls"], country, None, created, valid_until, check_name=False
            )
            tls_proof = _proof(proofs, "tls")
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
    if certificate is not None:
        tls_public = certificate.public_key()
        assert isinstance(tls_public, ec.EllipticCurvePublicKey)  # read_tls_certificate
        if not verify_tls_signature(tls_public, tls_proof, CONTEXT_TLS + body_bytes):
            raise RotationError("proofs.tls: the new TLS key's proof does not verify")
    return RotationRequest(
        country=country,
        created=created,
        current_key_id=str(body["current_key_id"]),
        signing_key=signing,
        encryption_key=encryption,
        valid_until=valid_until,
        tls_certificate=certificate,
    )
