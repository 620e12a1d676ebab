"""The signed receipt: the receiver's word on one envelope, which the sender stores.

Wire form (docs/protocol.md, Part D): the canonical JSON object
`{"receipt": B64URL, "signature": B64URL}`; the receipt body is canonical JSON and the
signature is Ed25519 over `RECEIPT_DOMAIN + body`. Both are deterministic, so one
receipt has one byte form: a repeated message id gets the stored bytes back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.envelope import _codec as c
from node.envelope.errors import (
    BadSignatureError,
    EnvelopeError,
    MalformedReceiptError,
    ReceiptMismatchError,
    TooLargeError,
    UnsupportedVersionError,
)

RECEIPT_VERSION = "ephyto-receipt/1"
RECEIPT_DOMAIN = b"ephyto-receipt/1\x00"
MAX_RECEIPT_BYTES = 256 * 1024
MAX_FINDINGS = 100
MAX_FINDING_CHARS = 500
_SIGNATURE_BYTES = 64
_WIRE_MEMBERS = frozenset({"receipt", "signature"})
_MEMBERS = frozenset(
    {
        "version",
        "message_id",
        "content_digest",
        "from",
        "to",
        "received",
        "outcome",
        "findings",
        "receiver_key_id",
    }
)
_E = MalformedReceiptError


class Outcome(StrEnum):
    """What the receiver did with the message."""

    ACCEPTED = "accepted"
    ACCEPTED_WITH_WARNINGS = "accepted-with-warnings"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """One receipt; `from_country` is the receiver, `to_country` the original sender."""

    message_id: str
    content_digest: str
    from_country: str
    to_country: str
    received: datetime
    outcome: Outcome
    findings: tuple[str, ...] = ()
    receiver_key_id: str = ""

    def __post_init__(self) -> None:
        """Refuse an ill-shaped field at construction, on either side."""
        c.require_addressing(self.message_id, self.from_country, self.to_country, _E)
        c.require(
            c.is_digest(self.content_digest),
            f"content_digest {c.shown(self.content_digest)} is not sha256: + 64 lowercase hex",
            _E,
        )
        c.format_utc(self.received, "received", _E)
        c.require(
            self.outcome in tuple(Outcome),
            f"outcome {c.shown(self.outcome)} is not one of " + ", ".join(Outcome),
            _E,
        )
        c.require(
            isinstance(self.findings, tuple) and len(self.findings) <= MAX_FINDINGS,
            f"findings must be a tuple of at most {MAX_FINDINGS} strings",
            _E,
        )
        for finding in self.findings:
            c.require(
                isinstance(finding, str) and c.is_short_text(finding, MAX_FINDING_CHARS),
                f"each finding must be 1 to {MAX_FINDING_CHARS} characters"
                " without control characters",
                _E,
            )
        # A refusal or a warning that does not say why leaves the sender nothing to fix.
        c.require(
            self.outcome == Outcome.ACCEPTED or bool(self.findings),
            f"a receipt with outcome {self.outcome} must give at least one finding",
            _E,
        )
        c.require(
            self.receiver_key_id == "" or c.is_key_id(self.receiver_key_id),
            f"receiver_key_id {c.shown(self.receiver_key_id)} is not 32 lowercase hex digits",
            _E,
        )

    def to_bytes(self) -> bytes:
        """The canonical JSON body that is signed; raises MalformedReceiptError."""
        c.require(self.receiver_key_id != "", "receiver_key_id must be set", _E)
        return canonical_bytes(
            {
                "version": RECEIPT_VERSION,
                "message_id": self.message_id,
                "content_digest": self.content_digest,
                "from": self.from_country,
                "to": self.to_country,
                "received": c.format_utc(self.received, "received", _E),
                "outcome": str(self.outcome),
                "findings": list(self.findings),
                "receiver_key_id": self.receiver_key_id,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Parse a receipt body; raises MalformedReceiptError or UnsupportedVersionError."""
        value = c.canonical_object(data, "receipt", _E)
        version = value.get("version")
        if version != RECEIPT_VERSION:
            raise UnsupportedVersionError(
                f"receipt version {c.shown(version)} is not supported; we read {RECEIPT_VERSION}"
            )
        c.check_members(value, _MEMBERS, "receipt", _E)
        s = {n: c.string_member(value, n, "receipt", _E) for n in _MEMBERS - {"findings"}}
        return cls(
            message_id=s["message_id"],
            content_digest=s["content_digest"],
            from_country=s["from"],
            to_country=s["to"],
            received=c.parse_utc(s["received"], "receipt member received", _E),
            outcome=_outcome(s["outcome"]),
            findings=_findings(value["findings"]),
            receiver_key_id=_nonempty(s["receiver_key_id"], "receiver_key_id"),
        )


