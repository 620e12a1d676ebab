"""The directory's errors, grouped by what the caller does next."""

from __future__ import annotations

from node.errors import InputError


class DirectoryError(InputError):
    """A directory, or a peer judged by it, cannot be trusted; nothing was changed."""


class MalformedDirectory(DirectoryError):
    """The document is not a well-formed directory (JSON, canonical form, fields)."""


class TooLarge(MalformedDirectory):
    """The document is larger than the configured limit; it was not parsed."""


class BadSignature(DirectoryError):
    """The maintainers' signatures do not vouch for this document."""


class ThresholdNotMet(BadSignature):
    """Fewer distinct maintainers than the threshold signed the document."""


class RotationGap(ThresholdNotMet):
    """A new maintainer set the trusted one did not sign: walk the versions in between."""


class RollbackError(DirectoryError):
    """The version is older than the trusted one, or equal with different content."""


class ExpiredError(DirectoryError):
    """The directory is past its expiry: refresh it from the registry."""


class FrozenRegistry(ExpiredError):
    """The registry's signed timestamp expired: it may be frozen, or someone holds it back.

    With a timestamp role, the node's directory is fresh only while its timestamp is:
    no new trust decision until a fresh one arrives; ask the maintainers.
    """


class MixAndMatch(BadSignature):
    """The directory fetched is not the one the signed timestamp names (hash, length or
    version): a mirror mixing documents, or a publish in between; refresh again."""


class NoTrustedDirectory(DirectoryError):
    """No directory has been trusted yet: fetch one from the registry."""


class UntrustedPeer(DirectoryError):
    """The directory does not vouch for this NPPO or key now: refuse the peer."""


class UnknownNppo(UntrustedPeer):
    """No NPPO with this country code is in the directory."""


class NppoNotActive(UntrustedPeer):
    """The NPPO is suspended or revoked."""


class UnknownKey(UntrustedPeer):
    """The NPPO has no key with this id and kind."""


class KeyNotValid(UntrustedPeer):
    """The key, or every key of this kind, is outside its validity period at that time."""
