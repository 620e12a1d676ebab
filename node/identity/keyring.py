"""The keys a node holds through a key rotation, and what the directory says of them (pure).

A node holds its current signing and encryption keys and, after `ephyto node rotate-keys`,
the next ones. The directory decides which are in use (node.directory.model.in_use: the
new keys from halfway through the overlap): partners seal to that encryption key, and the
node signs with that signing key (the TLS key rotates with them: node.identity.tls_choice).
Everything here takes the directory's key entries and the time as values; the shell
(node.identity.next_keys) reads the files and the clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.crypto.ids import key_id
from node.directory.model import KeyEntry, TlsPin


def signing_id(key: Ed25519PrivateKey) -> str:
    return key_id(key.public_key().public_bytes_raw())


def encryption_id(key: X25519PrivateKey) -> str:
    return key_id(key.public_key().public_bytes_raw())


@dataclass(frozen=True, slots=True, eq=False)
class HeldKeys:
    """The private keys a node holds, by key id. `signing_id` and `encryption_id` name the
    current ones: used when the directory lists none of the others (or there is none)."""

    signing: Mapping[str, Ed25519PrivateKey]
    encryption: Mapping[str, X25519PrivateKey]
    signing_id: str
    encryption_id: str

    @classmethod
    def of(
        cls,
        signing: Ed25519PrivateKey,
        encryption: X25519PrivateKey,
        next_signing: Ed25519PrivateKey | None = None,
        next_encryption: X25519PrivateKey | None = None,
    ) -> HeldKeys:
        """The current keys, and the next ones when a rotation is under way."""
        signings = {signing_id(k): k for k in (signing, next_signing) if k is not None}
        encryptions = {encryption_id(k): k for k in (encryption, next_encryption) if k is not None}
        return cls(signings, encryptions, signing_id(signing), encryption_id(encryption))

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.signing) | frozenset(self.encryption)


class Keyring:
    """The running node's HeldKeys. A reload replaces the snapshot whole (one assignment),
    so a request in progress keeps the consistent set it read, with no lock to take."""

    def __init__(self, held: HeldKeys) -> None:
        self.held = held
        # The last warning logged: the refresh runs every minute, the operator needs the
        # line once per new situation, not sixty times an hour.
        self.warned = ""


_E = TypeVar("_E", bound=KeyEntry | TlsPin)


def _live(keys: Sequence[_E], now: datetime) -> list[_E]:
    """The entries not yet expired at `now` (valid now, or from later)."""
    return [k for k in keys if now < k.valid_until]


def unheld(keys: Sequence[KeyEntry], held: HeldKeys, now: datetime) -> tuple[KeyEntry, ...]:
    """Our keys the directory lists (valid now or later) that `held` lacks: partners may
    seal to or verify with a key this node does not have in memory."""
    return tuple(k for k in _live(keys, now) if k.key_id not in held.ids)


def merged(held: HeldKeys, loaded: HeldKeys, keys: Sequence[KeyEntry], now: datetime) -> HeldKeys:
    """What a running node holds after reading node.toml again.

    A loaded key joins only when the directory lists that very public key (valid now or
    later): a file that does not match what partners use is of no help and is left out.
    A held key stays while it is listed and not expired, so a reload never drops a key
    that partners may still use; the current ones always stay (the fallback). The
    loaded current keys become current once listed (after `rotate-keys --finish`).
    """
    listed: dict[tuple[str, str], bytes] = {
        (k.kind, k.key_id): k.public_key for k in _live(keys, now)
    }
    signing, signing_current = _pick(
        listed, "signing", held.signing, loaded.signing, held.signing_id, loaded.signing_id
    )
    encryption, encryption_current = _pick(
        listed,
        "encryption",
        held.encryption,
        loaded.encryption,
        held.encryption_id,
        loaded.encryption_id,
    )
    return HeldKeys(signing, encryption, signing_current, encryption_current)


_K = TypeVar("_K", Ed25519PrivateKey, X25519PrivateKey)


def _pick(
    listed: Mapping[tuple[str, str], bytes],
    kind: str,
    old: Mapping[str, _K],
    new: Mapping[str, _K],
    old_current: str,
    new_current: str,
) -> tuple[dict[str, _K], str]:
    result = {i: k for i, k in old.items() if i == old_current or (kind, i) in listed}
    for i, k in new.items():
        if listed.get((kind, i)) == _public(k):
            result[i] = k
    return result, new_current if new_current in result else old_current


def _public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


# --- where a rotation stands, by the directory ------------------------------------------------

Stage = Literal["unpublished", "mismatch", "waiting", "overlap", "due"]
Listed = KeyEntry | TlsPin
"""One of our entries in the directory as a rotation sees it: a key, or a TLS key's pin."""


def listed_id(entry: Listed) -> str:
    """The id the directory knows the entry by: a key id, or a TLS pin."""
    return entry.key_id if isinstance(entry, KeyEntry) else entry.pin


def listed_name(entry: Listed) -> str:
    """`signing <key id>`, `encryption <key id>` or `TLS <pin>`, for messages."""
    return f"{entry.kind if isinstance(entry, KeyEntry) else 'TLS'} {listed_id(entry)}"


@dataclass(frozen=True, slots=True)
class RotationStage:
    """Where the rotation to the next keys stands in a directory.

    - unpublished: the directory lists neither next key (nor any other new key): the
      registry has not recorded or not published the rotation yet;
    - mismatch: it lists new keys for us that are not the next key files (`foreign`);
    - waiting: it lists the next keys, valid only from `new_from`;
    - overlap: both are valid; the old keys until `old_until`;
    - due: the old keys are no longer valid: the next keys can become the current ones.
    """

    stage: Stage
    new_from: datetime | None = None
    old_until: datetime | None = None
    foreign: tuple[Listed, ...] = ()


def rotation_stage(
    keys: Sequence[Listed],
    old_ids: Collection[str],
    next_ids: Collection[str],
    now: datetime,
) -> RotationStage:
    """The stage of the rotation from `old_ids` (the current keys' ids; empty when they were
    already moved aside) to `next_ids` (the next keys), by our directory entry's `keys`.

    The entries are keys, TLS pins or both (`listed_id` names them): a rotation of the TLS
    key passes the pins with the old and next pin among the ids; one that leaves the TLS
    key alone passes the keys only, so the unchanged pin counts neither as old nor foreign.
    """
    ours = [k for k in keys if listed_id(k) in next_ids]
    listed = {listed_id(k) for k in ours}
    if not set(next_ids) <= listed:
        known = set(old_ids) | set(next_ids)
        foreign = tuple(k for k in _live(keys, now) if listed_id(k) not in known)
        return RotationStage("mismatch" if foreign else "unpublished", foreign=foreign)
    new_from = max(k.valid_from for k in ours)
    old = [k for k in keys if listed_id(k) in old_ids]
    old_until = max((k.valid_until for k in old), default=None)
    if now < new_from:
        return RotationStage("waiting", new_from, old_until)
    if old_until is not None and now < old_until:
        return RotationStage("overlap", new_from, old_until)
    return RotationStage("due", new_from, old_until)
