"""A TLS client refused at the handshake, logged once per pin per hour.

The exchange's TLS layer (node/web/tls.py) lets in only the certificates the directory
lists, and OpenSSL refuses any other inside the handshake, before any handler runs and
with nothing in Python's `ssl` to say who it was. What OpenSSL does offer is a message
callback (`SSLContext._msg_callback`, CPython's debugging hook) that sees each handshake
message as it is read; the client's Certificate message there carries the certificate
the handshake is about to refuse. `first_certificate` reads it (pure, a hostile client's
bytes in, DER or None out); `RefusalWatcher` logs the pin of one not trusted.
Where the hook is absent (another Python), nothing is logged and nothing else changes.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from cryptography import x509

from node.crypto.ids import tls_pin
from node.observe.formatting import FIELDS

log = logging.getLogger("node.web.tls")

CERTIFICATE_MESSAGE: Final = 11  # the TLS handshake message type of Certificate
ONCE_PER_SECONDS: Final = 3600.0
_MAX_PINS: Final = 4096  # a bound on what a client inventing certificates can make us keep


def first_certificate(message: bytes, *, tls13: bool) -> bytes | None:
    """The DER of the first certificate in a TLS Certificate handshake message (with its
    4-byte header); b"" for an empty list (no certificate); None when it does not parse."""
    if len(message) < 4 or message[0] != CERTIFICATE_MESSAGE:
        return None
    length = int.from_bytes(message[1:4], "big")
    body = message[4 : 4 + length]
    if len(body) != length:
        return None
    position = 0
    if tls13:  # certificate_request_context<0..255>
        if not body:
            return None
        position = 1 + body[0]
    if len(body) < position + 3:
        return None
    listed = int.from_bytes(body[position : position + 3], "big")
    position += 3
    if listed == 0:
        return b""
    if len(body) < position + 3:
        return None
    size = int.from_bytes(body[position : position + 3], "big")
    position += 3
    der = body[position : position + size]
    return der if size and len(der) == size else None


def due(last: float | None, now: float, every: float = ONCE_PER_SECONDS) -> bool:
    """Whether a refusal last logged at `last` is worth a line again at `now`."""
    return last is None or now - last >= every or now < last


class RefusalWatcher:
    """The message callback that logs a client certificate the handshake will refuse.

    `trusted` answers whether a certificate (DER) is among those the context trusts now.
    """

    def __init__(
        self, trusted: Callable[[bytes], bool], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._trusted, self._clock = trusted, clock
        self._logged: OrderedDict[str, float] = OrderedDict()

    def install(self, context: ssl.SSLContext) -> None:
        """Watch the handshakes of `context` (no-op where Python lacks the hook)."""
        if hasattr(context, "_msg_callback"):
            context._msg_callback = self.on_message

    def on_message(
        self, _conn: Any, direction: str, version: Any, _content: Any, kind: Any, data: bytes
    ) -> None:
        # An exception here would surface in the handshake: this only ever logs.
        try:
            if direction != "read" or kind != CERTIFICATE_MESSAGE:
                return
            der = first_certificate(bytes(data), tls13=version == ssl.TLSVersion.TLSv1_3)
            if der is None or der == b"" or self._trusted(der):
                return
            self.refused(x509.load_der_x509_certificate(der))
        except Exception:  # a certificate that does not parse: OpenSSL refuses it anyway
            return

    def refused(self, certificate: x509.Certificate) -> None:
        pin = tls_pin(certificate)
        now = self._clock()
        if not due(self._logged.get(pin), now):
            return
        self._logged[pin] = now
        self._logged.move_to_end(pin)
        while len(self._logged) > _MAX_PINS:
            self._logged.popitem(last=False)
        log.warning(
            "refused a TLS client: its certificate is not one the directory lists",
            extra={FIELDS: {"pin": pin, "subject": certificate.subject.rfc4514_string()[:200]}},
        )
