"""Byte-level rules shared by the envelope and the receipt: base64url, strict JSON, fields.

Every check here runs on unauthenticated bytes, so each one is bounded and refuses with
the caller's own error class instead of letting a library exception escape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.envelope.errors import EnvelopeError

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{32}")
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# C0, DEL, C1 and the Unicode line separators: a line break in a certificate number or
# a finding would forge extra lines in logs and in the operator's console.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def shown(value: object) -> str:
    """A value for an error message: repr (so one line), cut short (so one short line)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def b64url_encode(data: bytes) -> str:
    """RFC 4648 section 5 base64url, without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str, error: type[EnvelopeError]) -> bytes:
    """Strict unpadded base64url: one text per byte string, so no two wires carry one value."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise error(f"{what} is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise error(f"{what} is not unpadded base64url") from e
    if b64url_encode(data) != text:
        raise error(f"{what} is not canonical base64url (non-zero trailing bits)")
    return data


def canonical_object(data: bytes, what: str, error: type[EnvelopeError]) -> dict[str, Any]:
    """Parse bytes that must be exactly the canonical JSON form of one object."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise error(f"{what} is not UTF-8 JSON") from e
    if not isinstance(value, dict):
        raise error(f"{what} is not a JSON object")
    # Requiring the one canonical form also refuses duplicate keys, floats and
    # whitespace, so every implementation reads the same fields from the same bytes.
    try:
        canonical = canonical_bytes(value)
    except CanonicalJsonError as e:
        raise error(f"{what} holds a value canonical JSON forbids: {e}") from e
    if canonical != data:
        raise error(f"{what} is not in canonical JSON form (sorted keys, no whitespace)")
    return value


def check_members(
    value: dict[str, Any], expected: frozenset[str], what: str, error: type[EnvelopeError]
) -> None:
    """Exactly the expected members, each a string unless the caller checks it otherwise."""
    missing = sorted(expected - value.keys())
    extra = sorted(value.keys() - expected)
    if missing:
        raise error(f"{what} lacks member(s) {', '.join(missing)}")
    if extra:
        raise error(f"{what} has unknown member(s) {', '.join(extra)}")


def string_member(value: dict[str, Any], name: str, what: str, error: type[EnvelopeError]) -> str:
    item = value[name]
    if not isinstance(item, str):
        raise error(f"{what} member {name} is not a string")
    return item


def require(ok: bool, message: str, error: type[EnvelopeError]) -> None:
    if not ok:
        raise error(message)


def require_addressing(
    message_id: str, from_country: str, to_country: str, error: type[EnvelopeError]
) -> None:
    """The fields an envelope header and a receipt share: message id, from, to."""
    require(is_uuid(message_id), f"message_id {shown(message_id)} is not a lowercase UUID", error)
    for name, country in (("from", from_country), ("to", to_country)):
        require(
            is_country(country),
            f"{name} {shown(country)} is not an ISO 3166-1 alpha-2 code",
            error,
        )


def is_uuid(text: str) -> bool:
    return _UUID.fullmatch(text) is not None


def is_country(text: str) -> bool:
    return _COUNTRY.fullmatch(text) is not None


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None


def is_key_id(text: str) -> bool:
    return _KEY_ID.fullmatch(text) is not None


def is_short_text(text: str, max_chars: int) -> bool:
    return 0 < len(text) <= max_chars and _CONTROL.search(text) is None


def content_digest(payload: bytes) -> str:
    """`sha256:` + lowercase hex of SHA-256 over the plaintext payload."""
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def format_utc(moment: datetime, what: str, error: type[EnvelopeError]) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`; a moment with another offset or sub-seconds is refused."""
    offset = moment.utcoffset()
    # Refused rather than rounded: the value signed must be the value the caller holds.
    if offset is None or offset.total_seconds() != 0 or moment.microsecond:
        raise error(f"{what} must be a UTC datetime in whole seconds")
    # Built by hand: strftime does not zero-pad years below 1000 on every platform.
    m = moment
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def parse_utc(text: str, what: str, error: type[EnvelopeError]) -> datetime:
    if not _UTC.fullmatch(text):
        raise error(f"{what} {shown(text)} is not YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as e:
        raise error(f"{what} {shown(text)} is not a real date and time") from e
