"""What a running node holds: its keys, its collaborators, its limits.

Built once at start-up (`NodeRuntime.from_config`) and handed to the web layer, so the
handlers read no files, no globals and no clock of their own. The directory is a
callable: refreshing it from the registry is the caller's business, and each request
asks for the copy trusted at that moment (it may raise ExpiredError or
NoTrustedDirectory, which the exchange answers with 503).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.certificate.validate import Report, Validator
from node.clock import Clock
from node.crypto.ids import key_id
from node.directory import Directory, DirectoryError
from node.directory.model import in_use
from node.identity.config import NodeConfig
from node.identity.key_files import load_current_signing_key, warn_plain_keys
from node.identity.keyring import HeldKeys, Keyring
from node.identity.keys import KeyFileError, load_encryption_key, load_signing_key
from node.identity.next_keys import load_tls_identity
from node.identity.passphrase import node_passphrase
from node.identity.tls_choice import HeldTls, TlsHolder
from node.store.store import Store

# An 8 MiB document (the payload limit of Part A) is about 11 MiB once sealed and
# base64url-encoded; 12 MiB leaves room for the header and the JSON around it.
DEFAULT_MAX_ENVELOPE_BYTES = 12 * 1024 * 1024


class ValidationThread:
    """The node's one thread for validating received ePhytos.

    Validating a large document takes CPU time; a thread keeps the event loop answering
    meanwhile. One thread for the whole node (the exchange endpoint and the hub puller
    alike) serialises validations, since a compiled lxml schema is not promised to be
    safe for concurrent use.
    """

    def __init__(self, validator: Validator) -> None:
        self._validator = validator
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ephyto-validate")

    async def validate(self, data: bytes) -> Report:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._validator.validate, data)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def no_client_certificates() -> Iterable[bytes]:
    """No peer certificate is trusted: every TLS client is refused (fail closed)."""
    return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRuntime:
    """A node's identity and collaborators, as the exchange endpoint uses them."""

    country: str
    signing_key: Ed25519PrivateKey
    signing_key_id: str
    encryption_key: X25519PrivateKey
    encryption_key_id: str
    directory: Callable[[], Directory]
    store: Store
    validator: Validator
    clock: Clock
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES
    # The peers' self-signed TLS certificates (PEM or DER) the TLS layer accepts; the
    # directory carries only pins, which a TLS server cannot verify a client against
    # (node/web/tls.py says why).
    trusted_client_certs: Callable[[], Iterable[bytes]] = no_client_certificates
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    # The keys `ephyto node rotate-keys` made, held alongside the current ones: the node
    # decrypts with whichever an envelope names and signs with the one in use
    # (node.directory.model.in_use; docs/operations.md, "Rotating an NPPO's keys").
    next_signing_key: Ed25519PrivateKey | None = None
    next_encryption_key: X25519PrivateKey | None = None
    # What the node holds now: seeded from the keys above at start, replaced by
    # node.identity.next_keys.reload_keys when a directory refresh lists keys of ours that
    # node.toml has gained since (after `rotate-keys`), so no restart is needed.
    keyring: Keyring | None = None
    # The TLS identities the node holds and the one it presents, as server and as client:
    # seeded with the current certificate at start, then kept by
    # node.identity.next_keys.reload_tls after each directory refresh (None: a runtime
    # built without TLS files).
    tls: TlsHolder | None = None

    @property
    def held_keys(self) -> HeldKeys:
        """The keys held now (one snapshot: read it once per decision)."""
        assert self.keyring is not None  # set by __post_init__
        return self.keyring.held

    @property
    def rotating(self) -> bool:
        """More than one encryption key is held: an envelope's header says which it needs."""
        return len(self.held_keys.encryption) > 1

    def decryption_key(self, key_id_: str | None) -> tuple[X25519PrivateKey, str]:
        """Our X25519 key named `key_id_` with its id; the current key if none is named so
        (opening then refuses the envelope as sealed to another key)."""
        held = self.held_keys
        if key_id_ is not None and (key := held.encryption.get(key_id_)) is not None:
            return key, key_id_
        return held.encryption[held.encryption_id], held.encryption_id

    def signing_key_at(self, directory: Directory, at: datetime) -> tuple[Ed25519PrivateKey, str]:
        """The key to sign with at `at`: of ours that `directory` lists as valid for our
        country then, the one in use (node.directory.model.in_use: during a rotation the
        new key from halfway through the overlap, so that partners have refreshed and know
        it); the current key when it lists none of them (or none is held)."""
        held = self.held_keys
        current = held.signing[held.signing_id], held.signing_id
        try:
            entry = directory.nppo(self.country)
        except DirectoryError:
            return current
        ours = (k for k in entry.keys if k.kind == "signing" and k.key_id in held.signing)
        chosen = in_use(ours, at)
        if chosen is None:
            return current
        return held.signing[chosen.key_id], chosen.key_id

    def current_signing_key(self, at: datetime) -> Ed25519PrivateKey:
        """`signing_key_at` with the directory trusted now; the current key without one."""
        held = self.held_keys
        if len(held.signing) == 1:
            return held.signing[held.signing_id]  # no rotation under way: nothing to look up
        try:
            directory = self.directory()
        except DirectoryError:
            return held.signing[held.signing_id]
        return self.signing_key_at(directory, at)[0]

    def __post_init__(self) -> None:
        # A key id that names another key would sign receipts nobody can verify and
        # refuse every envelope as misaddressed: catch the misconfiguration at start.
        signing = key_id(self.signing_key.public_key().public_bytes_raw())
        encryption = key_id(self.encryption_key.public_key().public_bytes_raw())
        if self.signing_key_id != signing:
            raise ValueError(f"signing_key_id {self.signing_key_id} is not the key's {signing}")
        if self.encryption_key_id != encryption:
            raise ValueError(
                f"encryption_key_id {self.encryption_key_id} is not the key's {encryption}"
            )
        if self.max_envelope_bytes < 1:
            raise ValueError("max_envelope_bytes must be positive")
        if self.keyring is None:
            held = HeldKeys.of(
                self.signing_key,
                self.encryption_key,
                self.next_signing_key,
                self.next_encryption_key,
            )
            object.__setattr__(self, "keyring", Keyring(held))  # frozen: set once, here

    @classmethod
    def from_config(
        cls,
        config: NodeConfig,
        *,
        directory: Callable[[], Directory],
        store: Store,
        clock: Clock,
        validator: Validator | None = None,
        trusted_client_certs: Callable[[], Iterable[bytes]] = no_client_certificates,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> NodeRuntime:
        """The runtime of the node in `config`, its keys read from the node directory.

        Raises KeyFileError (a ConfigError) naming the file that is missing or wrong, and
        ConfigError for a passphrase or PKCS#11 token (node.identity.protection) that
        cannot be read or used.
        """
        # Key files may be encrypted with the passphrase [keys] names, and the signing key
        # may be in a token (docs/operations.md, "Protecting private keys").
        passphrase = node_passphrase(config)
        warn_plain_keys(config)
        signing = load_current_signing_key(config, passphrase)
        encryption_path = config.path(config.keys.encryption)
        encryption = load_encryption_key(_read(encryption_path), str(encryption_path), passphrase)
        next_signing = next_encryption = None
        if config.keys.next_signing is not None:
            path = config.path(config.keys.next_signing)
            next_signing = load_signing_key(_read(path), str(path), passphrase)
        if config.keys.next_encryption is not None:
            path = config.path(config.keys.next_encryption)
            next_encryption = load_encryption_key(_read(path), str(path), passphrase)
        # The next TLS identity is not read here: a wrong file must not stop the node, which
        # can serve with its current one; reload_tls reads it once the directory lists it.
        tls = load_tls_identity(
            config.path(config.keys.tls_certificate), config.path(config.keys.tls_key), passphrase
        )
        return cls(
            country=config.country,
            signing_key=signing,
            signing_key_id=key_id(signing.public_key().public_bytes_raw()),
            encryption_key=encryption,
            encryption_key_id=key_id(encryption.public_key().public_bytes_raw()),
            directory=directory,
            store=store,
            validator=validator or Validator.default(),
            clock=clock,
            max_envelope_bytes=max_envelope_bytes,
            trusted_client_certs=trusted_client_certs,
            tls_certificate=tls.certificate,
            tls_key=tls.key,
            next_signing_key=next_signing,
            next_encryption_key=next_encryption,
            tls=TlsHolder(HeldTls(tls)),
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the key file: {e.strerror}") from None
