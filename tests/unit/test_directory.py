"""The directory: wire form, maintainer signatures and the node's trust rules (TUF attacks)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.directory import (
    DOMAIN,
    Directory,
    ExpiredError,
    KeyNotValid,
    MaintainerSet,
    MalformedDirectory,
    NoTrustedDirectory,
    NppoNotActive,
    RollbackError,
    RotationGap,
    ThresholdNotMet,
    TooLarge,
    TrustedDirectory,
    UnknownKey,
    UnknownNppo,
    add_signatures,
    sign_directory,
    verify_signatures,
)
from node.directory.signing import parse_signed

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "directory-v1.json"
NOW = datetime(2026, 3, 2, tzinfo=UTC)
Y26, Y27 = "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _pin(seed: int) -> str:
    return "sha256:" + f"{seed:02x}" * 32


def _maintainers(keys: list[Ed25519PrivateKey], threshold: int) -> dict[str, Any]:
    entries = [
        {"name": f"m{i}", "keyid": key_id(_raw(k)), "public_key": _b64(_raw(k))}
        for i, k in enumerate(keys)
    ]
    return {"threshold": threshold, "keys": entries}


def _nppo(country: str, seed: int, status: str = "active", **kw: Any) -> dict[str, Any]:
    raw = _raw(_key(seed))
    entry = {
        "country": country,
        "name": f"NPPO of {country}",
        "status": status,
        "endpoint": f"https://{country.lower()}.example:8443/ephyto",
        "keys": [
            {"kind": "signing", "keyid": key_id(raw), "public_key": _b64(raw)}
            | {"valid_from": Y26, "valid_until": Y27},
            {"kind": "encryption", "keyid": key_id(bytes([seed + 1]) * 32)}
            | {"public_key": _b64(bytes([seed + 1]) * 32), "valid_from": Y26, "valid_until": Y27},
        ],
        "tls_pins": [{"pin": _pin(seed), "valid_from": Y26, "valid_until": Y27}],
        "schema_versions": ["D17A"],
    }
    return entry | kw


OLD = [_key(1), _key(2), _key(3)]
NEW = [_key(4), _key(5), _key(6)]
ANCHOR = MaintainerSet.from_plain(_maintainers(OLD, 2))


def _plain(
    version: int = 1, maintainers: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    doc = {
        "format": 1,
        "version": version,
        "issued": "2026-03-01T00:00:00Z",
        "expires": "2026-03-08T00:00:00Z",
        "maintainers": maintainers or _maintainers(OLD, 2),
        "nppos": [_nppo("KE", 40, endpoint=None), _nppo("NL", 50), _nppo("US", 60, "suspended")],
        "hub": {
            "name": "hub",
            "endpoint": "https://hub.example/DeliveryService",
            "tls_pins": [{"pin": "sha256:" + "cd" * 32, "valid_from": Y26, "valid_until": Y27}],
        },
        "code_lists": {"countries": "2024.1"},
    }
    return doc | kw


def _signed(version: int = 1, keys: list[Ed25519PrivateKey] | None = None, **kw: Any) -> bytes:
    return sign_directory(_plain(version, **kw), OLD[:2] if keys is None else keys)


# --- wire form and round trip -------------------------------------------------------------


def test_round_trip() -> None:
    data = _signed()
    directory = verify_signatures(data, ANCHOR)
    assert directory.to_plain() == _plain()
    assert sign_directory(directory, OLD[:2]) == data
    assert Directory.from_signed_bytes(directory.to_signed_bytes()) == directory
    assert data.startswith(b'{"signatures":[{"keyid":')


def test_signature_covers_domain_and_exact_signed_bytes() -> None:
    data = _signed(keys=OLD[:1])
    doc = json.loads(data)
    sig = base64.b64decode(doc["signatures"][0]["sig"])
    OLD[0].public_key().verify(sig, DOMAIN + canonical_bytes(doc["signed"]))


def test_vector_file() -> None:
    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    seeds = {name: bytes.fromhex(hex_) for name, hex_ in vector["seeds"].items()}
    signed_bytes = canonical_bytes(vector["signed"])
    assert hashlib.sha256(signed_bytes).hexdigest() == vector["signed_bytes_sha256"]
    assert bytes.fromhex(vector["domain_hex"]) == DOMAIN
    assert hashlib.sha256(DOMAIN + signed_bytes).hexdigest() == vector["signing_input_sha256"]
    signers = [Ed25519PrivateKey.from_private_bytes(seeds[name]) for name in vector["signers"]]
    document = vector["document"].encode("utf-8")
    assert hashlib.sha256(document).hexdigest() == vector["document_sha256"]
    assert sign_directory(vector["signed"], signers) == document
    maintainers = MaintainerSet.from_plain(vector["signed"]["maintainers"])
    for name in ("maintainer-a", "maintainer-b", "maintainer-c"):
        raw = _raw(Ed25519PrivateKey.from_private_bytes(seeds[name]))
        assert maintainers.key(key_id(raw)) is not None
    trusted = TrustedDirectory(maintainers)
    directory = trusted.update(document, datetime(2026, 3, 2, tzinfo=UTC))
    assert directory.version == 7
    nl_signing = _raw(Ed25519PrivateKey.from_private_bytes(seeds["NL-signing-2026"]))
    at = datetime(2026, 6, 1, tzinfo=UTC)
    assert directory.signing_key("NL", key_id(nl_signing), at).public_bytes_raw() == nl_signing
    with pytest.raises(NppoNotActive):
        directory.encryption_key("US", at)


# --- TUF attacks ----------------------------------------------------------------------------


def test_rollback_refused() -> None:
    trusted = TrustedDirectory(ANCHOR)
    trusted.update(_signed(5), NOW)
    with pytest.raises(RollbackError, match="older"):
        trusted.update(_signed(4), NOW)
    assert trusted.current is not None and trusted.current.version == 5


def test_same_version_other_content_refused_same_content_accepted() -> None:
    trusted = TrustedDirectory(ANCHOR)
    first = _signed(5)
    trusted.update(first, NOW)
    with pytest.raises(RollbackError, match="other content"):
        trusted.update(_signed(5, code_lists={"countries": "2025"}), NOW)
    # Same "signed" with another set of signatures: nothing changes.
    assert trusted.update(_signed(5, keys=OLD[1:]), NOW).version == 5
    assert trusted.trusted_bytes == first


def test_freeze_expired_refused() -> None:
    trusted = TrustedDirectory(ANCHOR)
    with pytest.raises(ExpiredError):
        trusted.update(_signed(), datetime(2026, 3, 8, tzinfo=UTC))
    assert trusted.current is None


def test_arbitrary_key_ignored() -> None:
    intruder = _key(99)
    data = _signed(keys=[OLD[0], intruder])
    with pytest.raises(ThresholdNotMet, match="1 valid signatures"):
        verify_signatures(data, ANCHOR)
    # The intruder cannot get in by naming itself a maintainer either.
    forged = _signed(maintainers=_maintainers([OLD[0], intruder], 2), keys=[OLD[0], intruder])
    with pytest.raises(RotationGap):
        TrustedDirectory(ANCHOR).update(forged, NOW)


def test_threshold_not_met() -> None:
    with pytest.raises(ThresholdNotMet):
        TrustedDirectory(ANCHOR).update(_signed(keys=OLD[:1]), NOW)


def test_duplicate_signatures_count_once() -> None:
    data = _signed(keys=OLD[:1])
    doc = json.loads(data)
    doc["signatures"] = doc["signatures"] * 2
    with pytest.raises(ThresholdNotMet, match="1 valid signatures"):
        verify_signatures(canonical_bytes(doc), ANCHOR)


def test_mix_and_match_refused() -> None:
    doc = json.loads(_signed(2))
    doc["signatures"] = json.loads(_signed(1))["signatures"]
    with pytest.raises(ThresholdNotMet, match="0 valid signatures"):
        verify_signatures(canonical_bytes(doc), ANCHOR)


def test_endless_data_refused() -> None:
    data = _signed()
    with pytest.raises(TooLarge):
        verify_signatures(data + b" " * 10, ANCHOR, max_bytes=len(data))
    with pytest.raises(TooLarge):
        TrustedDirectory(ANCHOR, max_bytes=100).update(data, NOW)


def test_non_canonical_signed_refused() -> None:
    data = _signed()
    doc = json.loads(data)
    spaced = json.dumps(doc["signed"], sort_keys=True).encode()
    sigs = canonical_bytes(doc["signatures"])
    with pytest.raises(MalformedDirectory, match='"signed" is not in canonical'):
        verify_signatures(b'{"signatures":' + sigs + b',"signed":' + spaced + b"}", ANCHOR)
    with pytest.raises(MalformedDirectory, match="not in canonical"):
        verify_signatures(data.replace(b'{"signatures"', b'{ "signatures"'), ANCHOR)


def test_signatures_are_over_exact_bytes() -> None:
    # Reordering a list inside "signed" changes the bytes: the signatures no longer hold.
    doc = json.loads(_signed())
    doc["signed"]["nppos"][1]["keys"].reverse()
    with pytest.raises(ThresholdNotMet):
        verify_signatures(canonical_bytes(doc), ANCHOR)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"\xff",
        b'{"signed":{}}',
        b"[" * 100_000,
        b'{"a":1,"a":1}',
        b'{"signatures":[],"signed":{},"x":1}',
        b'{"signatures":[{"keyid":"zz","sig":""}],"signed":{}}',
        b'{"signatures":[],"signed":1.5}',
    ],
)
def test_malformed_wire_refused(data: bytes) -> None:
    with pytest.raises(MalformedDirectory):
        verify_signatures(data, ANCHOR)


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("version", "1", "expected an integer"),
        ("version", 0, "outside"),
        ("version", True, "expected an integer"),
        ("format", 2, "supported format"),
        ("extra", 1, "unknown field 'extra'"),
        ("hub", _DELETE, "missing field 'hub'"),
        ("issued", "2026-03-01T00:00:00+00:00", "UTC"),
        ("issued", "2026-02-30T00:00:00Z", "UTC"),
        ("expires", "2026-02-01T00:00:00Z", "not after issued"),
        ("maintainers.threshold", 4, "more than 3 keys"),
        ("maintainers.threshold", 0, "outside"),
        ("maintainers.keys.0.keyid", "00" * 16, "not the key id"),
        ("nppos.0.country", "ke", "ISO 3166-1"),
        ("nppos.0.country", "KEN", "1 to 2"),
        ("nppos.1.country", "KE", "duplicate country 'KE'"),
        ("nppos.2.country", "AA", "ascending"),
        ("nppos.0.status", "paused", "not one of"),
        ("nppos.0.name", " x", "surrounding spaces"),
        ("nppos.0.name", "a\nb", "control characters"),
        ("nppos.1.endpoint", "http://nl.example/", "https URL"),
        ("nppos.1.endpoint", "https://u@nl.example/", "https URL"),
        ("nppos.1.endpoint", "https://nl.example/?q=1", "https URL"),
        ("nppos.1.endpoint", "https://-nl.example/", "not a host name"),
        ("nppos.1.endpoint", "https://nl.example:0/", "port"),
        ("nppos.1.tls_pins", [], "needs at least one pin"),
        ("nppos.1.tls_pins.0.pin", "sha256:AB", "64 lowercase hex"),
        ("nppos.1.tls_pins.0.pin", _pin(40), "duplicate TLS pin"),
        ("nppos.1.keys.0.kind", "tls", "not one of"),
        ("nppos.1.keys.0.keyid", "0" * 32, "not the key id"),
        ("nppos.1.keys.0.public_key", _b64(bytes(31)), "base64 of 32 bytes"),
        ("nppos.1.keys.0.public_key", _b64(bytes(32)).rstrip("="), "base64"),
        ("nppos.1.keys.0.valid_until", "2025-01-01T00:00:00Z", "not after valid_from"),
        ("nppos.1.keys.0.valid_from", 1767225600, "expected a string"),
        ("nppos.1.schema_versions", ["D17A", "D17A"], "duplicate version"),
        ("hub.endpoint", None, "expected a string"),
        ("code_lists.countries", "latest", "not numbers"),
        ("code_lists.Countries", "1", "not a code list name"),
    ],
)
def test_malformed_signed_refused(path: str, value: Any, message: str) -> None:
    plain = _set(_plain(), path, value)
    with pytest.raises(MalformedDirectory, match=message):
        Directory.from_plain(plain)
    with pytest.raises(MalformedDirectory, match=message):
        sign_directory(plain, OLD)  # the registry cannot publish it either


# --- maintainer rotation ------------------------------------------------------------------


def test_rotation_needs_old_and_new_thresholds() -> None:
    rotated = _maintainers(NEW, 2)
    both = sign_directory(_plain(2, rotated), [*OLD[:2], *NEW[1:]])
    only_new = sign_directory(_plain(2, rotated), NEW)
    only_old = sign_directory(_plain(2, rotated), OLD)
    trusted = TrustedDirectory(ANCHOR)
    trusted.update(_signed(1), NOW)
    with pytest.raises(RotationGap):
        trusted.update(only_new, NOW)
    with pytest.raises(ThresholdNotMet, match="own"):
        trusted.update(only_old, NOW)
    trusted.update(both, NOW)
    assert trusted.maintainers == MaintainerSet.from_plain(rotated)
    # From now on only the new set vouches.
    with pytest.raises(ThresholdNotMet):
        trusted.update(_signed(3, maintainers=rotated, keys=OLD), NOW)
    assert trusted.update(_signed(3, maintainers=rotated, keys=NEW[:2]), NOW).version == 3


def test_rotation_gap_walked_with_a_chain() -> None:
    mid = _maintainers(NEW, 2)
    last = _maintainers([_key(7), _key(8)], 1)
    step1 = sign_directory(_plain(2, mid, expires="2026-03-02T00:00:00Z"), [*OLD[:2], *NEW[:2]])
    step2 = sign_directory(_plain(3, last), [*NEW[:2], _key(8)])
    trusted = TrustedDirectory(ANCHOR)
    trusted.update(_signed(1), NOW)
    with pytest.raises(RotationGap):
        trusted.update(step2, NOW)
    with pytest.raises(ExpiredError):  # all or nothing: step1 alone is expired
        trusted.update_chain([step1], NOW)
    assert trusted.current is not None and trusted.current.version == 1
    assert trusted.update_chain([step1, step2], NOW).version == 3


# --- persistence and expiry policy ----------------------------------------------------------


def test_persisted_copy_reloads_without_expiry_check() -> None:
    trusted = TrustedDirectory(ANCHOR)
    trusted.update(_signed(3), NOW)
    assert trusted.trusted_bytes is not None
    later = datetime(2026, 4, 1, tzinfo=UTC)
    reloaded = TrustedDirectory(ANCHOR, trusted.trusted_bytes)
    assert reloaded.current == trusted.current
    assert reloaded.is_expired(later) and not reloaded.is_expired(NOW)
    with pytest.raises(ExpiredError):
        reloaded.usable(later)
    with pytest.raises(RollbackError):
        reloaded.update(_signed(2), NOW)


def test_persisted_copy_damaged_refused() -> None:
    doc = json.loads(_signed())
    doc["signatures"] = doc["signatures"][:1]
    with pytest.raises(ThresholdNotMet):
        TrustedDirectory(ANCHOR, canonical_bytes(doc))


def test_usable_with_grace() -> None:
    trusted = TrustedDirectory(ANCHOR, grace=timedelta(days=1))
    assert trusted.is_expired(NOW)
    with pytest.raises(NoTrustedDirectory):
        trusted.usable(NOW)
    trusted.update(_signed(), NOW)
    assert trusted.usable(datetime(2026, 3, 8, 12, tzinfo=UTC)).version == 1
    with pytest.raises(ExpiredError):
        trusted.usable(datetime(2026, 3, 9, tzinfo=UTC))


def test_add_signatures() -> None:
    one = sign_directory(_plain(), OLD[:1])
    with pytest.raises(ThresholdNotMet):
        verify_signatures(one, ANCHOR)
    assert add_signatures(one, OLD[1:2]) == _signed()


# --- lookups --------------------------------------------------------------------------------


def test_lookups() -> None:
    directory = verify_signatures(_signed(), ANCHOR)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    nl_key = key_id(_raw(_key(50)))
    assert directory.signing_key("NL", nl_key, at).public_bytes_raw() == _raw(_key(50))
    assert directory.encryption_key("NL", at).public_key == bytes([51]) * 32
    assert directory.tls_pins("NL", at) == {_pin(50)}
    assert directory.nppo_for_tls_pin(_pin(50), at).country == "NL"
    with pytest.raises(NppoNotActive):
        directory.nppo_for_tls_pin(_pin(60), at)
    with pytest.raises(UnknownKey):
        directory.nppo_for_tls_pin(_pin(50), datetime(2027, 6, 1, tzinfo=UTC))
    assert directory.hub_tls_pins(at) == {"sha256:" + "cd" * 32}
    assert directory.nppo("KE").endpoint is None
    assert directory.code_list_versions() == {"countries": "2024.1"}
    with pytest.raises(UnknownNppo):
        directory.nppo("FR")
    with pytest.raises(UnknownKey):
        directory.signing_key("NL", "0" * 32, at)
    with pytest.raises(UnknownKey):  # an encryption key id is not a signing key
        directory.signing_key("NL", key_id(bytes([51]) * 32), at)


def test_suspended_nppo_refused() -> None:
    directory = verify_signatures(_signed(), ANCHOR)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    us_key = key_id(_raw(_key(60)))
    with pytest.raises(NppoNotActive, match="suspended"):
        directory.signing_key("US", us_key, at)
    with pytest.raises(NppoNotActive):
        directory.tls_pins("US", at)


def test_key_outside_validity_refused() -> None:
    directory = verify_signatures(_signed(), ANCHOR)
    nl_key = key_id(_raw(_key(50)))
    with pytest.raises(KeyNotValid, match="not at 2027-01-01T00:00:00Z"):
        directory.signing_key("NL", nl_key, datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(KeyNotValid):
        directory.encryption_key("NL", datetime(2025, 12, 31, tzinfo=UTC))


def test_encryption_key_is_the_newest_valid_from_halfway_through_the_overlap() -> None:
    """Senders seal to the old key through the first half of the overlap (the rotating
    node may not hold the new one yet), then to the new one."""
    newer = {
        "kind": "encryption",
        "keyid": key_id(bytes([9]) * 32),
        "public_key": _b64(bytes([9]) * 32),
    }
    newer |= {"valid_from": "2026-06-01T00:00:00Z", "valid_until": Y27}
    plain = _plain()
    plain["nppos"][1]["keys"].append(newer)
    directory = Directory.from_plain(plain)
    assert (
        directory.encryption_key("NL", datetime(2026, 5, 1, tzinfo=UTC)).public_key
        == bytes([51]) * 32
    )
    keys = directory.nppo("NL").keys
    old_until = next(k for k in keys if k.public_key == bytes([51]) * 32).valid_until
    halfway = datetime(2026, 6, 1, tzinfo=UTC) + (old_until - datetime(2026, 6, 1, tzinfo=UTC)) / 2
    before, after = halfway - timedelta(seconds=1), halfway
    assert directory.encryption_key("NL", before).public_key == bytes([51]) * 32
    assert directory.encryption_key("NL", after).public_key == bytes([9]) * 32


# --- property: any valid directory survives sign and verify ---------------------------------

_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))
_text = st.text(min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and all(ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0 for c in s)
)


def _time_text(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def _validity(draw: st.DrawFn) -> dict[str, str]:
    start = draw(_times)
    end = start + timedelta(seconds=draw(st.integers(1, 10**9)))
    return {"valid_from": _time_text(start), "valid_until": _time_text(end)}


@st.composite
def _nppo_plain(draw: st.DrawFn, country: str) -> dict[str, Any]:
    keys = []
    for raw in draw(st.lists(st.binary(min_size=32, max_size=32), max_size=3, unique=True)):
        kind = draw(st.sampled_from(["signing", "encryption"]))
        keys.append(
            {"kind": kind, "keyid": key_id(raw), "public_key": _b64(raw)} | draw(_validity())
        )
    # Pins start with the country's hex so no two NPPOs share one (the parser refuses that).
    tails = draw(st.lists(st.binary(min_size=30, max_size=30), min_size=1, max_size=2, unique=True))
    pins = [{"pin": f"sha256:{country.encode().hex()}{t.hex()}"} | draw(_validity()) for t in tails]
    host = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]\.example", fullmatch=True))
    return {
        "country": country,
        "name": draw(_text),
        "status": draw(st.sampled_from(["active", "suspended", "revoked"])),
        "endpoint": draw(st.sampled_from([None, f"https://{host}", f"https://{host}:443/a/b"])),
        "keys": keys,
        "tls_pins": pins,
        "schema_versions": draw(st.lists(st.sampled_from(["D16B", "D17A", "18"]), unique=True)),
    }


@st.composite
def _directories(draw: st.DrawFn) -> dict[str, Any]:
    issued = draw(_times)
    countries = sorted(draw(st.sets(st.from_regex(r"[A-Z]{2}", fullmatch=True), max_size=4)))
    n_keys = draw(st.integers(1, 3))
    return _plain(
        draw(st.integers(1, 2**63 - 1)),
        _maintainers(OLD[:n_keys], draw(st.integers(1, n_keys))),
        issued=_time_text(issued),
        expires=_time_text(issued + timedelta(days=draw(st.integers(1, 400)))),
        nppos=[draw(_nppo_plain(c)) for c in countries],
        hub=draw(st.sampled_from([None, _plain()["hub"]])),
        code_lists=draw(
            st.dictionaries(
                st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,2}){0,2}", fullmatch=True),
                max_size=3,
            )
        ),
    )


@settings(max_examples=60, deadline=None)
@given(_directories())
def test_random_directories_round_trip(plain: dict[str, Any]) -> None:
    data = sign_directory(plain, OLD)
    maintainers = MaintainerSet.from_plain(plain["maintainers"])
    directory = verify_signatures(data, maintainers)
    assert directory.to_plain() == plain
    assert parse_signed(data).signed_bytes == canonical_bytes(plain)
    assert sign_directory(directory, OLD) == data


# --- TLS certificates beside the pins (trust anchors for mutual TLS) ----------------------


def _tls_pem(seed: int) -> tuple[str, str]:
    """A real self-signed TLS certificate (PEM) and its pin."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from node.crypto.ids import tls_pin
    from node.identity.keys import build_tls_certificate, certificate_pem

    key = ec.derive_private_key(seed, ec.SECP256R1())
    cert = build_tls_certificate(
        key,
        country="NL",
        name="NL",
        host="127.0.0.1",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2027, 1, 1, tzinfo=UTC),
    )
    return certificate_pem(cert).decode("ascii"), tls_pin(cert)


