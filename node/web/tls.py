"""The TLS layer of the exchange: the server's context, and who the client is.

Peers trust each other by pin (docs/protocol.md, Part B), not through a CA: every node's
certificate is self-signed. Python's `ssl` cannot ask for a client certificate and then
leave it unverified: with `CERT_OPTIONAL` or `CERT_REQUIRED` OpenSSL verifies whatever
the client presents and aborts the handshake when no trust anchor vouches for it, and
`ssl` exposes no verify callback to override that. So the server trusts, as their own
anchors, the self-signed certificates of the peers it knows (`trusted_client_certs`), and
`sni_callback` (which OpenSSL calls on every handshake, with or without SNI) hands the
handshake a context built from the current set. That set is a coarse filter at the
socket; the authoritative check is the pin, looked up in the directory by the handler
(`tls_client`), so a certificate still trusted here but gone from the directory gets a
403, not a receipt.

The same callback hands over the server's own certificate: while a node's TLS key
rotates, the certificate it presents changes halfway through the overlap
(node.identity.tls_choice), and the next handshake presents the new one, with no restart.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from node.crypto.ids import tls_pin
from node.directory import Directory, DirectoryError, NppoEntry, UnknownKey
from node.errors import InputError
from node.identity.next_keys import load_tls_identity
from node.identity.tls_choice import PresentedTls, TlsIdentity
from node.observe.tls_refusals import RefusalWatcher

TrustedCertificates = Callable[[], Iterable[bytes]]
"""The peers' certificates (PEM or DER, one per item) the TLS layer lets in."""

log = logging.getLogger(__name__)


class PeerIdentityError(InputError):
    """The TLS client is not who the request needs it to be: refuse it."""


class NoClientCertificateError(PeerIdentityError):
    """The connection carries no client certificate."""


class UnknownTlsClientError(PeerIdentityError):
    """No active NPPO has this TLS pin, valid now, in the trusted directory."""


class SenderMismatchError(PeerIdentityError):
    """The envelope says it is from another country than the TLS client is."""


def server_ssl_context(
    cert_path: Path, key_path: Path, *, trusted_client_certs: TrustedCertificates
) -> ssl.SSLContext:
    """`presenting_server_ssl_context` with a certificate that does not rotate (the hub's,
    a test's): the one in `cert_path`, with the key in `key_path`.

    Raises OSError or ssl.SSLError if the certificate or key cannot be loaded.
    """
    outer = _base_context(cert_path, key_path)
    identity = load_tls_identity(cert_path, key_path)
    return _handing_over(outer, lambda: identity, trusted_client_certs)


def presenting_server_ssl_context(
    presented: PresentedTls, *, trusted_client_certs: TrustedCertificates
) -> ssl.SSLContext:
    """A TLS server context that presents the identity `presented` returns and requires a
    client certificate from `trusted_client_certs`.

    Both are read on every handshake; a new context is built only when either changes.
    An empty set lets no client in. Raises OSError or ssl.SSLError if the identity
    presented now cannot be loaded.
    """
    identity = presented()
    return _handing_over(
        _base_context(identity.certificate, identity.key, identity.password),
        presented,
        trusted_client_certs,
    )


def _handing_over(
    outer: ssl.SSLContext, presented: PresentedTls, source: TrustedCertificates
) -> ssl.SSLContext:
    # The outer context trusts no client at all: if the callback did not run, or
    # failed, the handshake fails closed. The callback's context carries the certificate
    # presented at each handshake, and the outer one follows it (`_ClientTrust.current`).
    outer.sni_callback = _ClientTrust(presented, source, outer).on_handshake
    return outer


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> x509.Certificate:
    """The client's certificate on this connection; NoClientCertificateError."""
    der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
    if not der:
        raise NoClientCertificateError("the connection carries no TLS client certificate")
    return x509.load_der_x509_certificate(der)


