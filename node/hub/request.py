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
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import SignatureAlgorithmOID

from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.crypto.ids import tls_pin
from node.identity.enrolment import (
    Endpoint,
    EnrolmentError,
    check_name,
    format_time,
    parse_endpoint,
    parse_time,
)
from node.identity.keys import (
    TLS_CURVE,
    TLS_SIGNATURE,
    certificate_pem,
    tls_san,
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
    data = canonical_bytes({"body": body, "proofs": {"tls": _b64(proof)}})
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
    top = _object(document, frozenset({"body", "proofs"}), "request")
    body = _object(top["body"], _BODY, "body")
    proofs = _object(top["proofs"], frozenset({"tls"}), "proofs")
    if body["type"] != FORMAT:
        raise EnrolmentError(f"body.type: expected {FORMAT!r}, got {body['type']!r:.40}")
    if type(body["version"]) is not int or body["version"] != VERSION:
        raise EnrolmentError(f"body.version: only version {VERSION} is understood")
    name = _string(body, "name")
    if check_name(name) != name:
        raise EnrolmentError("body.name: has leading or trailing spaces")
    endpoint = parse_endpoint(_string(body, "endpoint"))
    if endpoint.url != body["endpoint"]:
        raise EnrolmentError(f"body.endpoint: not in the form {endpoint.url!r}")
    created = parse_time(_string(body, "created"), "body.created")
    valid_from = parse_time(_string(body, "valid_from"), "body.valid_from")
    valid_until = parse_time(_string(body, "valid_until"), "body.valid_until")
    if valid_until <= valid_from:
        raise EnrolmentError("body.valid_until: not after valid_from")
    certificate = _certificate(body["tls"], endpoint, valid_from, valid_until)
    public = certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)  # checked by _certificate
    body_bytes = canonical_bytes(body)
    proof = _string(proofs, "tls", "proofs")
    try:
        signature = base64.b64decode(proof, validate=True)
    except (binascii.Error, ValueError):
        raise EnrolmentError("proofs.tls: not base64") from None
    if not verify_tls_signature(public, signature, CONTEXT_TLS + body_bytes):
        raise EnrolmentError("proofs.tls: the TLS key's proof does not verify")
    return HubRequest(name, endpoint, created, valid_from, valid_until, certificate, body_bytes)


def _certificate(
    value: object, endpoint: Endpoint, start: datetime, end: datetime
) -> x509.Certificate:
    tls = _object(value, _TLS, "body.tls")
    if tls["algorithm"] != "ecdsa-p256-sha256":
        raise EnrolmentError("body.tls.algorithm: expected 'ecdsa-p256-sha256'")
    pem = _string(tls, "certificate", "body.tls").encode("ascii", "replace")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        if certificate_pem(certificate) != pem:
            raise EnrolmentError("body.tls.certificate: not exactly one certificate in plain PEM")
        public = certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != TLS_CURVE.name:
            raise EnrolmentError("body.tls.certificate: the key is not ECDSA P-256")
        if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
            raise EnrolmentError("body.tls.certificate: not signed with ECDSA-SHA256")
        certificate.verify_directly_issued_by(certificate)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, x509.InvalidVersion):
        raise EnrolmentError("body.tls.certificate: not a valid self-signed certificate") from None
    except x509.ExtensionNotFound:
        raise EnrolmentError("body.tls.certificate: has no subject alternative name") from None
    if tls["pin"] != tls_pin(certificate):
        raise EnrolmentError("body.tls.pin: does not match the certificate")
    expected = tls_san(endpoint.host, "")
    if expected not in names:
        raise EnrolmentError(f"body.tls.certificate: does not name {expected.value}")
    if certificate.not_valid_before_utc > start or certificate.not_valid_after_utc < end:
        raise EnrolmentError("body.tls.certificate: does not cover valid_from to valid_until")
    return certificate


def _object(value: object, fields: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnrolmentError(f"{where}: expected an object")
    if extra := sorted(set(value) - fields):
        raise EnrolmentError(f"{where}: unknown field {extra[0]!r}")
    if missing := sorted(fields - set(value)):
        raise EnrolmentError(f"{where}: missing field {missing[0]!r}")
    return value


def _string(obj: dict[str, Any], field: str, where: str = "body") -> str:
    value = obj[field]
    if not isinstance(value, str):
        raise EnrolmentError(f"{where}.{field}: expected a string")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
