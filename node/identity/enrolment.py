"""The enrolment request: a node's public keys and proofs that it holds each private key.

The file is canonical JSON (node.crypto.canonical) of `{"body": {...}, "proofs": {...}}`.
Every proof signs the same message, a per-key context string followed by the exact
bytes of `body` (which, in a canonical document, are its canonical form). The body holds
all three public keys, so each proof binds the whole set and the names around it.

- signing key (Ed25519): an Ed25519 signature;
- TLS key (ECDSA P-256): a DER ECDSA-SHA256 signature by the key in the certificate;
- encryption key (X25519): X25519 cannot sign, so the node signs with the Ed25519 key of
  the same scalar (the key is made from an Ed25519 seed, see keys.py). The verifier maps
  the X25519 public key to its two Edwards points (y = (u - 1) / (u + 1), either sign)
  and checks the signature against them with the library. A valid signature shows
  knowledge of the discrete log of one of them, +-k, and either decrypts for the X25519
  key. Sound offline and one-shot; unlike a MAC keyed by a Diffie-Hellman with a
  published "proof key", which anyone can compute from the public key alone, and unlike
  a DH with the registry's key, which needs a registry key the node does not have yet.

Pure: the caller passes the time and checks freshness (`created`, the window) itself.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import SignatureAlgorithmOID

from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.crypto.ids import key_id, tls_pin
from node.errors import InputError
from node.identity.keys import (
    TLS_CURVE,
    TLS_SIGNATURE,
    NodeKeys,
    certificate_pem,
    edwards_candidates,
    is_low_order_ed25519,
    tls_san,
    verify_ed25519,
    verify_tls_signature,
)

FORMAT = "ephyto-enrolment-request"
VERSION = 1
MAX_REQUEST_BYTES = 64 * 1024
MAX_NAME_CHARS = 200
# One context per key, so a proof made for one key can never stand for another.
CONTEXT_SIGNING = b"ephyto enrolment request v1: signing key\x00"
CONTEXT_ENCRYPTION = b"ephyto enrolment request v1: encryption key\x00"
CONTEXT_TLS = b"ephyto enrolment request v1: tls key\x00"

_BODY_FIELDS = frozenset(
    {
        "type", "version", "country", "name", "endpoint", "created", "valid_from",
        "valid_until", "signing_key", "encryption_key", "tls",
    }
)  # fmt: skip
_KEY_FIELDS = frozenset({"algorithm", "public_key", "key_id"})
_TLS_FIELDS = frozenset({"algorithm", "certificate", "pin"})
_PROOF_FIELDS = frozenset({"signing_key", "encryption_key", "tls"})
_COUNTRY = re.compile(r"[A-Z]{2}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_ENDPOINT = re.compile(r"https://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?/?")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class EnrolmentError(InputError):
    """An enrolment request (or a value for one) is malformed or a proof fails."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A node's direct HTTPS endpoint; `host` is a lowercase DNS name or an IP literal."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The one spelling used in requests and the directory: `https://host:port`."""
        return f"https://{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        return self.host.startswith("[") or _is_ip(self.host)


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    """A verified enrolment request; `body` is the exact byte string the proofs sign."""

    country: str
    name: str
    endpoint: Endpoint | None
    created: datetime
    valid_from: datetime
    valid_until: datetime
    signing_key: bytes
    encryption_key: bytes
    tls_certificate: x509.Certificate
    body: bytes

    @property
    def signing_key_id(self) -> str:
        return key_id(self.signing_key)

    @property
    def encryption_key_id(self) -> str:
        return key_id(self.encryption_key)

    @property
    def tls_pin(self) -> str:
        return tls_pin(self.tls_certificate)


def build_request(
    keys: NodeKeys,
    certificate: x509.Certificate,
    *,
    country: str,
    name: str,
    endpoint: str | None,
    created: datetime,
    valid_from: datetime,
    valid_until: datetime,
) -> bytes:
    """The canonical JSON bytes of a signed request; raises EnrolmentError on bad values."""
    if keys.encryption_twin is None:
        raise EnrolmentError("the encryption key's seed is gone: make a new key to enrol it")
    if keys.encryption_twin.public_key().public_bytes_raw() not in edwards_candidates(
        keys.encryption.public_key().public_bytes_raw()
    ):
        raise EnrolmentError("the encryption key was not made from the seed given with it")
    if certificate.public_key() != keys.tls.public_key():
        raise EnrolmentError("the TLS certificate is not for the TLS key")
    ep = parse_endpoint(endpoint) if endpoint is not None else None
    signing_public = keys.signing.public_key().public_bytes_raw()
    encryption_public = keys.encryption.public_key().public_bytes_raw()
    body = {
        "type": FORMAT,
        "version": VERSION,
        "country": check_country(country),
        "name": check_name(name),
        "endpoint": ep.url if ep else None,
        "created": format_time(created),
        "valid_from": format_time(valid_from),
        "valid_until": format_time(valid_until),
        "signing_key": _key_entry("ed25519", signing_public),
        "encryption_key": _key_entry("x25519", encryption_public),
        "tls": {
            "algorithm": "ecdsa-p256-sha256",
            "certificate": certificate_pem(certificate).decode("ascii"),
            "pin": tls_pin(certificate),
        },
    }
    body_bytes = canonical_bytes(body)
    proofs = {
        "signing_key": b64_text(keys.signing.sign(CONTEXT_SIGNING + body_bytes)),
        "encryption_key": b64_text(keys.encryption_twin.sign(CONTEXT_ENCRYPTION + body_bytes)),
        "tls": b64_text(keys.tls.sign(CONTEXT_TLS + body_bytes, TLS_SIGNATURE)),
    }
    data = canonical_bytes({"body": body, "proofs": proofs})
    verify_request(data)  # what we hand the operator is what the registry accepts
    return data


def verify_request(data: bytes, *, max_bytes: int = MAX_REQUEST_BYTES) -> EnrolmentRequest:
    """The request in `data`, every proof checked; raises EnrolmentError saying what failed.

    Freshness is the caller's: compare `created` and the window with its own clock.
    """
    if len(data) > max_bytes:
        raise EnrolmentError(f"request is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        document = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError):
        raise EnrolmentError("request is not JSON") from None
    try:
        canonical = canonical_bytes(document)
    except CanonicalJsonError:  # a float, say: never canonical
        canonical = b""
    if canonical != data:
        raise EnrolmentError(
            "request is not canonical JSON: send the file exactly as `ephyto node init` wrote it"
        )
    top = read_object(document, {"body", "proofs"}, "request")
    body = read_object(top["body"], _BODY_FIELDS, "body")
    proofs = read_object(top["proofs"], _PROOF_FIELDS, "proofs")
    if body["type"] != FORMAT:
        raise EnrolmentError(f"body.type: expected {FORMAT!r}, got {body['type']!r}")
    if type(body["version"]) is not int or body["version"] != VERSION:
        raise EnrolmentError(f"body.version: only version {VERSION} is understood")
    country = check_country(read_string(body, "country"))
    name = read_string(body, "name")
    if check_name(name) != name:
        raise EnrolmentError("body.name: has leading or trailing spaces")
    endpoint = None
    if body["endpoint"] is not None:
        text = read_string(body, "endpoint")
        endpoint = parse_endpoint(text)
        if endpoint.url != text:
            raise EnrolmentError(f"body.endpoint: not in the form {endpoint.url!r}")
    created = parse_time(read_string(body, "created"), "body.created")
    valid_from = parse_time(read_string(body, "valid_from"), "body.valid_from")
    valid_until = parse_time(read_string(body, "valid_until"), "body.valid_until")
    if valid_until <= valid_from:
        raise EnrolmentError("body.valid_until: not after valid_from")
    signing_key = _key(body, "signing_key", "ed25519")
    if is_low_order_ed25519(signing_key):
        raise EnrolmentError("body.signing_key: not a usable Ed25519 public key")
    encryption_key = _key(body, "encryption_key", "x25519")
    try:
        twins = edwards_candidates(encryption_key)
    except ValueError as e:
        raise EnrolmentError(f"body.encryption_key: {e}") from None
    certificate = read_tls_certificate(body["tls"], country, endpoint, valid_from, valid_until)

    body_bytes = canonical_bytes(body)
    if not verify_ed25519(signing_key, _proof(proofs, "signing_key"), CONTEXT_SIGNING + body_bytes):
        raise EnrolmentError("proofs.signing_key: the signing key's proof does not verify")
    encryption_proof = _proof(proofs, "encryption_key")
    if not any(
        verify_ed25519(twin, encryption_proof, CONTEXT_ENCRYPTION + body_bytes) for twin in twins
    ):
        raise EnrolmentError("proofs.encryption_key: the encryption key's proof does not verify")
    tls_public = certificate.public_key()
    assert isinstance(tls_public, ec.EllipticCurvePublicKey)  # checked by _certificate
    if not verify_tls_signature(tls_public, _proof(proofs, "tls"), CONTEXT_TLS + body_bytes):
        raise EnrolmentError("proofs.tls: the TLS key's proof does not verify")
    return EnrolmentRequest(
        country=country,
        name=name,
        endpoint=endpoint,
        created=created,
        valid_from=valid_from,
        valid_until=valid_until,
        signing_key=signing_key,
        encryption_key=encryption_key,
        tls_certificate=certificate,
        body=body_bytes,
    )


def check_country(text: str) -> str:
    """`text` if it has the shape of an ISO 3166-1 alpha-2 code (two capitals)."""
    if not _COUNTRY.fullmatch(text):
        raise EnrolmentError(f"country {text!r} is not an ISO 3166-1 alpha-2 code such as NL")
    return text


def check_name(text: str) -> str:
    """The NPPO's name, trimmed: 1 to 200 characters, no control characters."""
    name = text.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise EnrolmentError(f"name must be 1 to {MAX_NAME_CHARS} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise EnrolmentError("name must not contain control characters")
    return name


def parse_endpoint(text: str) -> Endpoint:
    """An `https://HOST[:PORT][/]` URL as an Endpoint (port 443 if absent)."""
    match = _ENDPOINT.fullmatch(text)
    if not match:
        if not text.lower().startswith("https://"):
            raise EnrolmentError(f"endpoint {text!r} is not an https:// URL")
        raise EnrolmentError(f"endpoint {text!r} is not https://HOST:PORT (no path, no user)")
    host, port_text = match.group(1).lower(), match.group(2)
    port = int(port_text) if port_text else 443
    if not 1 <= port <= 65535:
        raise EnrolmentError(f"endpoint {text!r}: port {port} is out of range")
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise EnrolmentError(f"endpoint {text!r}: {host} is not an IPv6 address") from None
    elif _is_ip(host):
        host = str(ipaddress.IPv4Address(host))
    elif len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise EnrolmentError(f"endpoint {text!r}: {host!r} is not a valid host name")
    elif host.replace(".", "").isdigit():
        raise EnrolmentError(f"endpoint {text!r}: {host!r} is not a valid IPv4 address")
    return Endpoint(host=host, port=port)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC to the second (`2026-05-09T10:00:00Z`); sub-seconds are dropped."""
    if moment.tzinfo is None:
        raise ValueError("a time in a request must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, where: str) -> datetime:
    """A time written by format_time; raises EnrolmentError naming `where`."""
    if _TIME.fullmatch(text):
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            pass
    raise EnrolmentError(f"{where}: {text!r} is not a UTC time like 2026-05-09T10:00:00Z")


def read_tls_certificate(
    value: object,
    country: str,
    endpoint: Endpoint | None,
    start: datetime,
    end: datetime,
    *,
    check_name: bool = True,
) -> x509.Certificate:
    """`body.tls` of a request: a self-signed ECDSA P-256 certificate with its pin, naming
    the endpoint's host (or the country, or nothing for a hub; not checked when
    `check_name` is False), covering the validity."""
    tls = read_object(value, _TLS_FIELDS, "body.tls")
    if tls["algorithm"] != "ecdsa-p256-sha256":
        raise EnrolmentError(
            f"body.tls.algorithm: expected 'ecdsa-p256-sha256', got {tls['algorithm']!r}"
        )
    pem = read_string(tls, "certificate", "body.tls").encode("ascii", "replace")
    try:
        with warnings.catch_warnings():
            # What cryptography only warns of today (a serial number that is not
            # positive, say) it will refuse tomorrow: refuse it now, as RFC 5280 does.
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            certificate = x509.load_pem_x509_certificate(pem)
    except (ValueError, x509.InvalidVersion):
        raise EnrolmentError("body.tls.certificate: not a PEM X.509 certificate") from None
    except CryptographyDeprecationWarning as e:
        raise EnrolmentError(f"body.tls.certificate: not a valid certificate ({e})") from None
    if certificate_pem(certificate) != pem:
        raise EnrolmentError("body.tls.certificate: not exactly one certificate in plain PEM")
    try:
        # The library parses lazily: a malformed key or extension surfaces only here.
        _check_certificate(certificate, tls["pin"], country, endpoint, start, end, check_name)
    except (ValueError, UnsupportedAlgorithm):
        raise EnrolmentError("body.tls.certificate: malformed certificate") from None
    return certificate


def _check_certificate(
    certificate: x509.Certificate,
    pin: object,
    country: str,
    endpoint: Endpoint | None,
    start: datetime,
    end: datetime,
    check_name: bool = True,
) -> None:
    public = certificate.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != TLS_CURVE.name:
        raise EnrolmentError("body.tls.certificate: the key is not ECDSA P-256")
    if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise EnrolmentError("body.tls.certificate: not signed with ECDSA-SHA256")
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError):
        raise EnrolmentError("body.tls.certificate: not validly self-signed") from None
    if pin != tls_pin(certificate):
        raise EnrolmentError("body.tls.pin: does not match the certificate")
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise EnrolmentError("body.tls.certificate: has no subject alternative name") from None
    expected = tls_san(endpoint.host if endpoint else None, country)
    if check_name and expected not in names:
        raise EnrolmentError(f"body.tls.certificate: does not name {expected.value}")
    if certificate.not_valid_before_utc > start or certificate.not_valid_after_utc < end:
        raise EnrolmentError("body.tls.certificate: does not cover valid_from to valid_until")


def _key_entry(algorithm: str, public: bytes) -> dict[str, str]:
    return {"algorithm": algorithm, "public_key": b64_text(public), "key_id": key_id(public)}


def _key(body: dict[str, Any], field: str, algorithm: str) -> bytes:
    entry = read_object(body[field], _KEY_FIELDS, f"body.{field}")
    if entry["algorithm"] != algorithm:
        raise EnrolmentError(
            f"body.{field}.algorithm: expected {algorithm!r}, got {entry['algorithm']!r}"
        )
    public = _unb64(read_string(entry, "public_key", f"body.{field}"), f"body.{field}.public_key")
    if len(public) != 32:
        raise EnrolmentError(f"body.{field}.public_key: {len(public)} bytes, expected 32")
    if entry["key_id"] != key_id(public):
        raise EnrolmentError(f"body.{field}.key_id: does not match the public key")
    return public


def _proof(proofs: dict[str, Any], field: str) -> bytes:
    return _unb64(read_string(proofs, field, "proofs"), f"proofs.{field}")


def load_canonical_request(
    data: bytes, *, max_bytes: int, what: str, error: type[EnrolmentError]
) -> object:
    """`data` as JSON, refused with `error` unless it is at most `max_bytes`, names no key
    twice in an object and is canonical (one byte form, the one that was signed); `what`
    names the request in the message."""
    if len(data) > max_bytes:
        raise error(f"{what} is {len(data)} bytes, over {max_bytes}")
    try:
        document = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise error(f"{what} is not JSON") from None
    try:
        canonical = canonical_bytes(document)
    except CanonicalJsonError:  # a float, say: never canonical
        canonical = b""
    if canonical != data:
        raise error(f"{what} is not canonical JSON: send the file unchanged")
    return document


def read_object(value: object, fields: frozenset[str] | set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnrolmentError(f"{where}: expected an object")
    if extra := sorted(set(value) - fields):
        raise EnrolmentError(f"{where}: unknown field {extra[0]!r}")
    if missing := sorted(fields - set(value)):
        raise EnrolmentError(f"{where}: missing field {missing[0]!r}")
    return value


def read_string(obj: dict[str, Any], field: str, where: str = "body") -> str:
    value = obj[field]
    if not isinstance(value, str):
        raise EnrolmentError(f"{where}.{field}: expected a string")
    return value


def b64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, where: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnrolmentError(f"{where}: not base64") from None
    if b64_text(data) != text:  # one value, one spelling
        raise EnrolmentError(f"{where}: not canonical base64")
    return data


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result
