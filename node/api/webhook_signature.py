"""A webhook delivery's signature (pure): HMAC-SHA256 keyed with the client's secret over
`<timestamp>.<body>`, sent as `Ephyto-Webhook-Signature: v1=<hex>`.

The timestamp is signed with the body so that a receiver that refuses old timestamps
refuses a recorded delivery replayed later; the `v1=` prefix leaves room for another
scheme beside this one.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Ephyto-Webhook-Signature"
TIMESTAMP_HEADER = "Ephyto-Webhook-Timestamp"
ID_HEADER = "Ephyto-Webhook-Id"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value: `v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>`."""
    signed = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of `body` at `timestamp` (compared in constant
    time); the receiver checks the timestamp's age itself."""
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), header.encode())
