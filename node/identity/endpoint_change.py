"""The endpoint change request: an enrolled NPPO moves its direct endpoint, or goes
hub-only, with a request signed by its current signing key (docs/protocol.md, Part B).

Canonical JSON of `{"body": {...}, "proofs": {"current_key": ...}}`, like the rotation
request. No new key is involved, so the one proof is the authorisation. The TLS pin does
not change: nodes pin the partner's key, not its host name (Part E), so a move needs no
new certificate. Pure: the caller passes the time and the keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.identity.enrolment import (
    EnrolmentError,
    _proof,
    b64_text,
    check_country,
    format_time,
    load_canonical_request,
    parse_endpoint,
    parse_time,
    read_object,
    read_string,
)
from node.identity.keys import verify_ed25519

FORMAT = "ephyto-endpoint-change"
VERSION = 1
MAX_ENDPOINT_CHANGE_BYTES = 4 * 1024
CONTEXT_CURRENT = b"ephyto endpoint change v1: current signing key\x00"

_BODY_FIELDS = frozenset({"type", "version", "country", "created", "current_key_id", "endpoint"})


class EndpointChangeError(EnrolmentError):
    """An endpoint change request that is malformed or does not verify."""


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """A verified endpoint change: who, when, signed by which key, the new endpoint."""

    country: str
    created: datetime
    current_key_id: str
    endpoint: str | None  # None: hub only from now on


def build_endpoint_change(
    current: Ed25519PrivateKey, *, country: str, endpoint: str | None, created: datetime
) -> bytes:
    """The canonical bytes of a request moving `country` to `endpoint` (None: hub only)."""
    url = None if endpoint is None else parse_endpoint(endpoint).url
    body = {
        "type": FORMAT,
        "version": VERSION,
        "country": check_country(country),
        "created": format_time(created),
        "current_key_id": key_id(current.public_key().public_bytes_raw()),
        "endpoint": url,
    }
    proof = current.sign(CONTEXT_CURRENT + canonical_bytes(body))
    return canonical_bytes({"body": body, "proofs": {"current_key": b64_text(proof)}})


def endpoint_change_country(data: bytes) -> str:
    """The country a request names, read before verifying (to find its keys); raises
    EndpointChangeError when there is none to read."""
    try:
        country = json.loads(data)["body"]["country"]
        return check_country(country)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, EnrolmentError):
        raise EndpointChangeError("not an endpoint change request naming a country") from None


def verify_endpoint_change(data: bytes, signing_keys: Iterable[bytes]) -> EndpointChange:
    """The request in `data`, signed by one of `signing_keys` (raw Ed25519: the NPPO's
    signing keys valid now); EndpointChangeError saying what failed otherwise."""
    document = load_canonical_request(
        data,
        max_bytes=MAX_ENDPOINT_CHANGE_BYTES,
        what="endpoint change request",
        error=EndpointChangeError,
    )
    try:
        top = read_object(document, {"body", "proofs"}, "request")
        body = read_object(top["body"], _BODY_FIELDS, "body")
        proofs = read_object(top["proofs"], {"current_key"}, "proofs")
        if body["type"] != FORMAT:
            raise EndpointChangeError(f"body.type: expected {FORMAT!r}, got {body['type']!r}")
        if body["version"] != VERSION:
            raise EndpointChangeError(f"body.version: only version {VERSION} is understood")
        country = check_country(read_string(body, "country"))
        created = parse_time(read_string(body, "created"), "body.created")
        signer_id = read_string(body, "current_key_id")
        endpoint = None
        if body["endpoint"] is not None:
            text = read_string(body, "endpoint")
            endpoint = parse_endpoint(text).url
            if endpoint != text:
                raise EndpointChangeError(f"body.endpoint: not in the form {endpoint!r}")
        proof = _proof(proofs, "current_key")
    except EndpointChangeError:
        raise
    except EnrolmentError as e:
        raise EndpointChangeError(str(e)) from None
    keys = {key_id(k): k for k in signing_keys}
    if signer_id not in keys:
        known = ", ".join(sorted(keys)) or "none"
        raise EndpointChangeError(
            f"body.current_key_id: {signer_id} is not a signing key of {country} valid now"
            f" (the registry lists {known})"
        )
    if not verify_ed25519(keys[signer_id], proof, CONTEXT_CURRENT + canonical_bytes(body)):
        raise EndpointChangeError("proofs.current_key: not signed by the NPPO's signing key")
    return EndpointChange(country, created, signer_id, endpoint)
