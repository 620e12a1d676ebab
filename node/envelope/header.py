"""The envelope header: what a node may read before, and without, decrypting.

Its bytes are canonical JSON. They are signed, and they are the HPKE `info`, so the
ciphertext cannot be lifted into another header. Readers keep the exact bytes received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from node.crypto.canonical import canonical_bytes
from node.envelope import _codec as c
from node.envelope.errors import MalformedHeaderError, UnsupportedVersionError

ENVELOPE_VERSION = "ephyto-envelope/1"
MAX_HEADER_BYTES = 4096
CERTIFICATE_TYPES = frozenset({"851", "657"})
# UNTDID 4405, the subset the ePhyto exchange uses (docs/protocol.md section 1).
CERTIFICATE_STATUSES = frozenset({"39", "40", "41", "42", "44", "70"})
MAX_CERTIFICATE_NUMBER_CHARS = 128
# A response (node/envelope/response.py) is told from a certificate by one extra header
# member, `kind`: a node built before responses refuses it as an unknown member (400)
# rather than reading a response as a certificate. A certificate's header has no `kind`,
# so its bytes are unchanged.
CERTIFICATE = "certificate"
RESPONSE = "response"
RESPONSE_MEDIA_TYPE = "application/ephyto-response+json"
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")

_MEMBERS = frozenset(
    {
        "version",
        "message_id",
        "from",
        "to",
        "certificate_type",
        "certificate_status",
        "certificate_number",
        "created",
        "media_type",
        "content_digest",
        "sender_key_id",
        "recipient_key_id",
    }
)
_E = MalformedHeaderError


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeHeader:
    """One envelope's header; `content_digest` and the key ids may be left "" for `seal`."""

    message_id: str
    from_country: str
    to_country: str
    certificate_type: str
    certificate_status: str
    certificate_number: str
    created: datetime
    media_type: str = "application/xml"
    content_digest: str = ""
    sender_key_id: str = ""
    recipient_key_id: str = ""
    kind: str = CERTIFICATE

    def __post_init__(self) -> None:
        """Refuse an ill-shaped field at construction, whichever side builds the header."""
        c.require_addressing(self.message_id, self.from_country, self.to_country, _E)
        c.require(
            self.certificate_type in CERTIFICATE_TYPES,
            f"certificate_type {c.shown(self.certificate_type)} is not 851 or 657",
            _E,
        )
        c.require(
            self.certificate_status in CERTIFICATE_STATUSES,
            f"certificate_status {c.shown(self.certificate_status)} is not one of "
            + ", ".join(sorted(CERTIFICATE_STATUSES)),
            _E,
        )
        c.require(
            c.is_short_text(self.certificate_number, MAX_CERTIFICATE_NUMBER_CHARS),
            f"certificate_number must be 1 to {MAX_CERTIFICATE_NUMBER_CHARS} characters"
            " without control characters",
            _E,
        )
        c.format_utc(self.created, "created", _E)
        c.require(
            _MEDIA_TYPE.fullmatch(self.media_type) is not None,
            f"media_type {c.shown(self.media_type)} is not a lowercase type/subtype",
            _E,
        )
        c.require(
            self.content_digest == "" or c.is_digest(self.content_digest),
            f"content_digest {c.shown(self.content_digest)} is not sha256: + 64 lowercase hex",
            _E,
        )
        for name in ("sender_key_id", "recipient_key_id"):
            value = getattr(self, name)
            c.require(
                value == "" or c.is_key_id(value),
                f"{name} {c.shown(value)} is not 32 lowercase hex digits",
                _E,
            )
        c.require(
            self.kind in (CERTIFICATE, RESPONSE),
            f"kind {c.shown(self.kind)} is not {CERTIFICATE} or {RESPONSE}",
            _E,
        )
        c.require(
            (self.kind == RESPONSE) == (self.media_type == RESPONSE_MEDIA_TYPE),
            f"a {RESPONSE} has media_type {RESPONSE_MEDIA_TYPE}, and only a {RESPONSE} has it",
            _E,
        )

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes of a complete header; raises MalformedHeaderError."""
        if not (self.content_digest and self.sender_key_id and self.recipient_key_id):
            raise _E("content_digest, sender_key_id and recipient_key_id must all be set")
        members = {"kind": RESPONSE} if self.kind == RESPONSE else {}
        return canonical_bytes(
            members
            | {
                "version": ENVELOPE_VERSION,
                "message_id": self.message_id,
                "from": self.from_country,
                "to": self.to_country,
                "certificate_type": self.certificate_type,
                "certificate_status": self.certificate_status,
                "certificate_number": self.certificate_number,
                "created": c.format_utc(self.created, "created", _E),
                "media_type": self.media_type,
                "content_digest": self.content_digest,
                "sender_key_id": self.sender_key_id,
                "recipient_key_id": self.recipient_key_id,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EnvelopeHeader:
        """Parse header bytes; raises MalformedHeaderError or UnsupportedVersionError."""
        if len(data) > MAX_HEADER_BYTES:
            raise _E(f"header is {len(data)} bytes, more than {MAX_HEADER_BYTES}")
        value = c.canonical_object(data, "header", _E)
        # The version decides which members exist, so it is read before they are checked.
        version = value.get("version")
        if version != ENVELOPE_VERSION:
            raise UnsupportedVersionError(
                f"envelope version {c.shown(version)} is not supported; we read {ENVELOPE_VERSION}"
            )
        # Present only on a response, and then exactly "response": one form per header.
        expected = _MEMBERS | {"kind"} if "kind" in value else _MEMBERS
        c.check_members(value, expected, "header", _E)
        s = {name: c.string_member(value, name, "header", _E) for name in sorted(expected)}
        c.require(
            s.get("kind", RESPONSE) == RESPONSE,
            f"header member kind {c.shown(s.get('kind'))} is not {RESPONSE}",
            _E,
        )
        for name in ("content_digest", "sender_key_id", "recipient_key_id"):
            c.require(s[name] != "", f"header member {name} is empty", _E)
        return cls(
            message_id=s["message_id"],
            from_country=s["from"],
            to_country=s["to"],
            certificate_type=s["certificate_type"],
            certificate_status=s["certificate_status"],
            certificate_number=s["certificate_number"],
            created=c.parse_utc(s["created"], "header member created", _E),
            media_type=s["media_type"],
            content_digest=s["content_digest"],
            sender_key_id=s["sender_key_id"],
            recipient_key_id=s["recipient_key_id"],
            kind=s.get("kind", CERTIFICATE),
        )
