"""The sealed envelope: a signed header and an HPKE ciphertext bound to it.

Wire form (docs/protocol.md, Part D): the canonical JSON object
`{"ciphertext": B64URL, "header": B64URL, "signature": B64URL}`. The header bytes are
carried base64url-encoded so they reach the receiver exactly as signed.

Opening checks, in this order: size, wire form, header, sender key, signature, recipient,
decryption, digest. Nothing of the payload is read before the signature verifies.
Replays (a message id seen before) are not this layer's concern: the store answers them.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.envelope import _codec as c
from node.envelope.errors import (
    BadSignatureError,
    DecryptionFailedError,
    DigestMismatchError,
    MalformedEnvelopeError,
    MalformedHeaderError,
    TooLargeError,
    UnknownKeyError,
    WrongRecipientError,
)
from node.envelope.header import ENVELOPE_VERSION, EnvelopeHeader

__all__ = [
    "ENVELOPE_VERSION",
    "SIGNATURE_DOMAIN",
    "EnvelopeHeader",
    "OpenedEnvelope",
    "SenderKeyResolver",
    "open_envelope",
    "peek_header",
    "seal",
    "signed_bytes",
]

SIGNATURE_DOMAIN = b"ephyto-envelope/1\x00"
# RFC 9180 mode_base, suite 0x0020 / 0x0001 / 0x0002.
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_ENC_BYTES = 32
_TAG_BYTES = 16
_SIGNATURE_BYTES = 64
_MEMBERS = frozenset({"ciphertext", "header", "signature"})

SenderKeyResolver = Callable[[str, str], Ed25519PublicKey]
"""`(country, key_id) -> key` from the directory; raises (ideally UnknownKeyError) when
the country has no such signing key valid now. Its exceptions propagate unchanged."""


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A verified, decrypted envelope; `header_bytes` are exactly the bytes that were signed."""

    header: EnvelopeHeader
    header_bytes: bytes
    payload: bytes


def seal(
    *,
    header: EnvelopeHeader,
    payload: bytes,
    sender_signing_key: Ed25519PrivateKey,
    recipient_public_key: X25519PublicKey,
) -> bytes:
    """Encrypt `payload` to the recipient, sign, and return the envelope's wire bytes.

    The content digest and both key ids are filled in when empty and checked when set;
    raises MalformedHeaderError when a set one disagrees with the payload or the keys.
    """
    complete = EnvelopeHeader(
        message_id=header.message_id,
        from_country=header.from_country,
        to_country=header.to_country,
        certificate_type=header.certificate_type,
        certificate_status=header.certificate_status,
        certificate_number=header.certificate_number,
        created=header.created,
        media_type=header.media_type,
        content_digest=_fill(header.content_digest, c.content_digest(payload), "content_digest"),
        sender_key_id=_fill(
            header.sender_key_id, key_id(_raw(sender_signing_key.public_key())), "sender_key_id"
        ),
        recipient_key_id=_fill(
            header.recipient_key_id, key_id(_raw(recipient_public_key)), "recipient_key_id"
        ),
        kind=header.kind,
    )
    header_bytes = complete.to_bytes()
    ciphertext = SUITE.encrypt(payload, recipient_public_key, info=header_bytes)
    signature = sender_signing_key.sign(signed_bytes(header_bytes, ciphertext))
    return _wire(header_bytes, ciphertext, signature)


