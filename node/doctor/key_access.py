"""The shell of the doctor's key checks: read the key files' passphrase and the signing
key's token as the node does at start, and note which encrypted files could not be opened.

The node's own functions do the reading (node.identity.passphrase, keys, key_files,
pkcs11_signer), so the doctor meets what `ephyto node serve` would meet. What it learns
becomes findings in node.doctor.key_checks: one for the passphrase, whatever the number of
files it locks, and a key file it cannot decrypt is not reported as damaged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id
from node.doctor.checks import Finding
from node.doctor.key_checks import (
    passphrase_missing,
    passphrase_refused,
    passphrase_unreadable,
    passphrase_works,
    plain_beside_passphrase,
    token_refused,
    token_signs,
)
from node.errors import ConfigError
from node.identity.config import NodeConfig
from node.identity.key_files import plain_key_files
from node.identity.keys import KeyFileError, is_encrypted_pem, load_private_key
from node.identity.passphrase import SecretSourceError, node_passphrase
from node.identity.protection import Pkcs11KeyRef

_K = TypeVar("_K")
KeyLoader = Callable[[bytes, str, bytes | None], _K]


@dataclass
class KeyAccess:
    """The passphrase of the node's key files, as far as this process can read it, and
    what it opened: built by `read`, fed each key file by `open`, summed up by `findings`."""

    config: NodeConfig
    passphrase: bytes | None = field(repr=False)
    source_error: str | None  # why the passphrase node.toml names could not be read
    locked: list[Path] = field(default_factory=list)  # encrypted, no passphrase to try
    undecrypted: list[Path] = field(default_factory=list)  # the passphrase does not open
    opened: list[Path] = field(default_factory=list)  # encrypted, and it opens

    @classmethod
    def read(cls, config: NodeConfig, environ: Mapping[str, str] | None = None) -> KeyAccess:
        """The passphrase read from the source node.toml names (none: None), as the node
        reads it at start; a source that cannot be read is kept as its one-line reason."""
        try:
            return cls(config, node_passphrase(config, environ), None)
        except SecretSourceError as e:
            return cls(config, None, str(e))

    def open(self, path: Path, data: bytes, loader: KeyLoader[_K]) -> _K | None:
        """The key in `data` (read from `path`) as the node's `loader` reads it with the
        passphrase; None when it is encrypted and there is no passphrase, or one that does
        not decrypt it (noted for `findings`). KeyFileError when the file is not a key of
        that kind: that file's own problem."""
        encrypted = is_encrypted_pem(data)
        if encrypted and self.passphrase is None:
            self.locked.append(path)
            return None
        try:
            key = loader(data, str(path), self.passphrase)
        except KeyFileError:
            # Decrypting again tells a wrong passphrase from a key of another kind.
            if encrypted and not self._decrypts(path, data):
                self.undecrypted.append(path)
                return None
            raise
        if encrypted:
            self.opened.append(path)
        return key

    def password(self, path: Path) -> bytes | None:
        """The password TLS needs for the key file at `path`: the passphrase when that
        file is one it decrypted, else None (a plain file needs none)."""
        return self.passphrase if path in self.opened else None

    def findings(self) -> list[Finding]:
        """The passphrase finding (none for a node without passphrase or encrypted file),
        then the warning about plain files beside a passphrase."""
        source = self.config.keys.passphrase
        if source is None:
            return [passphrase_missing(self.locked)] if self.locked else []
        if self.source_error is not None:
            found = passphrase_unreadable(self.config, source, self.source_error, self.locked)
        elif self.undecrypted:
            found = passphrase_refused(source, self.undecrypted, self.opened)
        else:
            found = passphrase_works(source, self.opened)
        plain = plain_beside_passphrase(self.config, source, plain_key_files(self.config))
        return [found] if plain is None else [found, plain]

    def _decrypts(self, path: Path, data: bytes) -> bool:
        try:
            load_private_key(data, str(path), self.passphrase)
        except KeyFileError:
            return False
        return True


def token_key(config: NodeConfig, ref: Pkcs11KeyRef) -> tuple[Finding, Ed25519PrivateKey | None]:
    """Open the signing key in the token `ref` names, as the node does at start (it signs
    a probe and verifies it), and say how that went; the key when it signs."""
    from node.identity.pkcs11_signer import open_token_key  # python-pkcs11 only if named

    try:
        key = open_token_key(ref, base=config.directory)
    except SecretSourceError as e:
        return token_refused(config, ref, str(e), "pin"), None
    except ConfigError as e:  # TokenKeyError: the library, module, token, PIN or key
        cause: Literal["library", "token"] = "token" if _has_pkcs11() else "library"
        return token_refused(config, ref, str(e), cause), None
    return token_signs(ref, key_id(key.public_key().public_bytes_raw())), key


def _has_pkcs11() -> bool:
    try:
        import pkcs11  # noqa: F401  (present, or the reason the token was not asked)
    except ImportError:
        return False
    return True
