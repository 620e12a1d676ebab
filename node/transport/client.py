"""The delivery client: POST one sealed envelope to a partner over mutual TLS, get its receipt.

TLS here is authenticated by pins, not by a CA: every node's certificate is self-signed,
and the directory lists the SHA-256 of each partner's SubjectPublicKeyInfo. The pin is
checked inside the TLS handshake (a custom `ssl.SSLObject`, which asyncio drives), so a
server whose key is not pinned makes the handshake fail: no HTTP byte, and so no part of
the envelope, is ever written to it. aiohttp's own `Fingerprint` would not do: it pins
the whole certificate, and a partner that re-issues its certificate for the same key
keeps its pin by design (node.crypto.ids.tls_pin).

Our own client certificate is the one the node presents now (node.identity.tls_choice):
while our TLS key rotates it changes halfway through the overlap, and each TLS context is
made for one identity, so no connection made with the old certificate is used after that.

Errors are split by what the caller does next, and aiohttp's are translated here, once:
TransientDeliveryError (retry later) and PermanentDeliveryError (stop and say why).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import ssl
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

import aiohttp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from node.crypto.ids import tls_pin
from node.envelope.receipt import MAX_RECEIPT_BYTES
from node.errors import ConfigError, EphytoError
from node.identity.next_keys import load_tls_identity
from node.identity.tls_choice import PresentedTls, TlsIdentity

ENVELOPE_PATH: Final = "/ephyto/v1/envelopes"
ENVELOPE_MEDIA_TYPE: Final = "application/ephyto-envelope+json"
RECEIPT_MEDIA_TYPE: Final = "application/ephyto-receipt+json"
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
# A refusal is a short problem document; more than this is not worth reading.
_MAX_PROBLEM_BYTES: Final = 16 * 1024
_MAX_SHOWN_CHARS: Final = 300
_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Pin sets change only with the directory: a handful per partner over a node's life.
_MAX_CONTEXTS: Final = 256
_LARGE_BODY: Final = 1024 * 1024

FailureKind = Literal["transient", "permanent"]

# HTTP statuses a partner may answer that mean "later": the request itself was fine.
_TRANSIENT_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class DeliveryError(EphytoError):
    """The envelope was not delivered: no receipt came back."""


class TransientDeliveryError(DeliveryError):
    """Not delivered this time (network, TLS, partner busy or down): try again later."""


class PinMismatchError(TransientDeliveryError):
    """The partner's TLS key is not pinned in the directory; nothing was sent.

    Transient, not permanent: the usual cause is a key rotation that our copy of the
    directory does not show yet, and the next directory fixes it. An attacker in the
    path learns nothing by being retried, since the handshake fails before any byte of
    the request; a lasting mismatch shows in the message's events.
    """


class PermanentDeliveryError(DeliveryError):
    """The partner refused the envelope itself; sending it again will not help."""


class DeliveryClient:
    """Delivers envelopes over mTLS with SPKI pinning; use as `async with DeliveryClient(...)`.

    The client certificate is the identity `presented` returns at each delivery (a node's
    TlsHolder), or else the fixed pair `tls_certificate` and `tls_key`, PEM files as
    `ephyto node init` writes them: the partner knows us by their pin.
    """

    def __init__(
        self,
        *,
        tls_certificate: Path | None = None,
        tls_key: Path | None = None,
        presented: PresentedTls | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._presented = presented_identity(tls_certificate, tls_key, presented)
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._contexts: dict[tuple[frozenset[str], TlsIdentity], _PinnedContext] = {}
        self._session: aiohttp.ClientSession | None = None
        self._context(frozenset())  # a bad key file fails here, not at the first delivery

    async def __aenter__(self) -> DeliveryClient:
        # trust_env: HTTPS_PROXY and NO_PROXY are honoured, as an operator behind an
        # egress proxy expects (and as `ephyto study emulate` imposes its links).
        self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, endpoint: str, envelope: bytes, *, pins: frozenset[str]) -> bytes:
        """POST `envelope` to the partner at `endpoint`; returns the receipt bytes, unverified.

        Raises PinMismatchError (nothing sent), TransientDeliveryError or
        PermanentDeliveryError. The caller verifies the receipt.
        """
        if self._session is None:
            raise RuntimeError("DeliveryClient is used outside `async with`")
        if not pins:
            raise ValueError("no TLS pins given: a partner without a pin cannot be reached")
        url = endpoint.rstrip("/") + ENVELOPE_PATH
        try:
            async with self._session.post(
                url,
                data=request_body(envelope),
                headers={
                    "Content-Type": ENVELOPE_MEDIA_TYPE,
                    "Accept": f"{RECEIPT_MEDIA_TYPE}, {PROBLEM_MEDIA_TYPE}",
                },
                # One context per pin set and identity: it is also aiohttp's pool key, so
                # a connection checked against old pins, or made with our old certificate,
                # is never reused once the directory or our certificate changes.
                ssl=self._context(pins),
                allow_redirects=False,  # the directory names the endpoint; nowhere else
            ) as response:
                if response.status == 200:
                    return await read_at_most(response, MAX_RECEIPT_BYTES + 1)
                problem = _problem(await read_at_most(response, _MAX_PROBLEM_BYTES))
                raise _refusal(url, response.status, problem)
        except aiohttp.ClientConnectorCertificateError as e:
            if isinstance(e.certificate_error, _PinMismatch):
                raise PinMismatchError(f"{url}: {e.certificate_error}") from e
            raise TransientDeliveryError(f"{url}: TLS certificate refused: {error_text(e)}") from e
        except aiohttp.ClientError as e:
            raise TransientDeliveryError(f"{url}: {error_text(e)}") from e
        except TimeoutError as e:  # asyncio.TimeoutError is this class from Python 3.11
            raise TransientDeliveryError(f"{url}: no answer within the timeout") from e
        except ssl.SSLError as e:
            raise TransientDeliveryError(f"{url}: TLS failed: {_shown(str(e))}") from e
        except OSError as e:
            raise TransientDeliveryError(f"{url}: {_shown(str(e))}") from e

    def _context(self, pins: frozenset[str]) -> _PinnedContext:
        identity = self._presented()
        context = self._contexts.get((pins, identity))
        if context is None:
            if len(self._contexts) >= _MAX_CONTEXTS:
                self._contexts.clear()
            context = pinned_context(pins, identity.certificate, identity.key, identity.password)
            self._contexts[pins, identity] = context
        return context


def presented_identity(
    certificate: Path | None, key: Path | None, presented: PresentedTls | None
) -> PresentedTls:
    """`presented`, or the fixed identity of `certificate` and `key`; ConfigError when
    neither or both are given, or the files do not load."""
    if presented is not None:
        if certificate is not None or key is not None:
            raise ConfigError("give the TLS identity as files or as `presented`, not both")
        return presented
    if certificate is None or key is None:
        raise ConfigError("no TLS certificate and key to present as the client certificate")
    identity = load_tls_identity(certificate, key)
    return lambda: identity


class _PinMismatch(ssl.SSLCertVerificationError):
    """Raised inside the handshake; aiohttp reports it as a certificate error."""


class _PinnedContext(ssl.SSLContext):
    """A client context that carries the pins its connections must match."""

    pins: frozenset[str] = frozenset()


class _PinCheckingSSLObject(ssl.SSLObject):
    """Fails the TLS handshake unless the server's SPKI is one of the context's pins."""

    def do_handshake(self) -> None:
        super().do_handshake()
        # Reached only once the handshake is complete: the peer has proven it holds the
        # key of the certificate it sent (CertificateVerify), so its SPKI is meaningful.
        context = self.context
        pins = context.pins if isinstance(context, _PinnedContext) else frozenset()
        der = self.getpeercert(binary_form=True)
        if der is None:
            raise _PinMismatch("the server sent no TLS certificate")
        try:
            pin = tls_pin(x509.load_der_x509_certificate(der))
        except (ValueError, UnsupportedAlgorithm):
            digest = hashlib.sha256(der).hexdigest()
            raise _PinMismatch(
                f"the server's TLS certificate (sha256 {digest}) is unreadable"
            ) from None
        if pin not in pins:
            raise _PinMismatch(
                f"the server's TLS key {pin} is not pinned for this partner"
                f" (directory pins: {', '.join(sorted(pins))})"
            )


def request_body(data: bytes) -> bytes | io.BytesIO:
    """What to post: aiohttp warns that raw bytes over 1 MB block the event loop while
    written, and sends a file-like object in chunks instead."""
    return data if len(data) < _LARGE_BODY else io.BytesIO(data)


def pinned_context(
    pins: frozenset[str], certificate: Path, key: Path, password: bytes | None = None
) -> _PinnedContext:
    """A client context presenting `certificate` (its key in `key`, decrypted with
    `password` when the file is encrypted) that accepts only a server whose SPKI is pinned;
    ConfigError when the certificate or key does not load."""
    context = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    # Self-signed certificates: no CA, no host name; the pin check replaces both.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslobject_class = _PinCheckingSSLObject
    context.pins = pins
    try:
        context.load_cert_chain(certificate, key, password)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"cannot load the node's TLS certificate {certificate} and key {key}: {e}"
        ) from None
    return context


async def read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, cut at `limit` bytes: a partner cannot make us buffer without end."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _problem(body: bytes) -> str:
    """`title: detail` from an RFC 9457 problem document, or "" when there is none."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    if not isinstance(value, dict):
        return ""
    parts = [value.get(name) for name in ("title", "detail")]
    return _shown(": ".join(p for p in parts if isinstance(p, str) and p))