def open_envelope(
    data: bytes,
    *,
    max_bytes: int,
    recipient_country: str,
    recipient_private_key: X25519PrivateKey,
    recipient_key_id: str,
    resolve_sender_key: SenderKeyResolver,
) -> OpenedEnvelope:
    """Verify and decrypt an envelope addressed to us.

    Raises TooLargeError, MalformedEnvelopeError, MalformedHeaderError,
    UnsupportedVersionError, UnknownKeyError, BadSignatureError, WrongRecipientError,
    DecryptionFailedError, DigestMismatchError, and whatever `resolve_sender_key` raises.
    """
    header_bytes, ciphertext, signature = _unwire(data, max_bytes)
    header = EnvelopeHeader.from_bytes(header_bytes)
    sender_key = resolve_sender_key(header.from_country, header.sender_key_id)
    # A resolver that hands back another key is a caller bug that would otherwise
    # surface as a misleading "bad signature".
    if key_id(_raw(sender_key)) != header.sender_key_id:
        raise UnknownKeyError(
            f"the directory key for {header.from_country} is not {header.sender_key_id}"
        )
    try:
        sender_key.verify(signature, signed_bytes(header_bytes, ciphertext))
    except InvalidSignature as e:
        raise BadSignatureError(
            f"signature by {header.from_country} key {header.sender_key_id} does not verify"
        ) from e
    # Checked after the signature, so this refusal is about what the sender really said.
    if header.to_country != recipient_country:
        raise WrongRecipientError(
            f"envelope is addressed to {header.to_country}, this node is {recipient_country}"
        )
    if header.recipient_key_id != recipient_key_id:
        raise WrongRecipientError(
            f"envelope is sealed to key {header.recipient_key_id}, ours is {recipient_key_id}"
        )
    try:
        payload = SUITE.decrypt(ciphertext, recipient_private_key, info=header_bytes)
    except (InvalidTag, ValueError) as e:
        raise DecryptionFailedError(
            f"ciphertext of message {header.message_id} does not decrypt under our key"
        ) from e
    digest = c.content_digest(payload)
    if not hmac.compare_digest(digest, header.content_digest):
        raise DigestMismatchError(
            f"payload of message {header.message_id} hashes to {digest},"
            f" header says {header.content_digest}"
        )
    return OpenedEnvelope(header=header, header_bytes=header_bytes, payload=payload)


def peek_header(data: bytes, *, max_bytes: int) -> EnvelopeHeader:
    """The header, UNVERIFIED: for routing and dedup only, never for trusting anything.

    Anyone can write any header; only `open_envelope` proves who sent it. Raises
    TooLargeError, MalformedEnvelopeError, MalformedHeaderError, UnsupportedVersionError.
    """
    header_bytes, _, _ = _unwire(data, max_bytes)
    return EnvelopeHeader.from_bytes(header_bytes)


def signed_bytes(header_bytes: bytes, ciphertext: bytes) -> bytes:
    """What Ed25519 signs: domain, then header and ciphertext each after a u64be length."""
    return (
        SIGNATURE_DOMAIN
        + struct.pack(">Q", len(header_bytes))
        + header_bytes
        + struct.pack(">Q", len(ciphertext))
        + ciphertext
    )


def _wire(header_bytes: bytes, ciphertext: bytes, signature: bytes) -> bytes:
    return canonical_bytes(
        {
            "ciphertext": c.b64url_encode(ciphertext),
            "header": c.b64url_encode(header_bytes),
            "signature": c.b64url_encode(signature),
        }
    )


def _unwire(data: bytes, max_bytes: int) -> tuple[bytes, bytes, bytes]:
    if len(data) > max_bytes:
        raise TooLargeError(f"envelope is {len(data)} bytes, more than the {max_bytes} accepted")
    e = MalformedEnvelopeError
    value = c.canonical_object(data, "envelope", e)
    c.check_members(value, _MEMBERS, "envelope", e)
    parts = {
        name: c.b64url_decode(c.string_member(value, name, "envelope", e), f"envelope {name}", e)
        for name in sorted(_MEMBERS)
    }
    if len(parts["signature"]) != _SIGNATURE_BYTES:
        raise e(f"envelope signature is {len(parts['signature'])} bytes, not {_SIGNATURE_BYTES}")
    if len(parts["ciphertext"]) < _ENC_BYTES + _TAG_BYTES:
        raise e(f"envelope ciphertext is {len(parts['ciphertext'])} bytes, too short for HPKE")
    return parts["header"], parts["ciphertext"], parts["signature"]


def _fill(given: str, actual: str, name: str) -> str:
    if given and given != actual:
        raise MalformedHeaderError(f"header {name} {given} does not match the actual {actual}")
    return actual


def _raw(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
