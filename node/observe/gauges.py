"""The gauges of a node and a hub as values (pure): given what the store and the
directory say and the time, the samples a scrape shows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from node.directory import Directory, NppoEntry
from node.directory.timestamp import Timestamp
from node.observe import names
from node.observe.metrics import Sample

_DAY_SECONDS = 86400.0


def outbox_samples(depth: int, oldest_created_at: datetime | None, now: datetime) -> list[Sample]:
    """The outbox's depth and the age of its oldest message (0 when it is empty)."""
    age = 0.0 if oldest_created_at is None else max((now - oldest_created_at).total_seconds(), 0)
    return [
        Sample(names.OUTBOX_DEPTH, {}, float(depth)),
        Sample(names.OLDEST_UNDELIVERED, {}, age),
    ]


def directory_samples(
    directory: Directory | None, timestamp: Timestamp | None, now: datetime
) -> list[Sample]:
    """Version, age and time to expiry of the trusted directory and timestamp (none of a
    document not trusted yet: a gauge that is absent, not a made-up number)."""
    samples: list[Sample] = []
    if directory is not None:
        samples += [
            Sample(names.DIRECTORY_VERSION, {}, float(directory.version)),
            Sample(names.DIRECTORY_AGE, {}, (now - directory.issued).total_seconds()),
            Sample(names.DIRECTORY_EXPIRY, {}, (directory.expires - now).total_seconds()),
        ]
    if timestamp is not None:
        samples += [
            Sample(names.TIMESTAMP_AGE, {}, (now - timestamp.issued).total_seconds()),
            Sample(names.TIMESTAMP_EXPIRY, {}, (timestamp.expires - now).total_seconds()),
        ]
    return samples


def key_samples(entry: NppoEntry | None, now: datetime) -> list[Sample]:
    """Days until each of an NPPO's keys and TLS pins, as the directory lists them, stops
    being valid (the ones already past are left out: they are history, not a warning)."""
    if entry is None:
        return []
    samples = [
        Sample(names.KEY_EXPIRY, {names.KEY: key.kind, names.KEY_ID: key.key_id},
               _days(key.valid_until, now))
        for key in entry.keys
        if key.valid_until > now
    ]  # fmt: skip
    samples += [
        Sample(
            names.KEY_EXPIRY, {names.KEY: "tls", names.KEY_ID: pin.pin}, _days(pin.valid_until, now)
        )
        for pin in entry.tls_pins
        if pin.valid_until > now
    ]
    return samples


def tls_certificate_samples(not_valid_after: Iterable[datetime], now: datetime) -> list[Sample]:
    """Days until the TLS certificate presented expires (negative: expired)."""
    return [Sample(names.TLS_EXPIRY, {}, _days(moment, now)) for moment in not_valid_after]


def _days(moment: datetime, now: datetime) -> float:
    return round((moment - now).total_seconds() / _DAY_SECONDS, 3)
