"""The hub's request to a registry: its name, endpoint and TLS certificate, and a proof.

Like an NPPO's enrolment request (node.identity.enrolment), it is canonical JSON of
`{"body": {...}, "proofs": {"tls": ...}}`, and the proof is the TLS key's signature over a
context string followed by the exact bytes of `body`: whoever made the file holds the key
of the certificate it lists. The hub has no signing or encryption key of its own (it
relays sealed envelopes it cannot read), so the TLS key is the only one to prove.

Pure: bytes and values in, a HubRequest or an EnrolmentError out; the caller checks
freshness against its own clock.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.crypto.ids import tls_pin
from node.identity.enrolment import (
    Endpoint,
    EnrolmentError,
    b64_text,
    check_name,
    format_time,
    parse_endpoint,
    parse_time,
    read_object,
    read_string,
    read_tls_certificate,
)
from node.identity.keys import (
    TLS_SIGNATURE,
    certificate_pem,
    verify_tls_signature,
)

FORMAT = "ephyto-hub-request"
VERSION = 1
MAX_HUB_REQUEST_BYTES = 32 * 1024
# Its own context: an NPPO's enrolment proof can never pass for a hub's, nor the reverse.
CONTEXT_TLS = b"ephyto hub request v1: tls key\x00"

_BODY = frozenset(
    {"type", "version", "name", "endpoint", "created", "valid_from", "valid_until", "tls"}
)
_TLS = frozenset({"algorithm", "certificate", "pin"})


@dataclass(frozen=True, slots=True)
class HubRequest:
    """A verified hub request; `body` is the exact byte string the proof signs."""

    name: str
    endpoint: Endpoint
    created: datetime
    valid_from: datetime
    valid_until: datetime
    tls_certificate: x509.Certificate
    body: bytes

    @property
    def tls_pin(self) -> str:
        return tls_pin(self.tls_certificate)

    @property
    def certificate_pem(self) -> bytes:
        return certificate_pem(self.tls_certificate)


def build_hub_request(
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    *,
    name: str,
    endpoint: str,
    created: datetime,
) -> bytes:
    """The canonical bytes of a signed hub request; EnrolmentError on bad values.

    The request is valid for the certificate's own validity period.
    """
    if certificate.public_key() != key.public_key():
        raise EnrolmentError("the TLS certificate is not for the TLS key")
    body = {
        "type": FORMAT,
        "version": VERSION,
        "name": check_name(name),
        "endpoint": parse_endpoint(endpoint).url,
        "created": format_time(created),
        "valid_from": format_time(certificate.not_valid_before_utc),
        "valid_until": format_time(certificate.not_valid_after_utc),
        "tls": {
            "algorithm": "ecdsa-p256-sha256",
            "certificate": certificate_pem(certificate).decode("ascii"),
            "pin": tls_pin(certificate),
        },
    }
    body_bytes = canonical_bytes(body)
    proof = key.sign(CONTEXT_TLS + body_bytes, TLS_SIGNATURE)
    data = canonical_bytes({"body": body, "proofs": {"tls": b64_text(proof)}})
    verify_hub_request(data)  # what the operator sends is what the registry accepts
    return data


def verify_hub_request(data: bytes) -> HubRequest:
    """The hub request in `data`, its proof checked; EnrolmentError saying what failed."""
    if len(data) > MAX_HUB_REQUEST_BYTES:
        raise EnrolmentError(f"hub request is {len(data)} bytes, over {MAX_HUB_REQUEST_BYTES}")
    try:
        document = json.loads(data)
        canonical = canonical_bytes(document)
    except (ValueError, UnicodeDecodeError, CanonicalJsonError):
        raise EnrolmentError("hub request is not canonical JSON") from None
    if canonical != data:
        raise EnrolmentError(
            "hub request is not canonical JSON: send the file exactly as `ephyto hub init` wrote it"
        )
    top = read_object(document, frozenset({"body", "proofs"}), "request")
    body = read_object(top["body"], _BODY, "body")
    proofs = read_object(top["proofs"], frozenset({"tls"}), "proofs")
    if body["type"] != FORMAT:
        raise EnrolmentError(f"body.type: expected {FORMAT!r}, got {body['type']!r:.40}")
    if type(body["version"]) is not int or body["version"] != VERSION:
        raise EnrolmentError(f"body.version: only version {VERSION} is understood")
    name = read_string(body, "name")
    if check_name(name) != name:
        raise EnrolmentError("body.name: has leading or trailing spaces")
    endpoint = parse_endpoint(read_string(body, "endpoint"))
    if endpoint.url != body["endpoint"]:
        raise EnrolmentError(f"body.endpoint: not in the form {endpoint.url!r}")
    created = parse_time(read_string(body, "created"), "body.created")
    valid_from = parse_time(read_string(body, "valid_from"), "body.valid_from")
    valid_until = parse_time(read_string(body, "valid_until"), "body.valid_until")
    if valid_until <= valid_from:
        raise EnrolmentError("body.valid_until: not after valid_from")
    certificate = read_tls_certificate(body["tls"], "", endpoint, valid_from, valid_until)
    public = certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)  # checked by _certificate
    body_bytes = canonical_bytes(body)
    proof = read_string(proofs, "tls", "proofs")
    try:
        signature = base64.b64decode(proof, validate=True)
    except (binascii.Error, ValueError):
        raise EnrolmentError("proofs.tls: not base64") from None
    if not verify_tls_signature(public, signature, CONTEXT_TLS + body_bytes):
        raise EnrolmentError("proofs.tls: the TLS key's proof does not verify")
    return HubRequest(name, endpoint, created, valid_from, valid_until, certificate, body_bytes)