def make_receipt(receipt: Receipt, *, receiver_signing_key: Ed25519PrivateKey) -> bytes:
    """Sign `receipt` and return its wire bytes (deterministic for given inputs).

    `receiver_key_id` is filled in when empty; raises MalformedReceiptError when it is set
    and is not the id of `receiver_signing_key`.
    """
    actual = key_id(_raw(receiver_signing_key.public_key()))
    if receipt.receiver_key_id and receipt.receiver_key_id != actual:
        raise _E(f"receiver_key_id {receipt.receiver_key_id} is not the signing key's {actual}")
    body = Receipt(
        message_id=receipt.message_id,
        content_digest=receipt.content_digest,
        from_country=receipt.from_country,
        to_country=receipt.to_country,
        received=receipt.received,
        outcome=receipt.outcome,
        findings=receipt.findings,
        receiver_key_id=actual,
    ).to_bytes()
    signature = receiver_signing_key.sign(RECEIPT_DOMAIN + body)
    return canonical_bytes(
        {"receipt": c.b64url_encode(body), "signature": c.b64url_encode(signature)}
    )


def verify_receipt(
    data: bytes,
    *,
    expected_message_id: str,
    expected_digest: str,
    receiver_public_key: Ed25519PublicKey,
) -> Receipt:
    """Verify a receipt for the message we sent, with the receiver's key from the directory.

    Raises TooLargeError, MalformedReceiptError, BadSignatureError,
    UnsupportedVersionError, ReceiptMismatchError.
    """
    if len(data) > MAX_RECEIPT_BYTES:
        raise TooLargeError(
            f"receipt is {len(data)} bytes, more than the {MAX_RECEIPT_BYTES} accepted"
        )
    wire = c.canonical_object(data, "receipt wire form", _E)
    c.check_members(wire, _WIRE_MEMBERS, "receipt wire form", _E)
    body = c.b64url_decode(
        c.string_member(wire, "receipt", "receipt wire form", _E), "receipt body", _E
    )
    signature = c.b64url_decode(
        c.string_member(wire, "signature", "receipt wire form", _E), "receipt signature", _E
    )
    if len(signature) != _SIGNATURE_BYTES:
        raise _E(f"receipt signature is {len(signature)} bytes, not {_SIGNATURE_BYTES}")
    # The key is known before reading, so nothing of the body is parsed unauthenticated.
    try:
        receiver_public_key.verify(signature, RECEIPT_DOMAIN + body)
    except InvalidSignature as e:
        raise BadSignatureError(
            f"receipt for message {expected_message_id} is not signed by key"
            f" {key_id(_raw(receiver_public_key))}"
        ) from e
    receipt = Receipt.from_bytes(body)
    if receipt.receiver_key_id != key_id(_raw(receiver_public_key)):
        raise _E(f"receipt names key {receipt.receiver_key_id} but is signed by another")
    if receipt.message_id != expected_message_id:
        raise ReceiptMismatchError(
            f"receipt is for message {receipt.message_id}, expected {expected_message_id}"
        )
    if receipt.content_digest != expected_digest:
        raise ReceiptMismatchError(
            f"receipt for message {receipt.message_id} acknowledges content"
            f" {receipt.content_digest}, we sent {expected_digest}"
        )
    return receipt


def verify_receipt_from(
    data: bytes,
    *,
    expected_message_id: str,
    expected_digest: str,
    receiver: str,
    sender: str,
    receiver_keys: Sequence[Ed25519PublicKey],
) -> Receipt:
    """`verify_receipt` with each signing key the directory lists for `receiver` (two
    during a rotation), and the receipt must be from `receiver` to `sender`.

    Raises what verify_receipt raises; BadSignatureError when no key verifies it.
    """
    failure: EnvelopeError | None = None
    for key in receiver_keys:
        try:
            receipt = verify_receipt(
                data,
                expected_message_id=expected_message_id,
                expected_digest=expected_digest,
                receiver_public_key=key,
            )
        except BadSignatureError as e:
            failure = e  # perhaps the other key of a rotation
            continue
        if receipt.from_country != receiver or receipt.to_country != sender:
            raise ReceiptMismatchError(
                f"receipt for message {expected_message_id} is from {receipt.from_country}"
                f" to {receipt.to_country}, expected from {receiver} to {sender}"
            )
        return receipt
    raise failure or BadSignatureError(f"{receiver} has no signing key valid now")


def _outcome(text: str) -> Outcome:
    try:
        return Outcome(text)
    except ValueError as e:
        raise _E(f"outcome {c.shown(text)} is not one of " + ", ".join(Outcome)) from e


def _findings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _E("receipt member findings is not a list of strings")
    return tuple(value)


def _nonempty(text: str, name: str) -> str:
    c.require(text != "", f"receipt member {name} is empty", _E)
    return text


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
