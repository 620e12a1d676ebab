"""The registry's signed timestamp: a short-lived statement "the newest directory is this one".

The directory is signed by offline maintainer keys and lives for weeks (90 days by
default); a node that is served an old but still valid directory (a frozen registry, a
stale mirror, an attacker in the path) cannot tell on its own. The timestamp, re-signed
every hour or so by an online key the directory names (`timestamp_keys`), expires within
a day, and the directory is fresh only while it is (node/directory/freshness.py), so such
a node stops within a day (docs/protocol.md, Part C "The timestamp"). It also names the
directory's SHA-256 and length: the node fetches exactly those bytes and no more.

Wire form, like the directory's: canonical JSON `{"signatures": [...], "signed": {...}}`,
each signature Ed25519 over DOMAIN + the exact bytes of "signed". The domain differs from
the directory's, so a timestamp signature can never pass for a directory signature.
Pure: bytes, keys and `now` in; a value or a DirectoryError out. No I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.directory.errors import (
    FrozenRegistry,
    MalformedDirectory,
    MixAndMatch,
    RollbackError,
    ThresholdNotMet,
    TooLarge,
)
from node.directory.fields import (
    _int,
    _list,
    _obj,
    _shown,
    _str,
    _time,
    _time_text,
    load_canonical_json,
)
from node.directory.model import Directory, MaintainerSet
from node.directory.signing import (
    DEFAULT_MAX_BYTES,
    Signature,
    _assemble,
    _sign,
    _signature,
    parse_signed,
    valid_signers,
)

# Never the directory's domain ("ephyto-directory-v1\0"): one signature, one meaning.
DOMAIN: Final = b"ephyto-timestamp-v1\x00"
FORMAT: Final = 1
TYPE: Final = "timestamp"
# A timestamp is a few hundred bytes; the cap bounds what a node reads before parsing.
MAX_BYTES: Final = 16 * 1024
_MAX_SIGNATURES: Final = 32
# The length a timestamp may name; a node also applies its own directory limit.
_MAX_DIRECTORY_LENGTH: Final = 2**31 - 1
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_FIELDS: Final = frozenset({"format", "type", "version", "issued", "expires", "directory"})


@dataclass(frozen=True, slots=True)
class DirectoryRef:
    """The directory a timestamp names: its version and the SHA-256 and length of its bytes."""

    version: int
    sha256: str  # lowercase hex of SHA-256 over the whole signed directory document
    length: int

    def matches(self, data: bytes) -> bool:
        return len(data) == self.length and hashlib.sha256(data).hexdigest() == self.sha256

    @classmethod
    def of(cls, version: int, data: bytes) -> DirectoryRef:
        return cls(version, hashlib.sha256(data).hexdigest(), len(data))


@dataclass(frozen=True, slots=True)
class Timestamp:
    """The content of one timestamp (its "signed" part)."""

    version: int
    issued: datetime
    expires: datetime
    directory: DirectoryRef
    format: int = FORMAT

    @classmethod
    def from_plain(cls, value: object) -> Timestamp:
        """Parse the "signed" object strictly; MalformedDirectory naming the field."""
        p = "timestamp.signed"
        doc = _obj(value, p, set(_FIELDS))
        fmt = _int(doc["format"], f"{p}.format", 0, 2**31)
        if fmt != FORMAT:
            raise MalformedDirectory(f"{p}.format: {fmt} is not the supported format {FORMAT}")
        kind = _str(doc["type"], f"{p}.type", 32)
        if kind != TYPE:
            raise MalformedDirectory(f"{p}.type: {kind!r} is not {TYPE!r}")
        issued, expires = _time(doc["issued"], f"{p}.issued"), _time(doc["expires"], f"{p}.expires")
        if expires <= issued:
            raise MalformedDirectory(f"{p}.expires: not after issued")
        ref = _obj(doc["directory"], f"{p}.directory", {"version", "sha256", "length"})
        digest = _str(ref["sha256"], f"{p}.directory.sha256", 64)
        if not _SHA256_RE.fullmatch(digest):
            raise MalformedDirectory(f"{p}.directory.sha256: not 64 lowercase hex digits")
        return cls(
            version=_int(doc["version"], f"{p}.version", 1, 2**63 - 1),
            issued=issued,
            expires=expires,
            directory=DirectoryRef(
                _int(ref["version"], f"{p}.directory.version", 1, 2**63 - 1),
                digest,
                _int(ref["length"], f"{p}.directory.length", 1, _MAX_DIRECTORY_LENGTH),
            ),
            format=fmt,
        )

    def to_plain(self) -> dict[str, Any]:
        ref = self.directory
        return {
            "format": self.format,
            "type": TYPE,
            "version": self.version,
            "issued": _time_text(self.issued),
            "expires": _time_text(self.expires),
            "directory": {"version": ref.version, "sha256": ref.sha256, "length": ref.length},
        }

    def to_signed_bytes(self) -> bytes:
        return canonical_bytes(self.to_plain())


@dataclass(frozen=True, slots=True)
class SignedTimestamp:
    """A parsed, not yet verified timestamp: its content, the bytes signed, the signatures."""

    timestamp: Timestamp
    signed_bytes: bytes
    signatures: tuple[Signature, ...]

    def signers(self, keys: MaintainerSet) -> frozenset[str]:
        """The distinct key ids of `keys` with a valid signature here (others ignored)."""
        return valid_signers(self.signatures, keys, DOMAIN + self.signed_bytes)


def parse_timestamp(data: bytes, *, max_bytes: int = MAX_BYTES) -> SignedTimestamp:
    """Parse the wire form strictly, verifying nothing; TooLarge, MalformedDirectory."""
    if len(data) > max_bytes:
        raise TooLarge(f"timestamp is {len(data)} bytes, more than the limit of {max_bytes}")
    value = load_canonical_json(data, "timestamp")
    doc = _obj(value, "timestamp", {"signed", "signatures"})
    entries = _list(doc["signatures"], "timestamp.signatures")
    if len(entries) > _MAX_SIGNATURES:
        raise MalformedDirectory(f"timestamp.signatures: more than {_MAX_SIGNATURES}")
    signatures = tuple(_signature(e, f"timestamp.signatures[{i}]") for i, e in enumerate(entries))
    # The whole document is canonical, so these are byte for byte the "signed" received.
    return SignedTimestamp(
        Timestamp.from_plain(doc["signed"]), canonical_bytes(doc["signed"]), signatures
    )


def sign_timestamp(timestamp: Timestamp, keys: Iterable[Ed25519PrivateKey]) -> bytes:
    """The wire bytes of `timestamp` signed by each key; MalformedDirectory if it is invalid."""
    signed_bytes = timestamp.to_signed_bytes()
    # Parse what will be signed, so the registry never serves what nodes refuse.
    if Timestamp.from_plain(timestamp.to_plain()) != timestamp:
        raise MalformedDirectory("timestamp: the content does not survive a parse unchanged")
    return _assemble(signed_bytes, _sign(DOMAIN + signed_bytes, keys, ()))


def verify_timestamp(data: bytes, keys: MaintainerSet) -> Timestamp:
    """The timestamp in `data` if a threshold of `keys` signed it; checks no version or expiry.

    Raises TooLarge, MalformedDirectory or ThresholdNotMet.
    """
    doc = parse_timestamp(data)
    _require_threshold(doc, keys)
    return doc.timestamp


def _require_threshold(doc: SignedTimestamp, keys: MaintainerSet) -> None:
    count = len(doc.signers(keys))
    if count < keys.threshold:
        raise ThresholdNotMet(
            f"timestamp version {doc.timestamp.version} has {count} valid signatures by the"
            f" directory's timestamp keys, {keys.threshold} needed: it was not signed by the"
            " registry's online key (a forgery, or a key the trusted directory does not list)"
        )


@dataclass(frozen=True, slots=True)
class CheckedTimestamp:
    """A timestamp the rules accept, not yet trusted (`TrustedTimestamp.accept` trusts it)."""

    doc: SignedTimestamp
    data: bytes  # the exact bytes received, persisted once accepted
    keys: MaintainerSet  # the timestamp keys it was checked against

    @property
    def timestamp(self) -> Timestamp:
        return self.doc.timestamp


class TrustedTimestamp:
    """The timestamp a node trusts, moved forward only by timestamps the rules accept.

    Rules for a new timestamp, against the trusted directory (docs/protocol.md, Part C):
    1. at most MAX_BYTES (TooLarge); 2. canonical, well-formed (MalformedDirectory);
    3. signed by a threshold of the trusted directory's `timestamp_keys` (ThresholdNotMet);
    4. version not lower than the trusted timestamp's, equal only with the same bytes
       (RollbackError) - compared only while the timestamp keys are the ones that signed
       the trusted timestamp: a rotation of those keys resets the count, as TUF does, so a
       leaked key's fast-forward is undone by rotating it;
    5. names a directory version not lower than the trusted directory's (RollbackError);
    6. not expired (FrozenRegistry).
    Any refusal leaves the state unchanged.
    """

    __slots__ = ("_bytes", "_doc", "_keys")

    def __init__(self, trusted_bytes: bytes | None = None, keys: MaintainerSet | None = None):
        """Trust the persisted `trusted_bytes` if `keys` signed them (not checked for expiry:
        a node restarting after an outage still reports what it had); DirectoryError."""
        self._doc: SignedTimestamp | None = None
        self._bytes: bytes | None = None
        self._keys: MaintainerSet | None = None
        if trusted_bytes is not None:
            if keys is None:
                raise ValueError("a persisted timestamp is checked against timestamp keys")
            doc = parse_timestamp(trusted_bytes)
            _require_threshold(doc, keys)
            self._doc, self._bytes, self._keys = doc, trusted_bytes, keys

    @property
    def current(self) -> Timestamp | None:
        """The trusted timestamp, expired or not; None before the first."""
        return None if self._doc is None else self._doc.timestamp

    @property
    def trusted_bytes(self) -> bytes | None:
        """The exact bytes of `current`, for the shell to persist after each update."""
        return self._bytes

    def update(self, data: bytes, directory: Directory, now: datetime) -> Timestamp:
        """Trust `data` if the rules (class docstring) allow, judged by the trusted
        `directory`; raises DirectoryError, ValueError when it declares no timestamp keys.
        `check` then `accept` for a timestamp naming a directory not yet trusted."""
        checked = self.check(data, directory, now)
        self.accept(checked)
        return checked.timestamp

    def check(self, data: bytes, directory: Directory, now: datetime) -> CheckedTimestamp:
        """`data` if the rules allow it, judged by the trusted `directory`, trusting nothing
        yet; raises DirectoryError, ValueError when `directory` has no timestamp keys.

        Trusted only by `accept`, once the directory it names is trusted or already held:
        a timestamp (say far ahead, from a misused online key) naming a directory the node
        refuses must not raise the bar that the registry's next real timestamp must clear.
        """
        keys = directory.timestamp_keys
        if keys is None:
            raise ValueError(f"directory version {directory.version} has no timestamp keys")
        new = parse_timestamp(data)
        _require_threshold(new, keys)
        old = self._doc
        if old is not None and self._keys == keys:
            old_v, new_v = old.timestamp.version, new.timestamp.version
            if new_v < old_v:
                raise RollbackError(
                    f"timestamp version {new_v} is older than the trusted {old_v}: a stale"
                    " mirror or a replay; the node keeps its directory"
                )
            if new_v == old_v and new.signed_bytes != old.signed_bytes:
                raise RollbackError(
                    f"timestamp version {new_v} is already trusted with other content: tell"
                    " the registry maintainers (their online key may be misused)"
                )
        named = new.timestamp.directory.version
        if named < directory.version:
            raise RollbackError(
                f"timestamp version {new.timestamp.version} names directory version {named},"
                f" older than the trusted {directory.version}: a stale mirror or a rollback"
            )
        require_fresh(new.timestamp, now)
        return CheckedTimestamp(new, data, keys)

    def accept(self, checked: CheckedTimestamp) -> None:
        """Trust `checked` (from `check` on this very state)."""
        old, new = self._doc, checked.doc
        if old is None or self._keys != checked.keys or new.signed_bytes != old.signed_bytes:
            self._doc, self._bytes, self._keys = checked.doc, checked.data, checked.keys
        # else: the same timestamp again (maybe other signatures): keep the bytes trusted

    def require_fresh(self, now: datetime) -> Timestamp:
        """The trusted timestamp if it has not expired; FrozenRegistry otherwise (or when
        there is none: a node that declared a timestamp role must have one)."""
        if self._doc is None:
            raise FrozenRegistry(
                "no timestamp is trusted yet: the node cannot tell whether its directory is"
                " the newest; refresh from the registry"
            )
        return require_fresh(self._doc.timestamp, now)


def require_fresh(timestamp: Timestamp, now: datetime) -> Timestamp:
    """`timestamp` if `now` is before its expiry; FrozenRegistry saying what to do otherwise."""
    if now >= timestamp.expires:
        raise FrozenRegistry(
            f"the registry's timestamp (version {timestamp.version}) expired at"
            f" {_shown(timestamp.expires)}: the registry may be frozen or held back (or its"
            " timestamp job stopped); the node makes no new trust decision with its directory"
            " until a fresh timestamp arrives: ask the registry maintainers"
        )
    return timestamp


def require_match(timestamp: Timestamp, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Refuse (MixAndMatch) directory bytes that are not exactly those `timestamp` names:
    the same length and SHA-256, then the version parsed from them the one named. Checks
    no signature (TrustedDirectory does); returns that version."""
    ref = timestamp.directory
    if not ref.matches(data):
        raise MixAndMatch(
            f"the directory served ({len(data)} bytes, sha256"
            f" {hashlib.sha256(data).hexdigest()[:16]}...) is not the one timestamp version"
            f" {timestamp.version} names (version {ref.version}, {ref.length} bytes, sha256"
            f" {ref.sha256[:16]}...): a mirror mixing documents, or a publish in between;"
            " the next refresh tries again"
        )
    version = parse_signed(data, max_bytes=max_bytes).directory.version
    if version != ref.version:
        raise MixAndMatch(
            f"the directory timestamp version {timestamp.version} names by hash is version"
            f" {version}, not the {ref.version} it states: tell the registry maintainers"
        )
    return version
