"""The signed directory: its model and wire form, the maintainers' signatures, the
node's trust rules (after TUF). Pure core: bytes, values and `now` in; no I/O.
"""

from node.directory.errors import (
    BadSignature,
    DirectoryError,
    ExpiredError,
    KeyNotValid,
    MalformedDirectory,
    NoTrustedDirectory,
    NppoNotActive,
    RollbackError,
    RotationGap,
    ThresholdNotMet,
    TooLarge,
    UnknownKey,
    UnknownNppo,
    UntrustedPeer,
)
from node.directory.model import (
    CodeListFile,
    Directory,
    HubEntry,
    KeyEntry,
    MaintainerKey,
    MaintainerSet,
    NppoEntry,
    SchemaVersion,
    TlsPin,
)
from node.directory.signing import (
    DEFAULT_MAX_BYTES,
    DOMAIN,
    add_signatures,
    sign_directory,
    verify_signatures,
)
from node.directory.trust import TrustedDirectory

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DOMAIN",
    "BadSignature",
    "CodeListFile",
    "Directory",
    "DirectoryError",
    "ExpiredError",
    "HubEntry",
    "KeyEntry",
    "KeyNotValid",
    "MaintainerKey",
    "MaintainerSet",
    "MalformedDirectory",
    "NoTrustedDirectory",
    "NppoEntry",
    "NppoNotActive",
    "RollbackError",
    "RotationGap",
    "SchemaVersion",
    "ThresholdNotMet",
    "TlsPin",
    "TooLarge",
    "TrustedDirectory",
    "UnknownKey",
    "UnknownNppo",
    "UntrustedPeer",
    "add_signatures",
    "sign_directory",
    "verify_signatures",
]