def test_pins_may_carry_their_certificate() -> None:
    pem, pin = _tls_pem(7)
    nl = _nppo(
        "NL", 50, tls_pins=[{"pin": pin, "valid_from": Y26, "valid_until": Y27, "certificate": pem}]
    )
    doc = _plain(nppos=[_nppo("KE", 40, endpoint=None), nl])
    directory = verify_signatures(sign_directory(doc, OLD[:2]), ANCHOR)
    assert directory.tls_certificates(NOW) == (pem.encode("ascii"),)
    assert directory.to_plain()["nppos"][1]["tls_pins"][0]["certificate"] == pem
    # Suspended NPPOs and pins outside their validity give no trust anchor.
    suspended = _plain(nppos=[nl | {"status": "suspended"}])
    assert verify_signatures(sign_directory(suspended, OLD[:2]), ANCHOR).tls_certificates(NOW) == ()
    assert directory.tls_certificates(datetime(2030, 1, 1, tzinfo=UTC)) == ()


def test_a_certificate_that_does_not_match_its_pin_is_refused() -> None:
    pem, _ = _tls_pem(7)
    _, other_pin = _tls_pem(8)
    nl = _nppo(
        "NL",
        50,
        tls_pins=[{"pin": other_pin, "valid_from": Y26, "valid_until": Y27, "certificate": pem}],
    )
    with pytest.raises(MalformedDirectory, match="does not match pin"):
        sign_directory(_plain(nppos=[nl]), OLD[:2])
    garbage = _nppo(
        "NL",
        50,
        tls_pins=[{"pin": other_pin, "valid_from": Y26, "valid_until": Y27, "certificate": "nope"}],
    )
    with pytest.raises(MalformedDirectory, match="not a PEM"):
        sign_directory(_plain(nppos=[garbage]), OLD[:2])