def tls_caller(
    directory: Directory, certificate: x509.Certificate, at: datetime
) -> NppoEntry | None:
    """`tls_client`, except that the directory's hub is answered with None: it relays
    envelopes that other NPPOs signed (the hub's push)."""
    pin = tls_pin(certificate)
    try:
        if pin in directory.hub_tls_pins(at):
            return None
    except DirectoryError:
        pass  # no hub listed, or none with a pin valid now
    return _nppo_for_pin(directory, pin, at)


def tls_client(directory: Directory, certificate: x509.Certificate, at: datetime) -> NppoEntry:
    """The active NPPO whose pin, valid `at`, is this certificate's.

    Raises UnknownTlsClientError, or NppoNotActive for a suspended or revoked NPPO.
    """
    return _nppo_for_pin(directory, tls_pin(certificate), at)


def _nppo_for_pin(directory: Directory, pin: str, at: datetime) -> NppoEntry:
    try:
        return directory.nppo_for_tls_pin(pin, at)
    except UnknownKey as e:
        # The directory's UnknownKey also means "unknown signing key" (401); an unknown
        # TLS client is refused as a who-you-are problem (403), so it gets its own class.
        raise UnknownTlsClientError(
            f"TLS client pin {pin} is not an active NPPO's in directory version {directory.version}"
        ) from e


def require_sender(nppo: NppoEntry, from_country: str) -> None:
    """The envelope's `from` must be the TLS client's country; SenderMismatchError."""
    if from_country != nppo.country:
        raise SenderMismatchError(
            f"envelope is from {from_country} but the TLS client is {nppo.country}"
        )


class _ClientTrust:
    """Builds, and caches, the context that presents the current identity and trusts the
    current set of peer certificates."""

    def __init__(
        self, presented: PresentedTls, source: TrustedCertificates, outer: ssl.SSLContext
    ) -> None:
        self._presented, self._source, self._outer = presented, source, outer
        self._seen: tuple[TlsIdentity, tuple[bytes, ...]] | None = None
        self._context: ssl.SSLContext | None = None
        # A client certificate outside the anchors is refused in the handshake, where
        # only this watcher sees it: it logs the pin (node.observe.tls_refusals).
        self._anchors: frozenset[bytes] = frozenset()
        self._watcher = RefusalWatcher(lambda der: der in self._anchors)
        self._watcher.install(outer)

    def on_handshake(
        self, ssl_object: ssl.SSLObject, _server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        # An exception here makes OpenSSL answer with a fatal alert: fail closed.
        ssl_object.context = self.current()

    def current(self) -> ssl.SSLContext:
        seen = self._presented(), tuple(self._source())
        if self._context is None or seen != self._seen:
            context = _base_context(seen[0].certificate, seen[0].key, seen[0].password)
            anchors = _der_certificates(seen[1])
            if anchors:
                context.load_verify_locations(cadata=b"".join(anchors))
            self._anchors = frozenset(anchors)
            self._watcher.install(context)
            if self._seen is not None and seen[0] != self._seen[0]:
                # The files just loaded above. So no certificate the node has stopped
                # presenting is sent any more, not even in a handshake that fails closed;
                # a handshake in progress holds its own copy.
                self._outer.load_cert_chain(seen[0].certificate, seen[0].key, seen[0].password)
            self._context, self._seen = context, seen
        return self._context


def _base_context(cert_path: Path, key_path: Path, password: bytes | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path, password)  # password: an encrypted key file
    ctx.verify_mode = ssl.CERT_REQUIRED
    # Trust a peer's leaf certificate by an exact match in the store. Without this flag
    # OpenSSL picks the first anchor with the client's subject name, so of a node's two
    # certificates during a rotation (same subject, new key) only one would ever pass.
    # It grants no issuing power: the anchors are CA:FALSE, so nothing chains under them.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def _der_certificates(items: Iterable[bytes]) -> list[bytes]:
    """DER of every readable certificate; one bad entry must not lock every peer out."""
    anchors: list[bytes] = []
    for item in items:
        try:
            if item.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificate(item)
            else:
                cert = x509.load_der_x509_certificate(item)
        except ValueError:
            log.warning("ignoring a trusted client certificate that does not parse")
            continue
        anchors.append(cert.public_bytes(Encoding.DER))
    return anchors
