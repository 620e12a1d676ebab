"""The node's trust in the directory, after python-tuf's TrustedMetadataSet.

Pure state: bytes and the time come in, the state moves forward or an error is raised
and nothing changes. Fetching, caching on disk and retrying are the shell's business.

Rules applied to every new document, in order (docs/protocol.md, Part C):
1. size within the limit (TooLarge); 2. canonical, well-formed (MalformedDirectory);
3. a threshold of the trusted maintainer set signed it; 4. a threshold of its own
maintainer set signed it (so a rotation needs both old and new) (ThresholdNotMet,
RotationGap); 5. version not lower, and an equal version only with the same bytes of
"signed" (RollbackError); 6. not expired (ExpiredError).

Expiry policy: an expired document is never accepted as an update. The copy already
trusted stays `current` (for reports and for the rotation rule) but `usable(now)` refuses
it once `now` passes its expiry plus `grace` (0 unless the operator chooses one), so no
new trust decision is made on a directory the maintainers stopped vouching for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from node.directory.errors import (
    ExpiredError,
    NoTrustedDirectory,
    RollbackError,
    RotationGap,
    ThresholdNotMet,
)
from node.directory.fields import _shown
from node.directory.model import Directory, MaintainerSet
from node.directory.signing import (
    DEFAULT_MAX_BYTES,
    SignedDirectory,
    parse_signed,
    require_threshold,
)


class TrustedDirectory:
    """The directory a node trusts, moved forward only by documents the rules accept."""

    __slots__ = ("_anchor", "_bytes", "_doc", "_grace", "_max_bytes")

    def __init__(
        self,
        anchor: MaintainerSet,
        trusted_bytes: bytes | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        grace: timedelta = timedelta(0),
    ) -> None:
        """Trust `anchor` (the operator's maintainer set), or the persisted `trusted_bytes`.

        The persisted copy supersedes the anchor, as TUF's local root does: it is checked
        against its own maintainers (catching a damaged file), not for expiry, so a node
        restarting after an outage can still report what it had. Raises DirectoryError.
        """
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        self._anchor = anchor
        self._max_bytes = max_bytes
        self._grace = grace
        self._doc: SignedDirectory | None = None
        self._bytes: bytes | None = None
        if trusted_bytes is not None:
            doc = parse_signed(trusted_bytes, max_bytes=max_bytes)
            require_threshold(doc, doc.directory.maintainers, "its own maintainers")
            self._doc, self._bytes = doc, trusted_bytes

    @property
    def current(self) -> Directory | None:
        """The trusted directory, expired or not; None before the first update."""
        return None if self._doc is None else self._doc.directory

    @property
    def trusted_bytes(self) -> bytes | None:
        """The exact bytes of `current`, for the shell to persist after each update."""
        return self._bytes

    @property
    def maintainers(self) -> MaintainerSet:
        """The maintainer set the next document must satisfy."""
        return self._anchor if self._doc is None else self._doc.directory.maintainers

    @property
    def grace(self) -> timedelta:
        """How long past an expiry the operator lets the node go on (0 unless chosen)."""
        return self._grace

    def is_expired(self, now: datetime) -> bool:
        """True when nothing usable is trusted: none yet, or `now` is past its expiry."""
        return self._doc is None or now >= self._doc.directory.expires

    def usable(self, now: datetime) -> Directory:
        """`current` if it may back a trust decision now; NoTrustedDirectory, ExpiredError."""
        if self._doc is None:
            raise NoTrustedDirectory("no directory is trusted yet: fetch one from the registry")
        directory = self._doc.directory
        if now >= directory.expires + self._grace:
            raise ExpiredError(
                f"the trusted directory version {directory.version} expired at"
                f" {_shown(directory.expires)}: refresh it from the registry"
            )
        return directory

    def update(self, data: bytes, now: datetime) -> Directory:
        """Trust `data` if the rules allow (module docstring); raises DirectoryError."""
        return self.update_chain([data], now)

    def update_chain(self, chain: Sequence[bytes], now: datetime) -> Directory:
        """Trust the last of `chain`, each document vouched for by the one before.

        For a node that missed maintainer rotations (RotationGap): pass the versions in
        between, oldest first. Only the last must be unexpired, as in TUF's root chain.
        All or nothing: on any error the trusted state is unchanged.
        """
        if not chain:
            raise ValueError("an update needs at least one document")
        doc, raw = self._doc, self._bytes
        for data in chain:
            new = parse_signed(data, max_bytes=self._max_bytes)
            trusted_set = self._anchor if doc is None else doc.directory.maintainers
            _require_signed(new, trusted_set)
            if doc is not None:
                _require_not_rollback(doc, new)
                if doc.directory.version == new.directory.version:
                    continue  # the same document again: keep the bytes already trusted
            doc, raw = new, data
        assert doc is not None and raw is not None  # the loop ran at least once
        if now >= doc.directory.expires:
            raise ExpiredError(
                f"directory version {doc.directory.version} expired at"
                f" {_shown(doc.directory.expires)}"
            )
        self._doc, self._bytes = doc, raw
        return doc.directory


def _require_signed(new: SignedDirectory, trusted_set: MaintainerSet) -> None:
    own = new.directory.maintainers
    try:
        require_threshold(new, trusted_set, "the trusted maintainers")
    except ThresholdNotMet as exc:
        if own != trusted_set and len(new.signers(own)) >= own.threshold:
            raise RotationGap(
                f"directory version {new.directory.version} changes the maintainer set"
                " without the trusted maintainers' signatures: fetch the versions between"
            ) from exc
        raise
    if own != trusted_set:
        require_threshold(new, own, "its own (new) maintainers")


def _require_not_rollback(old: SignedDirectory, new: SignedDirectory) -> None:
    old_v, new_v = old.directory.version, new.directory.version
    if new_v < old_v:
        raise RollbackError(f"directory version {new_v} is older than the trusted {old_v}")
    if new_v == old_v and new.signed_bytes != old.signed_bytes:
        raise RollbackError(f"directory version {new_v} is already trusted with other content")
