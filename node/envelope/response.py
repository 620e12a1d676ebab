"""The importing NPPO's response to a certificate: `ephyto-response` version 1.

A small canonical JSON document (docs/protocol.md, Part D, "The response message"),
sealed in an envelope whose header has `kind` `response`. It answers one certificate
message: accepted, rejected (with a reason) or a correction requested (with a text), in
the spirit of UN/CEFACT SPSAcknowledgement (approved 39, rejected 41). Pure core: bytes
and values in, values or MalformedResponseError out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from node.crypto.canonical import canonical_bytes
from node.envelope import _codec as c
from node.envelope.binding import DocumentMismatchError
from node.envelope.errors import EnvelopeError, MalformedError
from node.envelope.header import MAX_CERTIFICATE_NUMBER_CHARS, RESPONSE_MEDIA_TYPE

__all__ = [
    "RESPONSE_MEDIA_TYPE",
    "Decision",
    "MalformedResponseError",
    "Response",
    "UnansweredError",
]

RESPONSE_FORMAT = "ephyto-response"
RESPONSE_VERSION = 1
MAX_RESPONSE_BYTES = 16384
MAX_TEXT_CHARS = 2000

_COMMON = frozenset(
    {
        "format",
        "version",
        "certificate_number",
        "certificate_message_id",
        "decision",
        "responded_at",
    }
)


class MalformedResponseError(MalformedError):
    """A response document that is not `ephyto-response` version 1 as specified."""


class UnansweredError(DocumentMismatchError):
    """An authentic response that answers no certificate the receiver sent to its sender,
    or names it other than it is: refused as a document mismatch (422)."""

    def __init__(self, message: str) -> None:
        self.mismatches = ()
        EnvelopeError.__init__(self, message)


_E = MalformedResponseError


class Decision(StrEnum):
    """What the importing NPPO says of the certificate."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CORRECTION_REQUESTED = "correction-requested"


# The one text member each decision carries: a rejection says why, a request for
# correction says what; an acceptance carries none.
_TEXT_MEMBER = {
    Decision.ACCEPTED: None,
    Decision.REJECTED: "reason",
    Decision.CORRECTION_REQUESTED: "text",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """One response; `text` is the reason of a rejection or the correction requested."""

    certificate_number: str
    certificate_message_id: str
    decision: Decision
    responded_at: datetime
    text: str | None = None

    def __post_init__(self) -> None:
        """Refuse an ill-shaped response at construction, whichever side builds it."""
        c.require(
            c.is_short_text(self.certificate_number, MAX_CERTIFICATE_NUMBER_CHARS),
            f"certificate_number must be 1 to {MAX_CERTIFICATE_NUMBER_CHARS} characters"
            " without control characters",
            _E,
        )
        c.require(
            c.is_uuid(self.certificate_message_id),
            f"certificate_message_id {c.shown(self.certificate_message_id)}"
            " is not a lowercase UUID",
            _E,
        )
        c.require(
            isinstance(self.decision, Decision),
            f"decision {c.shown(self.decision)} is not one of "
            + ", ".join(d.value for d in Decision),
            _E,
        )
        member = _TEXT_MEMBER[self.decision]
        if member is None:
            c.require(self.text is None, "an accepted response carries no reason or text", _E)
        else:
            c.require(
                isinstance(self.text, str) and c.is_short_text(self.text, MAX_TEXT_CHARS),
                f"a {self.decision.value} response needs a {member} of 1 to {MAX_TEXT_CHARS}"
                " characters without control characters",
                _E,
            )
        c.format_utc(self.responded_at, "responded_at", _E)

    def to_bytes(self) -> bytes:
        """The document's canonical JSON bytes: the sealed payload."""
        value: dict[str, object] = {
            "format": RESPONSE_FORMAT,
            "version": RESPONSE_VERSION,
            "certificate_number": self.certificate_number,
            "certificate_message_id": self.certificate_message_id,
            "decision": self.decision.value,
            "responded_at": c.format_utc(self.responded_at, "responded_at", _E),
        }
        member = _TEXT_MEMBER[self.decision]
        if member is not None:
            value[member] = self.text
        return canonical_bytes(value)

    @classmethod
    def from_bytes(cls, data: bytes) -> Response:
        """Parse a response document; raises MalformedResponseError."""
        if len(data) > MAX_RESPONSE_BYTES:
            raise _E(f"response is {len(data)} bytes, more than {MAX_RESPONSE_BYTES}")
        value = c.canonical_object(data, "response", _E)
        # Format and version decide which members exist, so they are read first.
        if value.get("format") != RESPONSE_FORMAT:
            raise _E(f"format {c.shown(value.get('format'))} is not {RESPONSE_FORMAT}")
        version = value.get("version")
        if type(version) is not int or version != RESPONSE_VERSION:
            raise _E(f"response version {c.shown(version)} is not {RESPONSE_VERSION}")
        decision_text = value.get("decision")
        try:
            decision = Decision(str(decision_text)) if isinstance(decision_text, str) else None
            if decision is None:
                raise ValueError(decision_text)
        except ValueError:
            raise _E(
                f"decision {c.shown(decision_text)} is not one of "
                + ", ".join(d.value for d in Decision)
            ) from None
        member = _TEXT_MEMBER[decision]
        expected = _COMMON if member is None else _COMMON | {member}
        c.check_members(value, expected, "response", _E)
        s = {
            name: c.string_member(value, name, "response", _E)
            for name in sorted(expected - {"version"})
        }
        return cls(
            certificate_number=s["certificate_number"],
            certificate_message_id=s["certificate_message_id"],
            decision=decision,
            responded_at=c.parse_utc(s["responded_at"], "response member responded_at", _E),
            text=None if member is None else s[member],
        )
