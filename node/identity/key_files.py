"""Reading the node's private keys as node.toml protects them: key files, plain or
encrypted with the passphrase `[keys]` names, and the signing key in a PKCS#11 token.

The shell beside node.identity.keys (which parses key bytes) and node.identity.protection
(which says what node.toml means); the passphrase itself is read by
node.identity.passphrase and the token spoken to by node.identity.pkcs11_signer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.identity.config import NodeConfig
from node.identity.keys import KeyFileError, is_encrypted_pem, load_signing_key
from node.identity.passphrase import node_passphrase

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KeyFile:
    """One private key file node.toml names: what it is (`signing`, `next_tls_key`...)
    and where."""

    role: str
    path: Path


def read_key_file(path: Path, what: str = "key file") -> bytes:
    """The bytes of a key or certificate file; KeyFileError naming it."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the {what}: {e.strerror or e}") from None


def private_key_files(config: NodeConfig) -> tuple[KeyFile, ...]:
    """Every private key file node.toml names, current and next. The `signing` file is
    left out when the signing key is in a token: the node does not read it then."""
    keys = config.keys
    named = {
        "signing": None if keys.signing_pkcs11 is not None else keys.signing,
        "encryption": keys.encryption,
        "tls_key": keys.tls_key,
        "next_signing": keys.next_signing,
        "next_encryption": keys.next_encryption,
        "next_tls_key": keys.next_tls_key,
    }
    return tuple(KeyFile(role, config.path(p)) for role, p in named.items() if p is not None)


def plain_key_files(config: NodeConfig) -> tuple[Path, ...]:
    """The private key files node.toml names that are there and not encrypted (what
    `ephyto node protect-keys` would encrypt); unreadable files are left to the loader."""
    plain = []
    for key_file in private_key_files(config):
        try:
            data = key_file.path.read_bytes()
        except OSError:
            continue
        if not is_encrypted_pem(data):
            plain.append(key_file.path)
    return tuple(plain)


def load_current_signing_key(
    config: NodeConfig,
    passphrase: bytes | None,
    *,
    held: Ed25519PrivateKey | None = None,
    environ: Mapping[str, str] | None = None,
) -> Ed25519PrivateKey:
    """The node's current signing key: the token's when node.toml names one (`held`, a
    token key the running node holds already, is reused: a token logs a process in once),
    else the `signing` file decrypted with `passphrase`.

    KeyFileError or TokenKeyError (ConfigErrors) naming the file or the token.
    """
    ref = config.keys.signing_pkcs11
    if ref is None:
        path = config.path(config.keys.signing)
        return load_signing_key(read_key_file(path), str(path), passphrase)
    from node.identity.pkcs11_signer import TokenSigningKey, open_token_key

    if isinstance(held, TokenSigningKey):
        return held
    return open_token_key(ref, base=config.directory, environ=environ)


def load_signing_for_request(config: NodeConfig) -> Ed25519PrivateKey:
    """The current signing key, for a command that signs a request with it (rotate-keys,
    change-endpoint): the passphrase read from its source, the token opened if named."""
    return load_current_signing_key(config, node_passphrase(config))


def warn_plain_keys(config: NodeConfig) -> tuple[Path, ...]:
    """Log one WARNING naming the plain private key files when node.toml names a
    passphrase (a conversion left half done, or a key copied in since); the files found."""
    if config.keys.passphrase is None:
        return ()
    plain = plain_key_files(config)
    if plain:
        log.warning(
            "node.toml names a passphrase, but these private key files are not encrypted: %s"
            " (run `ephyto node protect-keys --dir %s` with the same passphrase source)",
            ", ".join(str(p) for p in plain),
            config.directory,
        )
    return plain
