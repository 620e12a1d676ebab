"""Identifiers of keys and certificates, as they appear in the directory and envelopes.

- key id: lowercase hex of the first 16 bytes of SHA-256 over the raw public key
  (32 bytes for Ed25519 and X25519); short enough to read, long enough never to collide.
- TLS pin: `sha256:` + lowercase hex of SHA-256 over the certificate's
  SubjectPublicKeyInfo (DER), so a certificate re-issued for the same key keeps its pin.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def key_id(raw_public_key: bytes) -> str:
    """The key id of a raw (32-byte) Ed25519 or X25519 public key."""
    return hashlib.sha256(raw_public_key).digest()[:16].hex()


def tls_pin(certificate: x509.Certificate) -> str:
    """The pin of a TLS certificate: SHA-256 of its SubjectPublicKeyInfo."""
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()
