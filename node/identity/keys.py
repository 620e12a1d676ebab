"""The node's three key pairs, its self-signed TLS certificate, and their byte forms.

- signing: Ed25519 (signs envelopes, receipts, the enrolment request);
- encryption: X25519 (HPKE recipient key). It is made from a 32-byte seed the way
  libsodium's `crypto_sign_ed25519_sk_to_curve25519` does: the X25519 private key is the
  first half of SHA-512(seed), the same scalar that Ed25519 derives from that seed. The
  Ed25519 key of the seed (the "twin") can therefore sign for the X25519 key, which is
  how the enrolment request proves possession of a key that cannot sign by itself
  (see docs/protocol.md, Part B);
- TLS: ECDSA P-256. Ed25519 would be one algorithm fewer, but Ed25519 TLS certificates
  are refused by many TLS stacks still in service (browsers, older Java, middleboxes)
  and P-256 is the one key type every OpenSSL-based client, aiohttp and Python's `ssl`
  included, negotiates with TLS 1.2 and 1.3 alike.

Pure: no files, no clock (validity is passed in). Fresh keys use the library's CSPRNG;
`keys_from_seeds` is deterministic, for test vectors.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.crypto.ids import key_id
from node.errors import ConfigError

# ECDSA signatures are made deterministic (RFC 6979): same inputs, same bytes, so the
# published test vector can be reproduced exactly, and no nonce depends on the RNG.
TLS_SIGNATURE = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
TLS_CURVE = ec.SECP256R1()

_P = 2**255 - 19  # the field of Curve25519 / edwards25519


class KeyFileError(ConfigError):
    """A key or certificate file is unreadable or holds the wrong kind of key."""


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """A node's private keys; `encryption_twin` is set only while they are fresh."""

    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey
    tls: ec.EllipticCurvePrivateKey
    # Kept in memory to sign the enrolment request, never written: once the request is
    # made, possession has been proven and the seed is one more secret to lose.
    encryption_twin: Ed25519PrivateKey | None = None

    @property
    def signing_key_id(self) -> str:
        return key_id(self.signing.public_key().public_bytes_raw())

    @property
    def encryption_key_id(self) -> str:
        return key_id(self.encryption.public_key().public_bytes_raw())


def generate_keys() -> NodeKeys:
    """Fresh keys from the operating system's CSPRNG."""
    seed = secrets.token_bytes(32)
    return NodeKeys(
        signing=Ed25519PrivateKey.generate(),
        encryption=x25519_from_seed(seed),
        tls=ec.generate_private_key(TLS_CURVE),
        encryption_twin=Ed25519PrivateKey.from_private_bytes(seed),
    )


def keys_from_seeds(signing: bytes, encryption: bytes, tls: bytes) -> NodeKeys:
    """Keys fixed by three 32-byte seeds: for test vectors only, never for a real node."""
    for name, seed in (("signing", signing), ("encryption", encryption), ("tls", tls)):
        if len(seed) != 32:
            raise ValueError(f"{name} seed must be 32 bytes, got {len(seed)}")
    # Reducing 256 bits mod n-1 is biased by about 2**-32: harmless for a test key.
    tls_scalar = int.from_bytes(tls, "big") % (_P256_ORDER - 1) + 1
    return NodeKeys(
        signing=Ed25519PrivateKey.from_private_bytes(signing),
        encryption=x25519_from_seed(encryption),
        tls=ec.derive_private_key(tls_scalar, TLS_CURVE),
        encryption_twin=Ed25519PrivateKey.from_private_bytes(encryption),
    )


def x25519_from_seed(seed: bytes) -> X25519PrivateKey:
    """The X25519 key whose scalar is the one Ed25519 derives from `seed`."""
    return X25519PrivateKey.from_private_bytes(hashlib.sha512(seed).digest()[:32])


def edwards_candidates(x25519_public: bytes) -> tuple[bytes, bytes]:
    """The two Ed25519 public keys (signs +, -) that map to this X25519 public key.

    Raises ValueError for a non-canonical or low-order key, which nobody can prove
    possession of: with a low-order point a forged signature verifies by chance.
    """
    if len(x25519_public) != 32:
        raise ValueError("an X25519 public key is 32 bytes")
    u = int.from_bytes(x25519_public, "little")
    if u >= _P:  # also refuses the top bit set: one key, one encoding
        raise ValueError("the X25519 public key is not canonically encoded")
    if is_low_order_x25519(x25519_public):
        raise ValueError("the X25519 public key has low order")
    # Birational map of RFC 7748 section 4.1: y = (u - 1) / (u + 1); u = p - 1 is low order.
    y = (u - 1) * pow(u + 1, -1, _P) % _P
    plus = y.to_bytes(32, "little")
    minus = (y | 1 << 255).to_bytes(32, "little")
    return plus, minus


def is_low_order_x25519(x25519_public: bytes) -> bool:
    """Whether X25519 with this point gives the all-zero secret (the point has order <= 8)."""
    # Any clamped scalar is a multiple of 8, so the result is zero exactly for the
    # points of the small subgroup; the library reports that as a ValueError.
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(x25519_public))
    except ValueError:
        return True
    return False


def is_low_order_ed25519(ed25519_public: bytes) -> bool:
    """Whether this Ed25519 public key is non-canonical or of small order."""
    y = int.from_bytes(ed25519_public, "little") & ((1 << 255) - 1)
    if y >= _P or y == 1:  # y = 1 is the identity
        return True
    # Map to Montgomery (u = (1 + y) / (1 - y)) and reuse the X25519 check.
    u = (1 + y) * pow(1 - y, -1, _P) % _P
    return is_low_order_x25519(u.to_bytes(32, "little"))


