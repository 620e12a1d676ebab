"""When the trusted directory may back a decision, and when the node warns that it expires
(issue 12; node/directory/freshness.py, docs/protocol.md Part C "The timestamp").

With a timestamp role the directory is fresh only while its own expiry has not passed AND
an unexpired timestamp is trusted; without one, until its own expiry, as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from node.directory import (
    Directory,
    ExpiredError,
    FrozenRegistry,
    MaintainerSet,
    NoTrustedDirectory,
    TrustedDirectory,
    sign_directory,
)
from node.directory.freshness import (
    EXPIRY_WARNING,
    WARN_EVERY,
    ExpiryWarned,
    directory_expiry_warning,
    expiry_warning_due,
    fresh_directory,
)
from node.directory.timestamp import DirectoryRef, Timestamp, TrustedTimestamp, sign_timestamp
from tests.timestamp_keys import MAINTAINER, NOW, ONLINE, key_set, time_text

ANCHOR = MaintainerSet.from_plain(key_set([MAINTAINER]))


def _directory_bytes(
    *, version: int = 1, lives: timedelta = timedelta(days=90), role: bool = True
) -> bytes:
    plain: dict[str, Any] = {
        "format": 1,
        "version": version,
        "issued": time_text(NOW - timedelta(hours=1)),
        "expires": time_text(NOW - timedelta(hours=1) + lives),
        "maintainers": key_set([MAINTAINER]),
        "nppos": [],
        "hub": None,
        "code_lists": {},
    }
    if role:
        plain["timestamp_keys"] = key_set([ONLINE])
    return sign_directory(plain, [MAINTAINER])


def _trusted(data: bytes, grace: timedelta = timedelta(0)) -> TrustedDirectory:
    trusted = TrustedDirectory(ANCHOR, grace=grace)
    trusted.update(data, NOW)
    return trusted


def _stamped(data: bytes, lives: timedelta = timedelta(days=1)) -> TrustedTimestamp:
    directory = _trusted(data).current
    assert directory is not None
    stamp = Timestamp(5, NOW - timedelta(minutes=5), NOW + lives, DirectoryRef.of(1, data))
    trusted = TrustedTimestamp()
    trusted.update(sign_timestamp(stamp, [ONLINE]), directory, NOW)
    return trusted


def test_with_a_timestamp_role_the_directory_is_fresh_while_the_timestamp_is() -> None:
    data = _directory_bytes()
    trusted, stamp = _trusted(data), _stamped(data)

    assert fresh_directory(trusted, stamp, NOW).version == 1
    almost = NOW + timedelta(days=1) - timedelta(seconds=1)
    assert fresh_directory(trusted, stamp, almost).version == 1
    # A day on, the directory has 89 days left, yet nothing vouches that it is the newest.
    with pytest.raises(FrozenRegistry) as refused:
        fresh_directory(trusted, stamp, NOW + timedelta(days=1))
    assert "timestamp (version 5) expired at 2026-03-03T00:00:00Z" in str(refused.value)
    assert "until a fresh timestamp arrives" in str(refused.value)
    # FrozenRegistry is an ExpiredError: every caller that stops on expiry stops on it.
    assert isinstance(refused.value, ExpiredError)


def test_with_a_timestamp_role_and_no_timestamp_yet_nothing_is_fresh() -> None:
    trusted = _trusted(_directory_bytes())
    with pytest.raises(FrozenRegistry, match="no timestamp of the registry is trusted yet"):
        fresh_directory(trusted, TrustedTimestamp(), NOW)


def test_the_directorys_own_expiry_still_applies_with_a_fresh_timestamp() -> None:
    data = _directory_bytes(lives=timedelta(days=2))
    trusted, stamp = _trusted(data), _stamped(data, lives=timedelta(days=7))
    with pytest.raises(ExpiredError) as refused:
        fresh_directory(trusted, stamp, NOW + timedelta(days=3))
    assert not isinstance(refused.value, FrozenRegistry)


def test_without_a_timestamp_role_the_directory_is_fresh_until_its_own_expiry() -> None:
    trusted = _trusted(_directory_bytes(lives=timedelta(days=7), role=False))
    assert fresh_directory(trusted, TrustedTimestamp(), NOW + timedelta(days=6)).version == 1
    with pytest.raises(ExpiredError):
        fresh_directory(trusted, TrustedTimestamp(), NOW + timedelta(days=7))


def test_the_operators_grace_covers_the_timestamp_as_it_covers_the_directory() -> None:
    data = _directory_bytes()
    trusted, stamp = _trusted(data, grace=timedelta(hours=6)), _stamped(data)
    assert fresh_directory(trusted, stamp, NOW + timedelta(days=1, hours=5)).version == 1
    with pytest.raises(FrozenRegistry):
        fresh_directory(trusted, stamp, NOW + timedelta(days=1, hours=6))


def test_nothing_trusted_is_no_trusted_directory() -> None:
    with pytest.raises(NoTrustedDirectory):
        fresh_directory(TrustedDirectory(ANCHOR), TrustedTimestamp(), NOW)


def _directory(lives: timedelta) -> Directory:
    directory = _trusted(_directory_bytes(lives=lives)).current
    assert directory is not None
    return directory


def test_the_expiry_warning_starts_fourteen_days_before() -> None:
    directory = _directory(timedelta(days=90))  # expires NOW + 90 days - 1 hour
    expires = directory.expires
    assert timedelta(days=14) == EXPIRY_WARNING
    assert directory_expiry_warning(directory, NOW) is None
    assert directory_expiry_warning(directory, expires - timedelta(days=14, seconds=1)) is None

    message = directory_expiry_warning(directory, expires - timedelta(days=14))
    assert message is not None
    assert "directory version 1 expires at 2026-05-30T23:00:00Z, in 14 days" in message
    assert "publish a new version (a signing round)" in message
    soon = directory_expiry_warning(directory, expires - timedelta(hours=30))
    assert soon is not None and "in 30 hours" in soon
    last = directory_expiry_warning(directory, expires - timedelta(minutes=10))
    assert last is not None and "in 10 minutes" in last
    gone = directory_expiry_warning(directory, expires)
    assert gone is not None and "expired at 2026-05-30T23:00:00Z" in gone
    # A caller may choose another window.
    assert directory_expiry_warning(directory, NOW, within=timedelta(days=100)) is not None


def test_the_warning_is_due_once_a_day_and_at_each_stage() -> None:
    directory = _directory(timedelta(days=90))
    expires = directory.expires
    assert expiry_warning_due(None, directory, NOW) is None  # outside the window

    start = expires - timedelta(days=13)
    first = expiry_warning_due(None, directory, start)
    assert first == ExpiryWarned(1, 0, start)
    # Hourly refreshes within the day: silent.
    for hours in range(1, 24):
        assert expiry_warning_due(first, directory, start + timedelta(hours=hours)) is None
    again = expiry_warning_due(first, directory, start + WARN_EVERY)
    assert again is not None and again.at == start + WARN_EVERY

    # Crossing 7 days left speaks at once, even an hour after the last warning.
    before_stage = expires - timedelta(days=7, minutes=30)
    last = ExpiryWarned(1, 0, before_stage)
    crossed = expiry_warning_due(
        last, directory, expires - timedelta(days=7) + timedelta(minutes=30)
    )
    assert crossed is not None and crossed.stage == 1
    assert expiry_warning_due(crossed, directory, crossed.at + timedelta(hours=1)) is None

    # A new version is news too.
    newer = _trusted(_directory_bytes(version=1, lives=timedelta(days=10))).current
    assert newer is not None
    other_version = ExpiryWarned(2, 0, start)
    assert expiry_warning_due(other_version, newer, start + timedelta(hours=1)) is not None


def test_the_warning_times_are_whole_seconds_of_utc() -> None:
    directory = _directory(timedelta(days=3))
    message = directory_expiry_warning(
        directory, datetime.fromisoformat("2026-03-03T12:00:00+00:00")
    )
    assert message is not None and "2026-03-04T23:00:00Z" in message and "in 35 hours" in message
