"""Why an envelope or a receipt was refused, grouped by what the receiver answers.

The web layer maps each group to one HTTP status (problem+json); nothing here knows HTTP.
Every message is one line an operator can act on, and never contains key material.
"""

from __future__ import annotations

from node.errors import InputError


class EnvelopeError(InputError):
    """Base of every refusal of an envelope or a receipt."""


class TooLargeError(EnvelopeError):
    """More bytes than the receiver accepts: refused before reading any of it (413)."""


class MalformedError(EnvelopeError):
    """The bytes do not follow the format: the sender must fix its encoder (400)."""


class MalformedEnvelopeError(MalformedError):
    """The outer wire form (JSON members, base64url, lengths) is wrong."""


class MalformedHeaderError(MalformedError):
    """The envelope header is not canonical JSON or a field is missing, extra or ill-shaped."""


class MalformedReceiptError(MalformedError):
    """The receipt's wire form or signed body is wrong."""


class UnsupportedVersionError(MalformedError):
    """A format version this node does not speak."""


class NotAuthenticError(EnvelopeError):
    """Who sent it cannot be proven: refuse and do not read the content (401/403)."""


class UnknownKeyError(NotAuthenticError):
    """The signing key is not one the directory lists for that country (or not valid now)."""


class BadSignatureError(NotAuthenticError):
    """The signature does not verify over the exact bytes received."""


class WrongRecipientError(EnvelopeError):
    """Authentic, but addressed to another country or another encryption key (421)."""


class UnreadableContentError(EnvelopeError):
    """Authentic and addressed to us, but the sealed content is broken: a sender bug (422)."""


class DecryptionFailedError(UnreadableContentError):
    """HPKE refused the ciphertext under our key and this header."""


class DigestMismatchError(UnreadableContentError):
    """The decrypted payload does not hash to the header's content digest."""


class ReceiptMismatchError(EnvelopeError):
    """An authentic receipt, but for another message or another content digest."""
