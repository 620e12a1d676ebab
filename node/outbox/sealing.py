"""A stored outbound message sealed for its partner: the same on either route.

Sealed anew on every attempt with the stored message id and content digest, so the
receiver deduplicates any two deliveries of it (direct twice, or direct and through a
hub), and a partner's key rotation is followed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from node.envelope.envelope import EnvelopeHeader, seal
from node.envelope.header import RESPONSE, RESPONSE_MEDIA_TYPE
from node.store.store import StoredMessage


def seal_message(
    message: StoredMessage,
    *,
    country: str,
    signing_key: Ed25519PrivateKey,
    recipient_key: X25519PublicKey,
    now: datetime,
) -> bytes:
    """The envelope (Part D of docs/protocol.md); raises EnvelopeError when the stored
    message cannot make a valid one, which no retry will change. A response's header
    says so (`kind`, its media type); a certificate's is as it always was."""
    response = message.kind == RESPONSE
    return seal(
        header=EnvelopeHeader(
            message_id=message.message_id,
            from_country=country,
            to_country=message.recipient,
            certificate_type=message.certificate_type,
            certificate_status=message.certificate_status,
            certificate_number=message.certificate_number,
            created=now.astimezone(UTC).replace(microsecond=0),  # the header's form
            media_type=RESPONSE_MEDIA_TYPE if response else "application/xml",
            content_digest=message.content_digest,
            kind=message.kind,
        ),
        payload=message.payload,
        sender_signing_key=signing_key,
        recipient_public_key=recipient_key,
    )