def error_text(e: aiohttp.ClientError) -> str:
    """`TYPE: message` of an aiohttp error, one line: a connection error's own text
    holds the repr of its SSL context (`ssl:<..._PinnedContext object at 0x...>`)."""
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        why = f"{type(e.certificate_error).__name__}: {e.certificate_error}"
    elif isinstance(e, aiohttp.ClientConnectorError):
        why = e.os_error.strerror or str(e.os_error) or type(e.os_error).__name__
    else:
        return _shown(f"{type(e).__name__}: {e}")
    return _shown(f"{type(e).__name__}: cannot connect to {e.host}:{e.port}: {why}")


def classify_status(status: int) -> FailureKind:
    """A partner's HTTP answer other than success: worth retrying, or not."""
    return "transient" if status in _TRANSIENT_STATUSES else "permanent"


def _refusal(url: str, status: int, problem: str) -> DeliveryError:
    text = f"{url} answered HTTP {status}" + (f": {problem}" if problem else "")
    if classify_status(status) == "transient":
        return TransientDeliveryError(text)
    return PermanentDeliveryError(text)


def _shown(text: str) -> str:
    """Partner-supplied text made safe for a one-line event or log entry."""
    line = _UNPRINTABLE.sub(" ", text).strip()
    return line if len(line) <= _MAX_SHOWN_CHARS else line[: _MAX_SHOWN_CHARS - 3] + "..."
