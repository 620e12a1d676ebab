"""The maintainer-set fingerprint, the registry's mDNS TXT record (hostile input), and the
choices `node init --discover` makes from what it finds: pure parts, no sockets."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from node.crypto.canonical import canonical_bytes
from node.directory import MaintainerSet, ThresholdNotMet, TooLarge
from node.directory.fingerprint import (
    FingerprintMismatch,
    MalformedFingerprint,
    confirms,
    directory_confirmed_by,
    format_fingerprint,
    maintainer_fingerprint,
    parse_fingerprint,
)
from node.directory.signing import sign_directory
from node.transport.discovery import MalformedAnnouncement
from node.transport.registry_discovery import RegistryAnnouncement
from registry.announce import announced_host, registry_announcement
from registry.publish import RegistryError
from tests.unit.test_directory import NEW, OLD, _maintainers, _plain, _signed

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "directory-v1.json"
# docs/protocol.md quotes it: the fingerprint of the test vector's maintainer set.
VECTOR_FINGERPRINT = "sha256:fb2bf4a4833d0090e739f702aa4a3596476c6b5d49a341ee72a9f6739a3fc025"
SET = MaintainerSet.from_plain(_maintainers(OLD, 2))
FP = maintainer_fingerprint(SET)
DIGITS = FP.removeprefix("sha256:")


# --- the fingerprint ---------------------------------------------------------------------


def test_fingerprint_is_sha256_of_the_canonical_maintainer_set() -> None:
    expected = hashlib.sha256(canonical_bytes(_maintainers(OLD, 2))).hexdigest()
    assert expected == DIGITS
    assert FP == "sha256:" + DIGITS


def test_fingerprint_of_the_test_vector() -> None:
    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    maintainers = MaintainerSet.from_plain(vector["signed"]["maintainers"])
    assert maintainer_fingerprint(maintainers) == VECTOR_FINGERPRINT


@pytest.mark.parametrize(
    "other",
    [
        _maintainers(OLD, 1),  # another threshold
        _maintainers(OLD[:2], 2),  # a key less
        _maintainers(NEW, 2),  # other keys
        _maintainers(OLD, 2) | {"keys": _maintainers(OLD, 2)["keys"][::-1]},  # other order
    ],
    ids=["threshold", "fewer-keys", "other-keys", "key-order"],
)
def test_any_change_of_the_set_changes_the_fingerprint(other: dict[str, Any]) -> None:
    assert maintainer_fingerprint(MaintainerSet.from_plain(other)) != FP


def test_a_renamed_maintainer_changes_the_fingerprint() -> None:
    plain = _maintainers(OLD, 2)
    plain["keys"][0]["name"] = "mallory"
    assert maintainer_fingerprint(MaintainerSet.from_plain(plain)) != FP


def test_format_for_reading_aloud_parses_back() -> None:
    shown = format_fingerprint(FP)
    assert shown == "sha256: " + " ".join(DIGITS[i : i + 4] for i in range(0, 64, 4))
    assert parse_fingerprint(shown) == DIGITS


@pytest.mark.parametrize(
    "typed",
    [
        FP,
        DIGITS,
        DIGITS.upper(),
        "SHA256:" + DIGITS,
        f"  {FP}\n",
        ":".join(DIGITS[i : i + 2] for i in range(0, 64, 2)),
        "-".join(DIGITS[i : i + 4] for i in range(0, 64, 4)),
    ],
)
def test_the_ways_people_write_a_fingerprint_are_accepted(typed: str) -> None:
    assert parse_fingerprint(typed) == DIGITS


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "not a fingerprint"),
        ("y", "not a fingerprint"),
        ("yes", "not a fingerprint"),
        ("sha256:", "not a fingerprint"),
        ("sha1:" + DIGITS, "not a fingerprint"),
        (DIGITS[:63] + "g", "not a fingerprint"),
        (DIGITS + "0", "more than 64"),
        (DIGITS[:63], "give all 64"),
        ("é" * 10, "not a fingerprint"),
    ],
)
def test_what_is_not_a_whole_fingerprint_is_refused(typed: str, message: str) -> None:
    with pytest.raises(MalformedFingerprint, match=message):
        parse_fingerprint(typed)


def test_by_hand_the_first_16_digits_are_enough_and_fewer_are_not() -> None:
    assert parse_fingerprint(DIGITS[:16], min_digits=16) == DIGITS[:16]
    with pytest.raises(MalformedFingerprint, match="at least the first 16"):
        parse_fingerprint(DIGITS[:15], min_digits=16)


def test_confirms_needs_a_long_enough_start_of_the_fingerprint() -> None:
    assert confirms(DIGITS, FP)
    assert confirms(DIGITS[:16], FP)
    assert not confirms(DIGITS[:15], FP)
    assert not confirms(DIGITS[1:17], FP)  # not the start
    other = maintainer_fingerprint(MaintainerSet.from_plain(_maintainers(NEW, 2)))
    assert not confirms(DIGITS, other)


# --- trusting a directory by fingerprint alone ------------------------------------------


def test_a_directory_of_the_confirmed_set_with_threshold_signatures_is_trusted() -> None:
    directory, fingerprint = directory_confirmed_by(_signed(), DIGITS)
    assert fingerprint == FP
    assert directory.maintainers == SET
    assert directory_confirmed_by(_signed(), DIGITS[:16])[1] == FP


def test_a_directory_of_another_set_is_refused_however_well_signed() -> None:
    rogue = sign_directory(_plain(maintainers=_maintainers(NEW, 2)), NEW)
    with pytest.raises(FingerprintMismatch, match="not the one confirmed"):
        directory_confirmed_by(rogue, DIGITS)


def test_the_confirmed_set_without_a_threshold_of_signatures_is_refused() -> None:
    with pytest.raises(ThresholdNotMet, match="1 valid signatures"):
        directory_confirmed_by(_signed(keys=OLD[:1]), DIGITS)
    unsigned = sign_directory(_plain(), [])
    with pytest.raises(ThresholdNotMet, match="0 valid signatures"):
        directory_confirmed_by(unsigned, DIGITS)
    # Signed by keys outside the set: they do not count.
    with pytest.raises(ThresholdNotMet):
        directory_confirmed_by(_signed(keys=NEW), DIGITS)


def test_a_tampered_directory_is_refused() -> None:
    data = _signed().replace(b'"version":1', b'"version":9')
    with pytest.raises(ThresholdNotMet):
        directory_confirmed_by(data, DIGITS)


def test_an_oversized_directory_is_not_parsed() -> None:
    with pytest.raises(TooLarge):
        directory_confirmed_by(_signed(), DIGITS, max_bytes=100)


# --- the registry's TXT record -------------------------------------------------------------


def _txt(*items: bytes) -> bytes:
    return b"".join(bytes((len(i),)) + i for i in items)


GOOD = (b"txtvers=1", b"path=/directory.json", b"fingerprint=" + FP.encode(), b"name=Lab")


def _parse(text: bytes, host: str | None = "127.0.0.1", port: int | None = 8400) -> Any:
    return RegistryAnnouncement.from_txt(text, host=host, port=port)


def test_txt_round_trip_and_url() -> None:
    a = RegistryAnnouncement("127.0.0.1", 8400, "/directory.json", FP, "Lab registry ü")
    assert _parse(a.to_txt()) == a
    assert a.url == "http://127.0.0.1:8400/directory.json"
    assert a.to_txt().startswith(b"\x09txtvers=1\x14path=/directory.json")
    nameless = RegistryAnnouncement("fd00::1", 8400, "/directory.json", FP)
    assert b"name=" not in nameless.to_txt()
    assert _parse(nameless.to_txt(), host="fd00::1") == nameless
    assert nameless.url == "http://[fd00::1]:8400/directory.json"


def test_keys_are_case_insensitive_and_unknown_keys_ignored() -> None:
    a = _parse(_txt(b"TXTVERS=1", *GOOD[1:], b"future=x", b"flag"))
    assert (a.path, a.fingerprint, a.name) == ("/directory.json", FP, "Lab")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "no 'txtvers'"),
        (_txt(*GOOD[1:]), "no 'txtvers'"),
        (_txt(GOOD[0], *GOOD[2:]), "no 'path'"),
        (_txt(*GOOD[:2], GOOD[3]), "no 'fingerprint'"),
        (_txt(b"txtvers=2", *GOOD[1:]), "version '2' is not the supported '1'"),
        (_txt(*GOOD, b"Fingerprint=" + FP.encode()), "'fingerprint' appears twice"),
        (_txt(*GOOD[:2], b"fingerprint"), "'fingerprint' has no value"),
        (_txt(*GOOD[:3], b"name=\xff"), "'name' is not UTF-8"),
        (_txt(*GOOD) + b"\x40abc", "runs past the end"),
        (_txt(*GOOD[:2], b"fingerprint=sha256:" + b"AB" * 32), "fingerprint"),
        (_txt(*GOOD[:2], b"fingerprint=" + FP.encode()[:-1]), "fingerprint"),
        (_txt(*GOOD[:2], b"fingerprint=sha1:" + b"ab" * 20), "fingerprint"),
        (_txt(GOOD[0], b"path=directory.json", *GOOD[2:]), "path"),
        (_txt(GOOD[0], b"path=/../etc/passwd", *GOOD[2:]), "path"),
        (_txt(GOOD[0], b"path=/d.json?x=1", *GOOD[2:]), "path"),
        (_txt(GOOD[0], b"path=//evil.example/d.json", *GOOD[2:]), "path"),
        (_txt(GOOD[0], b"path=/a%2e%2e/b", *GOOD[2:]), "path"),
        (_txt(GOOD[0], b"path=", *GOOD[2:]), "path"),
        (_txt(*GOOD[:3], b"name= Lab"), "surrounding spaces"),
        (_txt(*GOOD[:3], b"name=a\x1bb"), "control characters"),
        (_txt(*GOOD[:3], b"name="), "1 to"),
    ],
)
def test_malformed_txt_is_refused_with_a_clear_reason(text: bytes, message: str) -> None:
    with pytest.raises(MalformedAnnouncement, match=message):
        _parse(text)


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        (None, 8400, "no usable address"),
        ("127.0.0.1", None, "no port"),
        ("127.0.0.1", 70000, "outside"),
        ("0.0.0.0", 8400, "not a unicast address"),
        ("224.0.0.251", 8400, "not a unicast address"),
        ("registry.example", 8400, "not an IP address"),
    ],
)
def test_address_and_port_are_checked(host: str | None, port: int | None, message: str) -> None:
    with pytest.raises(MalformedAnnouncement, match=message):
        _parse(_txt(*GOOD), host=host, port=port)


def test_random_bytes_never_half_parse() -> None:
    # Whatever the bytes, the answer is an announcement or MalformedAnnouncement, never
    # another exception and never an announcement with an unchecked field.
    for _ in range(500):
        text = secrets.token_bytes(secrets.randbelow(80))
        try:
            a = _parse(text)
        except MalformedAnnouncement:
            continue
        assert a.fingerprint.startswith("sha256:")


def test_instance_names_tell_registries_and_mirrors_apart() -> None:
    a = RegistryAnnouncement("127.0.0.1", 8400, "/directory.json", FP)
    mirror = RegistryAnnouncement("127.0.0.1", 8401, "/directory.json", FP)
    assert a.instance_name == f"ephyto-registry-{DIGITS[:12]}-8400"
    assert a.instance_name != mirror.instance_name


# --- what `registry serve --announce` announces --------------------------------------------


def test_the_registry_announces_its_maintainer_fingerprint() -> None:
    a = registry_announcement(SET, "127.0.0.1", 8400, None)
    assert (a.url, a.fingerprint, a.name) == ("http://127.0.0.1:8400/directory.json", FP, None)


@pytest.mark.parametrize(
    ("listen", "interfaces", "host"),
    [
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["127.0.0.1"], "127.0.0.1"),
        ("192.168.1.5", ["192.168.1.5"], "192.168.1.5"),
        ("192.168.1.5", [], "192.168.1.5"),
        ("0.0.0.0", ["192.168.1.5", "10.0.0.2"], "192.168.1.5"),
    ],
)
def test_the_announced_address_is_where_the_registry_listens(
    listen: str, interfaces: list[str], host: str
) -> None:
    assert announced_host(listen, interfaces) == host


@pytest.mark.parametrize(
    ("listen", "interfaces", "message"),
    [
        ("0.0.0.0", [], "name the one to announce"),
        ("127.0.0.1", ["192.168.1.5"], "not reachable where it would be announced"),
        ("192.168.1.5", ["10.0.0.2"], "not reachable where it would be announced"),
        ("localhost", [], "IP addresses"),
        ("0.0.0.0", ["eth0"], "IP addresses"),
    ],
)
def test_an_address_nobody_could_reach_is_not_announced(
    listen: str, interfaces: list[str], message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        announced_host(listen, interfaces)
