"""The registry's signed timestamp: its strict parser, its domain, and the node's rules for it
(rollback, freeze, arbitrary key, threshold, mix-and-match); docs/protocol.md Part C."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.directory import (
    DOMAIN as DIRECTORY_DOMAIN,
)
from node.directory import (
    Directory,
    FrozenRegistry,
    MaintainerSet,
    MalformedDirectory,
    MixAndMatch,
    RollbackError,
    ThresholdNotMet,
    TooLarge,
    sign_directory,
    verify_signatures,
)
from node.directory.timestamp import (
    DOMAIN,
    MAX_BYTES,
    DirectoryRef,
    Timestamp,
    TrustedTimestamp,
    parse_timestamp,
    require_match,
    sign_timestamp,
    verify_timestamp,
)
from node.doctor.checks import registry_timestamp
from registry.publish import RegistryError
from registry.timestamp import next_timestamp
from tests.timestamp_keys import INTRUDER, MAINTAINER, NOW, ONLINE, SECOND, key_set, time_text


def _directory_bytes(version: int, timestamp_keys: dict[str, Any] | None = None) -> bytes:
    plain: dict[str, Any] = {
        "format": 1,
        "version": version,
        "issued": time_text(NOW - timedelta(days=1)),
        "expires": time_text(NOW + timedelta(days=6)),
        "maintainers": key_set([MAINTAINER]),
        "nppos": [],
        "hub": None,
        "code_lists": {},
        "timestamp_keys": timestamp_keys or key_set([ONLINE]),
    }
    return sign_directory(plain, [MAINTAINER])


def _directory(version: int = 1, timestamp_keys: dict[str, Any] | None = None) -> Directory:
    return verify_signatures(
        _directory_bytes(version, timestamp_keys), MaintainerSet.from_plain(key_set([MAINTAINER]))
    )


def _timestamp(
    version: int = 1,
    directory_version: int = 1,
    *,
    expires: datetime = NOW + timedelta(hours=12),
    data: bytes | None = None,
) -> Timestamp:
    named = _directory_bytes(directory_version) if data is None else data
    return Timestamp(
        version, NOW - timedelta(hours=1), expires, DirectoryRef.of(directory_version, named)
    )


def _signed(
    version: int = 1, directory_version: int = 1, keys: list[Ed25519PrivateKey] | None = None
) -> bytes:
    return sign_timestamp(_timestamp(version, directory_version), keys or [ONLINE])


def _plain(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(data)
    return value


def _resign(signed: dict[str, Any], keys: list[Ed25519PrivateKey]) -> bytes:
    """Wire bytes of an arbitrary "signed" object, signed properly (the parser judges it)."""
    body = canonical_bytes(signed)
    sigs = [
        {
            "keyid": key_id(k.public_key().public_bytes_raw()),
            "sig": base64.b64encode(k.sign(DOMAIN + body)).decode(),
        }
        for k in keys
    ]
    return canonical_bytes({"signatures": sigs, "signed": signed})


# --- wire form -----------------------------------------------------------------------------


def test_a_signed_timestamp_round_trips_canonically() -> None:
    data = _signed()
    assert data.startswith(b'{"signatures":[{"keyid":"') and data == canonical_bytes(_plain(data))
    timestamp = verify_timestamp(data, MaintainerSet.from_plain(key_set([ONLINE])))
    assert timestamp == _timestamp()
    assert _plain(data)["signed"]["type"] == "timestamp"
    assert sign_timestamp(_timestamp(), [ONLINE]) == data  # Ed25519 is deterministic


def test_the_domain_is_not_the_directorys() -> None:
    assert DOMAIN == b"ephyto-timestamp-v1\x00" and DOMAIN != DIRECTORY_DOMAIN
    doc = parse_timestamp(_signed())
    plain = _plain(_signed())
    # The same bytes signed under the directory's domain do not count as a timestamp...
    sig = ONLINE.sign(DIRECTORY_DOMAIN + doc.signed_bytes)
    plain["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    with pytest.raises(ThresholdNotMet):
        verify_timestamp(canonical_bytes(plain), MaintainerSet.from_plain(key_set([ONLINE])))
    # ...and a timestamp signature never verifies as a directory signature.
    directory = _plain(_directory_bytes(1))
    body = canonical_bytes(directory["signed"])
    kid = key_id(ONLINE.public_key().public_bytes_raw())
    directory["signatures"] = [
        {"keyid": kid, "sig": base64.b64encode(ONLINE.sign(DOMAIN + body)).decode()}
    ]
    with pytest.raises(ThresholdNotMet):
        verify_signatures(canonical_bytes(directory), MaintainerSet.from_plain(key_set([ONLINE])))


def test_a_non_canonical_timestamp_is_refused() -> None:
    data = _signed()
    for bad in (data.replace(b'"signed":', b'"signed": '), data + b"\n", b"\xef\xbb\xbf" + data):
        with pytest.raises(MalformedDirectory, match="canonical"):
            parse_timestamp(bad)
    doubled = data.replace(b'"format":1,', b'"format":1,"format":1,')
    with pytest.raises(MalformedDirectory):
        parse_timestamp(doubled)


def test_a_timestamp_over_the_size_limit_is_refused_unparsed() -> None:
    with pytest.raises(TooLarge, match=f"more than the limit of {MAX_BYTES}"):
        parse_timestamp(b"{" + b" " * MAX_BYTES + b"}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(type="directory"), "type: 'directory' is not 'timestamp'"),
        (lambda s: s.update(format=2), "format: 2 is not the supported format 1"),
        (lambda s: s.update(version=0), "version: 0 is outside"),
        (lambda s: s.update(version=True), "version: expected an integer"),
        (lambda s: s.update(expires=s["issued"]), "expires: not after issued"),
        (lambda s: s.update(issued="2026-03-02T00:00:00+00:00"), "is not YYYY-MM-DDTHH:MM:SSZ"),
        (lambda s: s.update(extra=1), "unknown field 'extra'"),
        (lambda s: s.pop("directory"), "missing field 'directory'"),
        (lambda s: s["directory"].update(sha256="AB" * 32), "not 64 lowercase hex"),
        (lambda s: s["directory"].update(length=0), "length: 0 is outside"),
        (lambda s: s["directory"].update(version=-1), "directory.version: -1 is outside"),
        (lambda s: s["directory"].update(url="x"), "unknown field 'url'"),
        (lambda s: s.update(directory=[]), "directory: expected an object"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(change: Any, message: str) -> None:
    signed = _plain(_signed())["signed"]
    change(signed)
    with pytest.raises(MalformedDirectory, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_timestamp(_resign(signed, [ONLINE]))


def test_bad_signature_entries_are_refused() -> None:
    plain = _plain(_signed())
    plain["signatures"][0]["keyid"] = "Z" * 32
    with pytest.raises(MalformedDirectory, match="keyid"):
        parse_timestamp(canonical_bytes(plain))
    plain = _plain(_signed())
    plain["signatures"] = plain["signatures"] * 33
    with pytest.raises(MalformedDirectory, match="more than 32"):
        parse_timestamp(canonical_bytes(plain))


def test_an_unknown_key_is_ignored_so_the_threshold_is_not_met() -> None:
    with pytest.raises(ThresholdNotMet, match="0 valid signatures"):
        verify_timestamp(_signed(keys=[INTRUDER]), MaintainerSet.from_plain(key_set([ONLINE])))


def test_a_threshold_of_two_needs_two_distinct_keys() -> None:
    keys = MaintainerSet.from_plain(key_set([ONLINE, SECOND], threshold=2))
    with pytest.raises(ThresholdNotMet, match="1 valid signatures by the directory's timestamp"):
        verify_timestamp(_signed(keys=[ONLINE]), keys)
    # The same key twice still counts once.
    plain = _plain(_signed(keys=[ONLINE]))
    plain["signatures"] = plain["signatures"] * 2
    with pytest.raises(ThresholdNotMet):
        verify_timestamp(canonical_bytes(plain), keys)
    assert verify_timestamp(_signed(keys=[ONLINE, SECOND, INTRUDER]), keys).version == 1


# --- the node's rules ---------------------------------------------------------------------


def test_a_first_timestamp_is_trusted_and_the_same_one_again_changes_nothing() -> None:
    trusted = TrustedTimestamp()
    assert trusted.current is None
    with pytest.raises(FrozenRegistry, match="no timestamp is trusted yet"):
        trusted.require_fresh(NOW)
    assert trusted.update(_signed(), _directory(), NOW) == _timestamp()
    assert trusted.trusted_bytes == _signed()
    assert trusted.update(_signed(), _directory(), NOW).version == 1
    assert trusted.require_fresh(NOW) == _timestamp()


def test_rollback_to_an_older_timestamp_is_refused() -> None:
    trusted = TrustedTimestamp()
    trusted.update(_signed(5), _directory(), NOW)
    with pytest.raises(RollbackError, match="timestamp version 4 is older than the trusted 5"):
        trusted.update(_signed(4), _directory(), NOW)
    other = sign_timestamp(_timestamp(5, expires=NOW + timedelta(hours=13)), [ONLINE])
    with pytest.raises(RollbackError, match="already trusted with other content"):
        trusted.update(other, _directory(), NOW)
    assert trusted.trusted_bytes == _signed(5)


def test_a_timestamp_naming_an_older_directory_is_refused() -> None:
    with pytest.raises(RollbackError, match="names directory version 1, older than the trusted 2"):
        TrustedTimestamp().update(_signed(1, 1), _directory(2), NOW)


def test_an_expired_timestamp_is_a_frozen_registry() -> None:
    trusted = TrustedTimestamp()
    trusted.update(_signed(), _directory(), NOW)
    later = NOW + timedelta(hours=12)
    with pytest.raises(FrozenRegistry, match="expired at 2026-03-02T12:00:00Z") as caught:
        trusted.require_fresh(later)
    assert "frozen or held back" in str(caught.value) and "maintainers" in str(caught.value)
    with pytest.raises(FrozenRegistry):
        TrustedTimestamp().update(_signed(), _directory(), later)


def test_a_timestamp_by_another_key_than_the_directory_lists_is_refused() -> None:
    trusted = TrustedTimestamp()
    with pytest.raises(ThresholdNotMet):
        trusted.update(_signed(keys=[INTRUDER]), _directory(), NOW)
    with pytest.raises(ThresholdNotMet):  # a maintainer key is not a timestamp key either
        trusted.update(_signed(keys=[MAINTAINER]), _directory(), NOW)
    assert trusted.current is None


def test_rotating_the_timestamp_keys_resets_the_version_count() -> None:
    # A leaked online key signed a far-future version; the maintainers rotate the key.
    trusted = TrustedTimestamp()
    trusted.update(_signed(2**40), _directory(1), NOW)
    with pytest.raises(RollbackError):
        trusted.update(_signed(7, 1), _directory(1), NOW)
    rotated = _directory(2, key_set([SECOND]))
    assert trusted.update(_signed(7, 2, keys=[SECOND]), rotated, NOW).version == 7


def test_a_persisted_timestamp_must_verify_against_the_keys() -> None:
    keys = MaintainerSet.from_plain(key_set([ONLINE]))
    assert TrustedTimestamp(_signed(3), keys).current == _timestamp(3)
    with pytest.raises(ThresholdNotMet):
        TrustedTimestamp(_signed(3, keys=[INTRUDER]), keys)
    with pytest.raises(ValueError):
        TrustedTimestamp(_signed(3))


def test_the_directory_must_be_the_one_named_byte_for_byte() -> None:
    data = _directory_bytes(2)
    timestamp = _timestamp(1, 2)
    assert require_match(timestamp, data) == 2
    with pytest.raises(MixAndMatch, match="is not the one timestamp version 1 names"):
        require_match(timestamp, _directory_bytes(2, key_set([SECOND])))  # another version 2
    with pytest.raises(MixAndMatch):
        require_match(timestamp, data + b" ")  # longer
    with pytest.raises(MixAndMatch):
        require_match(timestamp, data[:-1])  # shorter
    lying = Timestamp(1, timestamp.issued, timestamp.expires, DirectoryRef.of(3, data))
    with pytest.raises(MixAndMatch, match="is version 2, not the 3 it states"):
        require_match(lying, data)
    assert DirectoryRef.of(2, data).sha256 == hashlib.sha256(data).hexdigest()


# --- the registry's side (pure) --------------------------------------------------------


def test_the_registry_version_grows_with_each_re_sign_even_if_the_clock_goes_back() -> None:
    data = _directory_bytes(1)
    first = next_timestamp(None, 1, data, NOW)
    assert first.version == int(NOW.timestamp()) and first.expires == NOW + timedelta(days=1)
    again = next_timestamp(first, 1, data, NOW - timedelta(hours=1))
    assert again.version == first.version + 1
    later = next_timestamp(again, 1, data, NOW + timedelta(hours=1))
    assert later.version == int((NOW + timedelta(hours=1)).timestamp())
    assert later.directory == DirectoryRef.of(1, data)
    with pytest.raises(RegistryError, match="1 minute to 7 days"):
        next_timestamp(None, 1, data, NOW, timedelta(days=8))


# --- ephyto doctor ------------------------------------------------------------------------


def test_doctor_reports_the_timestamps_freshness() -> None:
    directory, stamp = _directory(), _timestamp(expires=NOW + timedelta(hours=20))
    fresh = registry_timestamp("t.json", directory, stamp, NOW)
    assert fresh is not None and fresh.status == "ok" and "expires 2026-03-02T20:00" in fresh.detail
    soon = registry_timestamp("t.json", directory, stamp, NOW + timedelta(hours=9))
    assert soon is not None and soon.status == "warning" and "expires soon" in soon.detail
    late = registry_timestamp("t.json", directory, stamp, NOW + timedelta(hours=20))
    assert late is not None and late.status == "problem"
    assert "registry frozen or unreachable timestamp" in late.detail
    assert late.action is not None and "ask the maintainers" in late.action
    none = registry_timestamp("t.json", directory, None, NOW)
    assert none is not None and none.status == "warning" and "t.json" in none.detail
    plain = json.loads(_directory_bytes(1))["signed"]
    del plain["timestamp_keys"]
    assert registry_timestamp("t.json", Directory.from_plain(plain), None, NOW) is None


def test_vector_file() -> None:
    """tests/vectors/timestamp-v1.json, the vector docs/protocol.md gives other teams."""
    vectors = Path(__file__).resolve().parents[1] / "vectors"
    vector = json.loads((vectors / "timestamp-v1.json").read_text(encoding="utf-8"))
    directory = json.loads((vectors / "directory-v1.json").read_text(encoding="utf-8"))
    named = directory["document"].encode("utf-8")
    assert hashlib.sha256(named).hexdigest() == vector["directory_document_sha256"]
    assert len(named) == vector["directory_document_length"]
    assert bytes.fromhex(vector["domain_hex"]) == DOMAIN
    signed = canonical_bytes(vector["signed"])
    assert hashlib.sha256(DOMAIN + signed).hexdigest() == vector["signing_input_sha256"]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed"]))
    public = base64.b64decode(vector["timestamp_keys"]["keys"][0]["public_key"])
    assert key.public_key().public_bytes_raw() == public
    document = vector["document"].encode("utf-8")
    assert sign_timestamp(Timestamp.from_plain(vector["signed"]), [key]) == document
    assert hashlib.sha256(document).hexdigest() == vector["document_sha256"]
    timestamp = verify_timestamp(document, MaintainerSet.from_plain(vector["timestamp_keys"]))
    assert timestamp.directory.matches(named)