def verify_ed25519(public: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is a valid Ed25519 signature by `public` over `message`."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_tls_signature(
    public: ec.EllipticCurvePublicKey, signature: bytes, message: bytes
) -> bool:
    """Whether `signature` (DER ECDSA, SHA-256) by the TLS key is valid over `message`."""
    try:
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def tls_san(host: str | None, country: str) -> x509.GeneralName:
    """The subject alternative name of a node's certificate.

    A node without endpoint gets `<cc>.ephyto.invalid`: `.invalid` (RFC 2606) can never
    resolve, so the name identifies the node without pretending to be reachable.
    """
    if host is None:
        return x509.DNSName(f"{country.lower()}.ephyto.invalid")
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host)


def build_tls_certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    country: str | None,
    name: str,
    host: str | None,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """The self-signed TLS certificate for `key`, for both server and client use (mTLS).

    `country` is None for the hub, which belongs to no NPPO; it then needs a `host`.
    """
    if not_after <= not_before:
        raise ValueError("the certificate must end after it begins")
    if host is None and country is None:
        raise ValueError("a certificate without a host is named by its country")
    san = tls_san(host, country or "")
    common_name = san.value if isinstance(san, x509.DNSName) else str(san.value)
    names = [] if country is None else [x509.NameAttribute(NameOID.COUNTRY_NAME, country)]
    subject = x509.Name(
        [
            *names,
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64]),  # RFC 5280 ub-name
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    # A serial from the key and start time: unique in practice, and reproducible.
    serial_seed = spki + not_before.isoformat().encode()
    serial = int.from_bytes(hashlib.sha256(serial_seed).digest()[:16], "big") >> 1 | 1
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )


def private_key_pem(
    key: Ed25519PrivateKey | X25519PrivateKey | ec.EllipticCurvePrivateKey,
    passphrase: bytes | None = None,
) -> bytes:
    """PKCS#8 PEM, encrypted with `passphrase` when one is given ("ENCRYPTED PRIVATE KEY",
    the library's best available scheme); otherwise plain, the 0600 mode its protection."""
    if passphrase is None:
        return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    if not passphrase:
        raise ValueError("an empty passphrase protects nothing")
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase))


def is_encrypted_pem(pem: bytes) -> bool:
    """Whether a PEM private key needs a passphrase to load (PKCS#8 "ENCRYPTED PRIVATE
    KEY", or an OpenSSL traditional key with a Proc-Type ENCRYPTED header)."""
    try:
        load_pem_private_key(pem, password=None)
    except TypeError:  # the library's way of saying "encrypted, give a password"
        return True
    except ValueError:
        return False
    return False


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


def load_signing_key(pem: bytes, source: str, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """The Ed25519 key in a PEM file; raises KeyFileError naming `source`."""
    key = _load_private(pem, source, passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{source}: not an Ed25519 private key")
    return key


def load_encryption_key(
    pem: bytes, source: str, passphrase: bytes | None = None
) -> X25519PrivateKey:
    """The X25519 key in a PEM file; raises KeyFileError naming `source`."""
    key = _load_private(pem, source, passphrase)
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(f"{source}: not an X25519 private key")
    return key


def load_tls_key(
    pem: bytes, source: str, passphrase: bytes | None = None
) -> ec.EllipticCurvePrivateKey:
    """The ECDSA P-256 key in a PEM file; raises KeyFileError naming `source`."""
    key = _load_private(pem, source, passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != TLS_CURVE.name:
        raise KeyFileError(f"{source}: not an ECDSA P-256 private key")
    return key


def load_certificate(pem: bytes, source: str) -> x509.Certificate:
    """The X.509 certificate in a PEM file; raises KeyFileError naming `source`."""
    try:
        return x509.load_pem_x509_certificate(pem)
    except (ValueError, x509.InvalidVersion):
        raise KeyFileError(f"{source}: not a PEM X.509 certificate") from None


def load_private_key(pem: bytes, source: str, passphrase: bytes | None = None) -> object:
    """Any private key in a PEM file, decrypted with `passphrase` if it is encrypted (for
    converting files whatever their kind); KeyFileError naming `source`."""
    return _load_private(pem, source, passphrase)


def encrypted_pem(pem: bytes, source: str, passphrase: bytes) -> bytes:
    """The plain PEM private key in `pem` as encrypted PKCS#8 PEM under `passphrase`;
    KeyFileError naming `source` when it is not a plain private key."""
    key = _load_private(pem, source, None)
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{source}: not a key of this node (Ed25519, X25519 or ECDSA)")
    return private_key_pem(key, passphrase)


def _load_private(pem: bytes, source: str, passphrase: bytes | None) -> object:
    """The key in `pem`, decrypted with `passphrase` if it is encrypted; a plain key loads
    whether or not a passphrase is given, so that files can be converted one at a time."""
    try:
        return load_pem_private_key(pem, password=None)
    except TypeError:
        pass  # encrypted: needs the passphrase
    except ValueError:
        # Never echo the file: it may be a key of some other kind, still a secret.
        raise KeyFileError(f"{source}: not a PEM private key") from None
    if passphrase is None:
        raise KeyFileError(
            f"{source}: the key is encrypted, but node.toml names no passphrase: set [keys]"
            " passphrase_file, passphrase_env or passphrase_credential"
        )
    try:
        return load_pem_private_key(pem, password=passphrase)
    except (ValueError, TypeError):
        raise KeyFileError(
            f"{source}: the passphrase does not decrypt the key (a wrong passphrase?)"
        ) from None


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# Any fixed key will do for the low-order probe: its output is discarded.
_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(32)))
