"""Whether the trusted directory may back a trust decision now, and whether its expiry is near.

After TUF's split: the threshold-signed directory lives long (90 days by default, so the
maintainers sign only for changes or every few months) and its freshness comes from the
registry's timestamp, re-signed daily or more often by the online key. A directory that
declares `timestamp_keys` is therefore fresh only while its own expiry has not passed AND
the trusted timestamp has not expired (each with the operator's `grace`); one without
timestamp keys is fresh until its own expiry, as before timestamps (docs/protocol.md,
Part C, "The timestamp"). The expiry warning tells the operator well before the long
expiry comes that the maintainers have a signing round to do.

Pure: the trusted state and `now` in; a value, a message or a DirectoryError out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from node.directory.errors import FrozenRegistry
from node.directory.fields import _shown
from node.directory.model import Directory
from node.directory.timestamp import TrustedTimestamp
from node.directory.trust import TrustedDirectory

# Two weeks: time for the maintainers, each on their own machine, to sign a new version.
EXPIRY_WARNING: Final = timedelta(days=14)
# Within the warning window a running node says it again at most this often...
WARN_EVERY: Final = timedelta(days=1)
# ...and at once when the time left crosses one of these.
_STAGES: Final = (timedelta(days=7), timedelta(days=3), timedelta(days=1), timedelta(0))


def fresh_directory(
    trusted: TrustedDirectory, timestamp: TrustedTimestamp, now: datetime
) -> Directory:
    """The directory to decide with now; NoTrustedDirectory, ExpiredError, or FrozenRegistry
    when its registry has a timestamp role and no unexpired timestamp is trusted."""
    directory = trusted.usable(now)
    if directory.timestamp_keys is None:
        return directory  # no timestamp role: the directory's own (short) expiry decides
    current = timestamp.current
    if current is None:
        raise FrozenRegistry(
            f"no timestamp of the registry is trusted yet for directory version"
            f" {directory.version}: the node cannot tell whether it is the newest; refresh"
            " from the registry (its timestamp.json)"
        )
    if now >= current.expires + trusted.grace:
        raise FrozenRegistry(
            f"the registry's timestamp (version {current.version}) expired at"
            f" {_shown(current.expires)}: the registry may be frozen or held back (or its"
            " timestamp job stopped); the node makes no new trust decision with directory"
            f" version {directory.version} until a fresh timestamp arrives: ask the registry"
            " maintainers"
        )
    return directory


def directory_expiry_warning(
    directory: Directory, now: datetime, *, within: timedelta = EXPIRY_WARNING
) -> str | None:
    """One line for the operator when `directory` expires within `within` (or has expired);
    None while it has longer. For the refresh's log, `ephyto doctor` and metrics."""
    left = directory.expires - now
    if left > within:
        return None
    if left <= timedelta(0):
        return (
            f"the trusted directory version {directory.version} expired at"
            f" {_shown(directory.expires)}: the node makes no trust decision until the"
            " registry publishes a new version; ask the registry maintainers"
        )
    return (
        f"the trusted directory version {directory.version} expires at"
        f" {_shown(directory.expires)}, in {_left(left)}: the registry maintainers must"
        " publish a new version (a signing round) before then, or the node stops"
        " trusting its partners"
    )


@dataclass(frozen=True, slots=True)
class ExpiryWarned:
    """When the expiry warning was last given, and for which version and stage."""

    version: int
    stage: int
    at: datetime


def expiry_warning_due(
    last: ExpiryWarned | None, directory: Directory, now: datetime
) -> ExpiryWarned | None:
    """The new mark if the expiry warning should be given now, else None: inside the window,
    once per WARN_EVERY, and at once for another version or when fewer days are left than a
    stage (7, 3, 1, 0 days) the last warning was given before."""
    if directory_expiry_warning(directory, now) is None:
        return None
    stage = sum(1 for edge in _STAGES if directory.expires - now <= edge)
    if (
        last is not None
        and (last.version, last.stage) == (directory.version, stage)
        and now - last.at < WARN_EVERY
    ):
        return None
    return ExpiryWarned(directory.version, stage, now)


def _left(left: timedelta) -> str:
    if left >= timedelta(days=2):
        return f"{left.days} days"
    hours = int(left.total_seconds() // 3600)
    if hours >= 2:
        return f"{hours} hours"
    return f"{max(1, int(left.total_seconds() // 60))} minutes"