# --- optional members: timestamp keys, code list files, network schema versions -----------


def _optional() -> dict[str, Any]:
    return {
        "timestamp_keys": _maintainers(NEW[:1], 1),
        "code_list_files": {"countries": {"sha256": "ab" * 32, "length": 1234}},
        "schemas": [
            {"version": "D16B", "valid_from": Y26, "valid_until": "2026-06-01T00:00:00Z"},
            {"version": "D17A", "valid_from": Y26, "valid_until": None},
        ],
    }


def test_optional_members_round_trip() -> None:
    plain = _plain(**_optional())
    data = sign_directory(plain, OLD[:2])
    directory = verify_signatures(data, ANCHOR)
    assert directory.to_plain() == plain
    assert directory.timestamp_keys == MaintainerSet.from_plain(_maintainers(NEW[:1], 1))
    assert [(f.name, f.length) for f in directory.code_list_files] == [("countries", 1234)]
    d16b, d17a = directory.schemas
    june = datetime(2026, 6, 1, tzinfo=UTC)
    assert d16b.in_force(june - timedelta(seconds=1)) and not d16b.in_force(june)
    assert d17a.in_force(june) and d17a.valid_until is None


def test_without_optional_members_nothing_is_added() -> None:
    directory = verify_signatures(_signed(), ANCHOR)
    assert (directory.timestamp_keys, directory.code_list_files, directory.schemas) == (
        None,
        (),
        (),
    )
    assert not {"timestamp_keys", "code_list_files", "schemas"} & set(directory.to_plain())


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("code_list_files", {}, "empty"),
        ("schemas", [], "empty"),
        ("timestamp_keys", {"threshold": 1, "keys": []}, "more than 0 keys"),
        ("code_list_files", {"units": {"sha256": "ab" * 32, "length": 1}}, "has no version"),
        ("code_list_files", {"countries": {"sha256": "AB" * 32, "length": 1}}, "64 lowercase"),
        ("code_list_files", {"countries": {"sha256": "ab" * 32, "length": 0}}, "outside"),
        ("code_list_files", {"countries": {"sha256": "ab" * 32}}, "missing field 'length'"),
        ("schemas", [{"version": "D17A", "valid_from": Y26}], "missing field 'valid_until'"),
        (
            "schemas",
            [{"version": "D17A", "valid_from": Y27, "valid_until": Y26}],
            "not after valid_from",
        ),
        (
            "schemas",
            [{"version": "D17A", "valid_from": Y26, "valid_until": None}] * 2,
            "duplicate version",
        ),
        ("schemas", [{"version": "D 17", "valid_from": Y26, "valid_until": None}], "schema"),
    ],
)
def test_malformed_optional_members_refused(member: str, value: Any, message: str) -> None:
    plain = _plain(**{member: value})
    with pytest.raises(MalformedDirectory, match=message):
        Directory.from_plain(plain)
    with pytest.raises(MalformedDirectory, match=message):
        sign_directory(plain, OLD)
