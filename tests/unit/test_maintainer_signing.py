"""The pure parts of signing in turn and of rotating the maintainer set (registry.proposal,
registry.maintainer_set) and where a node fetches the versions of a rotation chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id
from node.directory import (
    Directory,
    MaintainerKey,
    MaintainerSet,
    RotationGap,
    ThresholdNotMet,
    TrustedDirectory,
    add_signatures,
    sign_directory,
)
from node.directory.refresh import version_url
from node.directory.signing import parse_signed
from registry.maintainer_set import (
    add_key,
    describe_change,
    every_key,
    parse_public_entry,
    public_entry,
    remove_key,
    with_threshold,
)
from registry.proposal import (
    StaleProposal,
    check_publishable,
    count_signatures,
    directory_changes,
    merge_signed,
    signer_entry,
    summary_lines,
)
from registry.publish import RegistryError, next_directory

NOW = datetime(2026, 3, 2, tzinfo=UTC)
KEYS = {name: Ed25519PrivateKey.generate() for name in ("alice", "bob", "carol", "dave")}


def _entry(name: str) -> MaintainerKey:
    raw = KEYS[name].public_key().public_bytes_raw()
    return MaintainerKey(name, key_id(raw), raw)


def _set(threshold: int, *names: str) -> MaintainerSet:
    return MaintainerSet(threshold, tuple(_entry(n) for n in names))


OLD = _set(2, "alice", "bob", "carol")
NEW = _set(2, "alice", "bob", "dave")


def _directory(maintainers: MaintainerSet, previous: Directory | None, at: datetime) -> Directory:
    return next_directory([], maintainers, previous, at, code_lists={})


def _signed(directory: Directory, *names: str) -> bytes:
    return sign_directory(directory, [KEYS[n] for n in names])


V1 = _directory(OLD, None, NOW)
V1_BYTES = _signed(V1, "alice", "bob")


def _check(data: bytes, proposed: bytes | None = None, rebuilt: bytes | None = None) -> Directory:
    signed = parse_signed(data).signed_bytes
    return check_publishable(
        data,
        current=OLD,
        current_bytes=V1_BYTES,
        proposed_bytes=data if proposed is None else proposed,
        rebuilt_signed=signed if rebuilt is None else rebuilt,
        now=NOW + timedelta(hours=1),
    )


# --- maintainer_set -----------------------------------------------------------------


def test_public_entry_round_trips_and_is_checked() -> None:
    raw = KEYS["dave"].public_key().public_bytes_raw()
    entry = public_entry("dave", raw)
    assert parse_public_entry(entry, "dave.pub.json") == _entry("dave")
    assert set(json.loads(entry)) == {"name", "keyid", "public_key"}
    forged = json.loads(entry) | {"keyid": "0" * 32}
    with pytest.raises(RegistryError, match="not a maintainer's public entry"):
        parse_public_entry(json.dumps(forged).encode(), "x.json")
    with pytest.raises(RegistryError, match="not JSON"):
        parse_public_entry(b"{", "x.json")
    with pytest.raises(RegistryError):
        public_entry(" bad name ", raw)


def test_set_arithmetic_and_its_refusals() -> None:
    bigger = add_key(OLD, _entry("dave"))
    assert [k.name for k in bigger.keys] == ["alice", "bob", "carol", "dave"]
    assert remove_key(bigger, "carol") == NEW
    assert with_threshold(OLD, 3).threshold == 3
    assert describe_change(OLD, NEW) == [
        f"add dave ({_entry('dave').key_id})",
        f"remove carol ({_entry('carol').key_id})",
    ]
    assert describe_change(OLD, with_threshold(OLD, 3)) == ["threshold 2 -> 3"]

    with pytest.raises(RegistryError, match="already in the set, as alice"):
        add_key(OLD, _entry("alice"))
    renamed = MaintainerKey("alice", _entry("dave").key_id, _entry("dave").public_key)
    with pytest.raises(RegistryError, match="already in the set"):
        add_key(OLD, renamed)
    with pytest.raises(RegistryError, match=r"threshold 4 needs 1 to 3"):
        with_threshold(OLD, 4)
    with pytest.raises(RegistryError, match="threshold 0 needs 1 to 3"):
        with_threshold(OLD, 0)
    with pytest.raises(RegistryError, match="already 2"):
        with_threshold(OLD, 2)
    with pytest.raises(RegistryError, match="lower the threshold first"):
        remove_key(remove_key(OLD, "carol"), "bob")
    with pytest.raises(RegistryError, match="'eve' is not in the maintainer set"):
        remove_key(OLD, "eve")


def test_every_key_keeps_retired_maintainers_for_statements() -> None:
    union = every_key([NEW, OLD])
    assert {k.name for k in union.keys} == {"alice", "bob", "carol", "dave"}
    assert union.threshold == 1


# --- proposal: signing in turn --------------------------------------------------------


def test_signatures_added_in_turn_count_once_per_key() -> None:
    v2 = _directory(OLD, V1, NOW + timedelta(minutes=5))
    proposal = _signed(v2)
    assert count_signatures(parse_signed(proposal), OLD).count == 0
    after_a = add_signatures(proposal, [KEYS["alice"]])
    after_ab = add_signatures(after_a, [KEYS["bob"]])
    counted = count_signatures(parse_signed(after_ab), OLD)
    assert counted.signers == ("alice", "bob") and counted.enough
    assert "2 signed, 2 needed (alice, bob)" in counted.line()
    assert "not yet: alice, bob, carol" in count_signatures(parse_signed(proposal), OLD).line()

    # Copies signed apart merge into one; the same signature twice counts once.
    after_b = add_signatures(proposal, [KEYS["bob"]])
    assert merge_signed([after_a, after_b]) == after_ab
    assert merge_signed([after_a, after_a, after_a]) == after_a
    with pytest.raises(RegistryError, match="different content"):
        merge_signed([after_a, _signed(_directory(OLD, V1, NOW + timedelta(minutes=6)))])


def test_signer_entry_checks_membership_and_repeats() -> None:
    v2 = parse_signed(add_signatures(_signed(_directory(NEW, V1, NOW)), [KEYS["alice"]]))
    carol = _entry("carol").key_id
    with pytest.raises(RegistryError, match="pass --previous"):
        signer_entry(v2, carol, None)
    assert signer_entry(v2, carol, OLD).name == "carol"  # a current maintainer approving
    with pytest.raises(RegistryError, match="already holds a valid signature by alice"):
        signer_entry(v2, _entry("alice").key_id, None)
    stranger = key_id(Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    with pytest.raises(RegistryError, match="not in this directory's maintainer set"):
        signer_entry(v2, stranger, OLD)


def test_summary_and_changes_name_what_is_signed() -> None:
    v2 = _directory(NEW, V1, NOW + timedelta(minutes=5))
    lines = summary_lines(parse_signed(_signed(v2, "alice")), previous=V1, previous_set=OLD)
    text = "\n".join(lines)
    assert "directory version 2" in text and "ROTATION" in text
    assert "current set 1 signed, 2 needed (alice; not yet: bob, carol)" in text
    assert "new set     1 signed, 2 needed (alice; not yet: bob, dave)" in text
    assert directory_changes(None, V1) == ["the first version: everything is new"]
    same = _directory(OLD, V1, NOW + timedelta(minutes=5))
    assert directory_changes(V1, same) == [
        "no change but the dates (a re-publication before expiry)"
    ]


# --- proposal: what publish --signed accepts ------------------------------------------


def test_check_publishable_accepts_the_proposal_signed_by_a_threshold() -> None:
    v2 = _directory(OLD, V1, NOW + timedelta(minutes=5))
    assert _check(_signed(v2, "bob", "carol")).version == 2


def test_check_publishable_refusals() -> None:
    v2 = _directory(OLD, V1, NOW + timedelta(minutes=5))
    below = _signed(v2, "alice")
    with pytest.raises(RegistryError, match="1 valid signatures of the current maintainer set"):
        _check(below)
    good = _signed(v2, "alice", "bob")
    with pytest.raises(RegistryError, match="never proposed"):
        check_publishable(
            good, current=OLD, current_bytes=V1_BYTES, proposed_bytes=None,
            rebuilt_signed=b"", now=NOW,
        )  # fmt: skip
    other = _signed(_directory(OLD, V1, NOW + timedelta(minutes=9)))
    with pytest.raises(RegistryError, match="not the registry's proposal"):
        _check(good, proposed=other)
    with pytest.raises(StaleProposal, match="propose` again"):
        _check(good, rebuilt=parse_signed(other).signed_bytes)
    with pytest.raises(RegistryError, match="version 1 \\(already published\\), the next"):
        _check(V1_BYTES)
    v3 = _signed(_directory(OLD, v2, NOW + timedelta(minutes=6)), "alice", "bob")
    with pytest.raises(RegistryError, match="holds version 3, the next version is 2"):
        _check(v3)
    expired = _signed(next_directory([], OLD, V1, NOW, code_lists={},
                                     validity=timedelta(minutes=1)), "alice", "bob")  # fmt: skip
    with pytest.raises(RegistryError, match=r"a node would refuse version 2: .*expired"):
        _check(expired)


def test_a_rotation_needs_both_thresholds() -> None:
    rotation = _directory(NEW, V1, NOW + timedelta(minutes=5))
    assert _check(_signed(rotation, "alice", "carol", "dave")).maintainers == NEW
    with pytest.raises(RegistryError, match="1 valid signatures of the new maintainer set"):
        _check(_signed(rotation, "alice", "carol"))
    with pytest.raises(RegistryError, match="1 valid signatures of the current maintainer set"):
        _check(_signed(rotation, "alice", "dave"))
    # And a node: signed by the new set only is a gap, not a rotation.
    node = TrustedDirectory(OLD, V1_BYTES)
    with pytest.raises(RotationGap):
        node.update(_signed(rotation, "bob", "dave"), NOW + timedelta(hours=1))
    with pytest.raises(ThresholdNotMet):
        node.update(_signed(rotation, "carol", "dave"), NOW + timedelta(hours=1))


# --- node: where the versions of a rotation chain are --------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://registry.example/directory.json", "https://registry.example/directory/7.json"),
        ("http://127.0.0.1:8400/x/directory.json", "http://127.0.0.1:8400/x/directory/7.json"),
        ("https://mirror.example/directory/9.json", "https://mirror.example/directory/7.json"),
    ],
)
def test_version_url(url: str, expected: str) -> None:
    assert version_url(url, 7) == expected
