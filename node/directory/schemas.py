"""Choosing the SPSCertificate schema version for a partner (docs/protocol.md, Part C).

Pure: the versions this node speaks, the partner's directory entry, the network's schema
versions with their transition dates and `at` in; the version to send in, or
NoCommonSchemaVersion saying why there is none.

UN/CEFACT names its directories `D` + two-digit year + release letter: D16B, D17A, D20B.
They order by year, then letter (D16B < D17A < D20B); the year is read as 20YY, since no
SPSCertificate predates 2000. A name of another form cannot be ordered, so it can never be
chosen: in a partner's list or the network's it is ignored, in our own it is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from node.directory.fields import _shown
from node.directory.model import NppoEntry, SchemaVersion
from node.errors import EphytoError

_UNCEFACT_RE: Final = re.compile(r"D([0-9]{2})([A-Z])")


class NoCommonSchemaVersion(EphytoError):
    """This node and a partner share no SPSCertificate schema version in force now.

    Not a DirectoryError: the partner is trusted; the message just cannot be written in
    a version it reads. Only a new node release (ours or theirs) or a network transition
    changes that, so a sender fails the message rather than retrying it.
    """


def schema_version_key(version: str) -> tuple[int, str] | None:
    """The sort key of a UN/CEFACT version (`D17A` -> (2017, "A")), None when unordered."""
    match = _UNCEFACT_RE.fullmatch(version)
    if match is None:
        return None
    return 2000 + int(match[1]), match[2]


def ordered(versions: Iterable[str]) -> list[str]:
    """The orderable versions among `versions`, oldest first, each once."""
    keyed = {v: k for v in versions if (k := schema_version_key(v)) is not None}
    return sorted(keyed, key=lambda v: keyed[v])


def in_force(network: Sequence[SchemaVersion], at: datetime) -> list[str]:
    """The network's versions in force at `at`, oldest first (unordered ones dropped)."""
    return ordered(s.version for s in network if s.in_force(at))


def common_schema_version(
    own: Sequence[str],
    partner: NppoEntry,
    network: Sequence[SchemaVersion],
    at: datetime,
    *,
    own_name: str = "this node",
) -> str:
    """The highest version in `own`, the partner's `schema_versions` and, unless `network`
    is empty (an older registry: no constraint), the versions in force at `at`.

    Raises ValueError when `own` holds a version that cannot be ordered (a programming
    error: node/certificate/versions.py), NoCommonSchemaVersion when nothing is left.
    """
    if unordered := [v for v in own if schema_version_key(v) is None]:
        raise ValueError(f"own schema versions {unordered} are not UN/CEFACT D<yy><letter>")
    theirs = ordered(partner.schema_versions)
    shared = [v for v in ordered(own) if v in theirs]
    if not shared:
        raise NoCommonSchemaVersion(
            f"{own_name} speaks {_list(ordered(own))}, {partner.country} speaks"
            f" {_list(theirs, empty='no version this node can order')} only:"
            " no common SPSCertificate version"
        )
    if not network:
        return shared[-1]
    allowed = in_force(network, at)
    usable = [v for v in shared if v in allowed]
    if not usable:
        raise NoCommonSchemaVersion(
            f"{own_name} and {partner.country} share {_list(shared)}, not in force"
            f" network-wide at {_shown(at)} (in force: {_list(allowed, empty='none')}):"
            " no common SPSCertificate version"
        )
    return usable[-1]


def _list(versions: Sequence[str], *, empty: str = "nothing") -> str:
    return ", ".join(versions) if versions else empty
