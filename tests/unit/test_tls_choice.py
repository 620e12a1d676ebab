"""Which TLS certificate a node presents while its TLS key rotates, and where such a
rotation stands (pure: plain values, no files, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.directory.model import KeyEntry, TlsPin, switch_time
from node.identity.keyring import listed_name, rotation_stage
from node.identity.tls_choice import (
    HeldTls,
    TlsHolder,
    TlsIdentity,
    presented,
    presented_pin,
    unheld_pins,
)

OLD, NEW, OTHER = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
ENROLLED = datetime(2026, 1, 1, tzinfo=UTC)
ROTATION = datetime(2026, 6, 1, tzinfo=UTC)
OVERLAP = timedelta(hours=24)
END = ROTATION + OVERLAP
HALF = ROTATION + OVERLAP / 2
FAR = datetime(2028, 1, 1, tzinfo=UTC)
# What a registry lists after the rotation: the old pin capped at the overlap's end.
LISTED = (TlsPin(OLD, ENROLLED, END), TlsPin(NEW, ROTATION, FAR))
SECOND = timedelta(seconds=1)


def _at(now: datetime, listed: tuple[TlsPin, ...] = LISTED, next_: str | None = NEW) -> str:
    return presented_pin(OLD, next_, listed, now)


def test_the_midpoint_is_halfway_between_the_new_pin_start_and_the_old_pin_end() -> None:
    assert switch_time(LISTED[1], LISTED[0]) == HALF


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ROTATION - SECOND, OLD),  # listed, not valid yet
        (ROTATION, OLD),  # the overlap begins: partners may not know the new pin yet
        (HALF - SECOND, OLD),
        (HALF, NEW),  # halfway: every partner had half the overlap to refresh
        (END - SECOND, NEW),
        (END, NEW),  # the old pin expired
        (FAR - SECOND, NEW),
    ],
)
def test_the_next_certificate_is_presented_from_the_midpoint_of_the_overlap(
    now: datetime, expected: str
) -> None:
    assert _at(now) == expected


def test_without_a_next_certificate_or_one_not_listed_the_current_one_is_presented() -> None:
    assert _at(HALF, next_=None) == OLD
    assert _at(HALF, next_=OLD) == OLD
    # The directory does not list the next pin (not published, or another request's).
    assert _at(END, listed=(TlsPin(OLD, ENROLLED, FAR),)) == OLD
    assert _at(END, listed=(TlsPin(OLD, ENROLLED, END), TlsPin(OTHER, ROTATION, FAR))) == OLD
    # Listed, but already expired: nothing to present it for.
    expired = (TlsPin(OLD, ENROLLED, FAR + OVERLAP), TlsPin(NEW, ROTATION, FAR))
    assert _at(FAR, listed=expired) == OLD


def test_the_next_certificate_is_presented_once_the_current_pin_is_not_valid() -> None:
    # No overlap at all: the old pin ends where the new one starts.
    back_to_back = (TlsPin(OLD, ENROLLED, ROTATION), TlsPin(NEW, ROTATION, FAR))
    assert _at(ROTATION - SECOND, listed=back_to_back) == OLD
    assert _at(ROTATION, listed=back_to_back) == NEW
    # The current pin is no longer listed (a registry that dropped it).
    assert _at(ROTATION, listed=(TlsPin(NEW, ROTATION, FAR),)) == NEW


def test_presented_maps_the_pin_to_the_identity_held() -> None:
    current = TlsIdentity(Path("keys/tls.crt"), Path("keys/tls.key"), OLD)
    next_ = TlsIdentity(Path("keys/tls.next.crt"), Path("keys/tls.next.key"), NEW)
    held = HeldTls(current, next_)
    assert presented(held, LISTED, ROTATION) is current
    assert presented(held, LISTED, HALF) is next_
    assert presented(HeldTls(current), LISTED, END) is current
    assert held.pins == {OLD, NEW}
    holder = TlsHolder(held)
    assert holder() is current and holder.presented is current  # seeded with the current
    holder.presented = next_
    assert holder() is next_


def test_unheld_pins_are_the_live_pins_not_held() -> None:
    current = TlsIdentity(Path("c"), Path("k"), OLD)
    assert unheld_pins(LISTED, HeldTls(current), ROTATION - OVERLAP) == (LISTED[1],)
    assert unheld_pins(LISTED, HeldTls(current, TlsIdentity(Path("n"), Path("m"), NEW)), END) == ()
    assert unheld_pins((TlsPin(NEW, ROTATION, END),), HeldTls(current), END) == ()  # expired


# --- the stage of a rotation of the TLS key --------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "now", "stage"),
    [
        ((TlsPin(OLD, ENROLLED, FAR),), ROTATION, "unpublished"),
        ((TlsPin(OLD, ENROLLED, END), TlsPin(OTHER, ROTATION, FAR)), ROTATION, "mismatch"),
        (LISTED, ROTATION - SECOND, "waiting"),
        (LISTED, HALF, "overlap"),
        (LISTED, END, "due"),
    ],
)
def test_the_stage_of_a_tls_rotation(listed: tuple[TlsPin, ...], now: datetime, stage: str) -> None:
    found = rotation_stage(listed, {OLD}, {NEW}, now)
    assert found.stage == stage
    if stage == "mismatch":
        assert [listed_name(k) for k in found.foreign] == [f"TLS {OTHER}"]
    if stage in ("waiting", "overlap", "due"):
        assert (found.new_from, found.old_until) == (ROTATION, END)


def test_keys_and_pins_together_are_due_only_when_both_are() -> None:
    key = b"\x01" * 32
    keys = (
        KeyEntry("signing", key, "old-signing", ENROLLED, END),
        KeyEntry("signing", key, "new-signing", ROTATION, FAR),
    )
    late_pin = (TlsPin(OLD, ENROLLED, END + OVERLAP), TlsPin(NEW, ROTATION, FAR))
    entries = (*keys, *late_pin)
    old, new = {"old-signing", OLD}, {"new-signing", NEW}
    assert rotation_stage(entries, old, new, END).stage == "overlap"
    assert rotation_stage(entries, old, new, END + OVERLAP).stage == "due"
    # Keys alone (a rotation that leaves the TLS key alone): the pin counts for nothing.
    assert rotation_stage(keys, {"old-signing"}, {"new-signing"}, END).stage == "due"
    assert listed_name(keys[0]) == "signing old-signing"
