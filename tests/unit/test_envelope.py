"""The sealed envelope: round trips, every refusal, and the committed test vector.

Replays (the same message id twice) are deliberately not tested here: the envelope layer
opens each copy alike, and the store answers a repeated id with the original receipt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from node.crypto.canonical import canonical_bytes, is_canonical
from node.crypto.ids import key_id
from node.envelope.envelope import (
    SIGNATURE_DOMAIN,
    SUITE,
    EnvelopeHeader,
    OpenedEnvelope,
    open_envelope,
    peek_header,
    seal,
    signed_bytes,
)
from node.envelope.errors import (
    BadSignatureError,
    DecryptionFailedError,
    DigestMismatchError,
    EnvelopeError,
    MalformedEnvelopeError,
    MalformedHeaderError,
    TooLargeError,
    UnknownKeyError,
    UnsupportedVersionError,
    WrongRecipientError,
)

VECTOR = json.loads(
    (Path(__file__).parents[1] / "vectors" / "envelope-v1.json").read_text(encoding="utf-8")
)
SENDER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
RECIPIENT = X25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
OTHER_SIGNER = Ed25519PrivateKey.from_private_bytes(bytes(range(96, 128)))
OTHER_RECIPIENT = X25519PrivateKey.from_private_bytes(bytes(range(128, 160)))
MAX = 1 << 20
PAYLOAD = b'<?xml version="1.0" encoding="UTF-8"?><rsm:SPSCertificate/>'
HEADER = EnvelopeHeader(
    message_id="0b6f4d0e-4d2a-4c1e-9a57-3f8d2b1c6e90",
    from_country="NL",
    to_country="US",
    certificate_type="851",
    certificate_status="70",
    certificate_number="NL-2026-000123",
    created=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
)


def _raw(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes_raw()


RECIPIENT_ID = key_id(_raw(RECIPIENT.public_key()))


def _resolver(key: Ed25519PublicKey) -> Any:
    def resolve(country: str, kid: str) -> Ed25519PublicKey:
        return key

    return resolve


def _open(data: bytes, **overrides: Any) -> OpenedEnvelope:
    kwargs: dict[str, Any] = {
        "max_bytes": MAX,
        "recipient_country": "US",
        "recipient_private_key": RECIPIENT,
        "recipient_key_id": RECIPIENT_ID,
        "resolve_sender_key": _resolver(SENDER.public_key()),
    }
    kwargs.update(overrides)
    return open_envelope(data, **kwargs)


def _sealed(payload: bytes = PAYLOAD) -> bytes:
    return seal(
        header=HEADER,
        payload=payload,
        sender_signing_key=SENDER,
        recipient_public_key=RECIPIENT.public_key(),
    )


def _parts(data: bytes) -> tuple[bytes, bytes, bytes]:
    wire = json.loads(data)
    return tuple(  # type: ignore[return-value]
        base64.urlsafe_b64decode(wire[name] + "=" * (-len(wire[name]) % 4))
        for name in ("header", "ciphertext", "signature")
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _wire(header: bytes, ciphertext: bytes, signature: bytes) -> bytes:
    return canonical_bytes(
        {
            "header": _b64url(header),
            "ciphertext": _b64url(ciphertext),
            "signature": _b64url(signature),
        }
    )


def _forge(header: bytes, ciphertext: bytes, key: Ed25519PrivateKey = SENDER) -> bytes:
    """An envelope a (buggy or hostile) holder of `key` could really send."""
    return _wire(header, ciphertext, key.sign(signed_bytes(header, ciphertext)))


def _header_object() -> dict[str, Any]:
    header, _, _ = _parts(_sealed())
    value: dict[str, Any] = json.loads(header)
    return value


def _with_header(value: dict[str, Any]) -> bytes:
    """Signed, and encrypted under exactly these header bytes: only the header is wrong."""
    header = canonical_bytes(value)
    return _forge(header, SUITE.encrypt(PAYLOAD, RECIPIENT.public_key(), info=header))


# Round trips


def test_round_trip_fills_digest_and_key_ids() -> None:
    data = _sealed()
    opened = _open(data)
    assert opened.payload == PAYLOAD
    assert opened.header == replace(
        HEADER,
        content_digest="sha256:" + hashlib.sha256(PAYLOAD).hexdigest(),
        sender_key_id=key_id(_raw(SENDER.public_key())),
        recipient_key_id=RECIPIENT_ID,
    )
    assert opened.header_bytes == opened.header.to_bytes()
    assert is_canonical(data)
    assert sorted(json.loads(data)) == ["ciphertext", "header", "signature"]


def test_seal_accepts_correct_presets_and_refuses_wrong_ones() -> None:
    done = _open(_sealed()).header
    again = seal(
        header=done,
        payload=PAYLOAD,
        sender_signing_key=SENDER,
        recipient_public_key=RECIPIENT.public_key(),
    )
    assert _open(again).payload == PAYLOAD
    for name, wrong in [
        ("content_digest", "sha256:" + "0" * 64),
        ("sender_key_id", "0" * 32),
        ("recipient_key_id", "0" * 32),
    ]:
        with pytest.raises(MalformedHeaderError, match=name):
            seal(
                header=replace(HEADER, **dict[str, Any]({name: wrong})),
                payload=PAYLOAD,
                sender_signing_key=SENDER,
                recipient_public_key=RECIPIENT.public_key(),
            )


def test_sealing_twice_gives_different_bytes_that_both_open() -> None:
    first, second = _sealed(), _sealed()
    assert first != second  # HPKE draws a fresh ephemeral key each time
    assert _open(first).payload == _open(second).payload == PAYLOAD


def test_peek_header_reads_without_keys_and_without_verifying() -> None:
    header, ciphertext, _ = _parts(_sealed())
    unsigned = _wire(header, ciphertext, bytes(64))
    assert peek_header(unsigned, max_bytes=MAX) == _open(_sealed()).header
    with pytest.raises(BadSignatureError):
        _open(unsigned)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=4096))
def test_any_payload_round_trips(payload: bytes) -> None:
    assert _open(_sealed(payload)).payload == payload


# Refusals: size and wire form


def test_oversized_is_refused_before_reading() -> None:
    data = _sealed()
    assert _open(data, max_bytes=len(data)).payload == PAYLOAD
    with pytest.raises(TooLargeError):
        _open(data, max_bytes=len(data) - 1)
    with pytest.raises(TooLargeError):
        peek_header(b"[" * 100, max_bytes=99)


@pytest.mark.parametrize("cut", [0, 1, 2, 40, -40, -2, -1])
def test_truncated_is_malformed(cut: int) -> None:
    with pytest.raises(MalformedEnvelopeError):
        _open(_sealed()[:cut])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"null",
        b"[]",
        b'"envelope"',
        b"\xff\xfe\x00",
        b"[" * 100_000,
        b'{"ciphertext":"","header":""}',
        b'{"ciphertext":"","extra":"","header":"","signature":""}',
        b'{"ciphertext":1,"header":"","signature":""}',
        b'{"ciphertext":1.5,"header":"","signature":""}',
    ],
)
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEnvelopeError):
        _open(data)
    with pytest.raises(MalformedEnvelopeError):
        peek_header(data, max_bytes=MAX)


def test_non_canonical_wire_forms_are_refused() -> None:
    header, ciphertext, signature = _parts(_sealed())
    wire = json.loads(_sealed())
    spaced = json.dumps(wire, sort_keys=True).encode()
    unsorted = json.dumps(dict(reversed(list(wire.items()))), separators=(",", ":")).encode()
    padded = _wire(header, ciphertext, signature).replace(b'"}', b'=="}')
    std_alphabet = canonical_bytes({**wire, "header": base64.b64encode(header).decode()})
    for data in (spaced, unsorted, padded, std_alphabet):
        with pytest.raises(MalformedEnvelopeError):
            _open(data)


def test_non_zero_trailing_base64_bits_are_refused() -> None:
    _, _, signature = _parts(_sealed())
    text = _b64url(signature)  # 64 bytes: 86 characters, the last carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tweaked = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    data = canonical_bytes({**json.loads(_sealed()), "signature": tweaked})
    with pytest.raises(MalformedEnvelopeError, match="trailing bits"):
        _open(data)


def test_wrong_lengths_are_malformed() -> None:
    header, ciphertext, signature = _parts(_sealed())
    with pytest.raises(MalformedEnvelopeError, match="signature"):
        _open(_wire(header, ciphertext, signature[:-1]))
    with pytest.raises(MalformedEnvelopeError, match="ciphertext"):
        _open(_forge(header, ciphertext[:47]))


# Refusals: header


def test_header_extra_and_missing_members() -> None:
    with pytest.raises(MalformedHeaderError, match="unknown member"):
        _open(_with_header({**_header_object(), "priority": "high"}))
    for name in sorted(set(_header_object()) - {"version"}):
        value = _header_object()
        del value[name]
        with pytest.raises(MalformedHeaderError, match=f"lacks member.*{name}"):
            _open(_with_header(value))


@pytest.mark.parametrize("version", ["ephyto-envelope/2", "", 1, None])
def test_unknown_version(version: object) -> None:
    value = {**_header_object(), "version": version}
    if version is None:
        del value["version"]
    with pytest.raises(UnsupportedVersionError):
        _open(_with_header(value))


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("message_id", "0B6F4D0E-4D2A-4C1E-9A57-3F8D2B1C6E90"),
        ("message_id", "0b6f4d0e4d2a4c1e9a573f8d2b1c6e90"),
        ("message_id", "not-a-uuid"),
        ("from", "nl"),
        ("from", "NLD"),
        ("to", "U1"),
        ("to", "US\n"),
        ("certificate_type", "852"),
        ("certificate_type", 851),
        ("certificate_status", "71"),
        ("certificate_number", ""),
        ("certificate_number", "NL\n2026"),
        ("certificate_number", "x" * 129),
        ("created", "2026-11-20T09:15:00+00:00"),
        ("created", "2026-11-20T09:15:00.5Z"),
        ("created", "2026-02-30T09:15:00Z"),
        ("media_type", "Application/XML"),
        ("media_type", "xml"),
        ("content_digest", ""),
        ("content_digest", "sha1:" + "0" * 40),
        ("sender_key_id", ""),
        ("recipient_key_id", "A" * 32),
        ("recipient_key_id", True),
        ("certificate_number", None),
        ("certificate_number", ["NL-1"]),
    ],
)
def test_ill_shaped_header_fields(name: str, bad: object) -> None:
    with pytest.raises(MalformedHeaderError):
        _open(_with_header({**_header_object(), name: bad}))


def test_non_canonical_or_oversized_header_bytes() -> None:
    value = _header_object()
    for header in (
        json.dumps(value, sort_keys=True).encode(),
        canonical_bytes(value)[:-1] + b',"from":"NL"}',
        canonical_bytes(value) + b"\n",
    ):
        forged = _forge(header, SUITE.encrypt(PAYLOAD, RECIPIENT.public_key(), info=header))
        with pytest.raises(MalformedHeaderError):
            _open(forged)
    with pytest.raises(MalformedHeaderError, match="4096"):
        _open(_with_header({**value, "certificate_number": "x" * 5000}))


def test_header_construction_refuses_local_times() -> None:
    for created in (
        datetime(2026, 11, 20, 9, 15),
        datetime(2026, 11, 20, 9, 15, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 11, 20, 9, 15, 0, 500, tzinfo=UTC),
    ):
        with pytest.raises(MalformedHeaderError, match="UTC"):
            replace(HEADER, created=created)


# Refusals: authenticity


def test_tampered_header_byte_breaks_the_signature() -> None:
    header, ciphertext, signature = _parts(_sealed())
    changed = header.replace(b"NL-2026-000123", b"NL-2026-000124")
    with pytest.raises(BadSignatureError):
        _open(_wire(changed, ciphertext, signature))


def test_tampered_ciphertext_byte_breaks_the_signature() -> None:
    header, ciphertext, signature = _parts(_sealed())
    changed = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    with pytest.raises(BadSignatureError):
        _open(_wire(header, changed, signature))


def test_tampered_signature() -> None:
    header, ciphertext, signature = _parts(_sealed())
    with pytest.raises(BadSignatureError):
        _open(_wire(header, ciphertext, bytes([signature[0] ^ 1]) + signature[1:]))


def test_signature_by_another_key() -> None:
    header, ciphertext, _ = _parts(_sealed())
    with pytest.raises(BadSignatureError):
        _open(_forge(header, ciphertext, OTHER_SIGNER))


def test_resolver_errors_propagate_and_a_mismatched_key_is_unknown() -> None:
    def unknown(country: str, kid: str) -> Ed25519PublicKey:
        raise UnknownKeyError(f"{country} has no signing key {kid}")

    with pytest.raises(UnknownKeyError, match="NL has no signing key"):
        _open(_sealed(), resolve_sender_key=unknown)
    with pytest.raises(UnknownKeyError):
        _open(_sealed(), resolve_sender_key=_resolver(OTHER_SIGNER.public_key()))


def test_resolver_is_asked_for_the_header_country_and_key_id() -> None:
    asked: list[tuple[str, str]] = []

    def resolve(country: str, kid: str) -> Ed25519PublicKey:
        asked.append((country, kid))
        return SENDER.public_key()

    _open(_sealed(), resolve_sender_key=resolve)
    assert asked == [("NL", key_id(_raw(SENDER.public_key())))]


# Refusals: recipient and content


def test_wrong_recipient_country_or_key() -> None:
    with pytest.raises(WrongRecipientError, match="addressed to US"):
        _open(_sealed(), recipient_country="KE")
    other_id = key_id(_raw(OTHER_RECIPIENT.public_key()))
    with pytest.raises(WrongRecipientError, match="sealed to key"):
        _open(_sealed(), recipient_private_key=OTHER_RECIPIENT, recipient_key_id=other_id)


def test_ciphertext_signed_after_tampering_fails_decryption() -> None:
    header, ciphertext, _ = _parts(_sealed())
    changed = ciphertext[:40] + bytes([ciphertext[40] ^ 1]) + ciphertext[41:]
    with pytest.raises(DecryptionFailedError):
        _open(_forge(header, changed))


def test_ciphertext_is_bound_to_its_header_bytes() -> None:
    header, ciphertext, _ = _parts(_sealed())
    other = header.replace(b"NL-2026-000123", b"NL-2026-000999")
    with pytest.raises(DecryptionFailedError):
        _open(_forge(other, ciphertext))


def test_ciphertext_to_another_key_fails_decryption() -> None:
    header, _, _ = _parts(_sealed())
    ciphertext = SUITE.encrypt(PAYLOAD, OTHER_RECIPIENT.public_key(), info=header)
    with pytest.raises(DecryptionFailedError):
        _open(_forge(header, ciphertext))


def test_digest_mismatch() -> None:
    value = {**_header_object(), "content_digest": "sha256:" + "ab" * 32}
    with pytest.raises(DigestMismatchError):
        _open(_with_header(value))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_single_byte_change_is_refused(data: st.DataObject) -> None:
    sealed = VECTOR_ENVELOPE
    index = data.draw(st.integers(0, len(sealed) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != sealed[index]))
    with pytest.raises(EnvelopeError):
        _open(sealed[:index] + bytes([byte]) + sealed[index + 1 :])


# The committed vector (tests/vectors/envelope-v1.json)

VECTOR_ENVELOPE = base64.b64decode(VECTOR["envelope_base64"])


def test_vector_keys_derive_from_their_seeds() -> None:
    sender = VECTOR["sender"]
    recipient = VECTOR["recipient"]
    seed = bytes.fromhex(sender["ed25519_seed_hex"])
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert public.hex() == sender["ed25519_public_hex"]
    assert key_id(public) == sender["key_id"] == VECTOR["header"]["sender_key_id"]
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(recipient["x25519_private_hex"]))
    public = private.public_key().public_bytes_raw()
    assert public.hex() == recipient["x25519_public_hex"]
    assert key_id(public) == recipient["key_id"] == VECTOR["header"]["recipient_key_id"]


def test_vector_opens_to_its_payload() -> None:
    private = X25519PrivateKey.from_private_bytes(
        bytes.fromhex(VECTOR["recipient"]["x25519_private_hex"])
    )
    sender = Ed25519PublicKey.from_public_bytes(
        bytes.fromhex(VECTOR["sender"]["ed25519_public_hex"])
    )
    opened = open_envelope(
        VECTOR_ENVELOPE,
        max_bytes=MAX,
        recipient_country=VECTOR["recipient"]["country"],
        recipient_private_key=private,
        recipient_key_id=VECTOR["recipient"]["key_id"],
        resolve_sender_key=_resolver(sender),
    )
    assert opened.payload == base64.b64decode(VECTOR["payload_base64"])
    assert opened.header_bytes == VECTOR["header_bytes_utf8"].encode("utf-8")
    assert opened.header_bytes == canonical_bytes(VECTOR["header"])
    assert peek_header(VECTOR_ENVELOPE, max_bytes=MAX) == opened.header
    assert _wire(*_parts(VECTOR_ENVELOPE)) == VECTOR_ENVELOPE


def test_vector_signature_over_the_documented_framing() -> None:
    header, ciphertext, signature = _parts(VECTOR_ENVELOPE)
    framed = (
        b"ephyto-envelope/1\x00"
        + struct.pack(">Q", len(header))
        + header
        + struct.pack(">Q", len(ciphertext))
        + ciphertext
    )
    assert SIGNATURE_DOMAIN == b"ephyto-envelope/1\x00"
    assert framed == signed_bytes(header, ciphertext)
    assert len(framed) == VECTOR["signed_bytes_length"]
    assert hashlib.sha256(framed).hexdigest() == VECTOR["signed_bytes_sha256_hex"]
    assert signature.hex() == VECTOR["signature_hex"]
    public = bytes.fromhex(VECTOR["sender"]["ed25519_public_hex"])
    Ed25519PublicKey.from_public_bytes(public).verify(signature, framed)


def test_vector_decrypts_with_a_from_scratch_rfc9180_receiver() -> None:
    """The spec's HPKE description, checked without the library's HPKE: enc || ct, aad ""."""
    header, ciphertext, _ = _parts(VECTOR_ENVELOPE)
    private = X25519PrivateKey.from_private_bytes(
        bytes.fromhex(VECTOR["recipient"]["x25519_private_hex"])
    )
    enc, sealed = ciphertext[:32], ciphertext[32:]
    assert enc.hex() == VECTOR["hpke"]["enc_hex"]
    key, nonce = _rfc9180_base_key_schedule(private, enc, info=header)
    assert AESGCM(key).decrypt(nonce, sealed, b"") == base64.b64decode(VECTOR["payload_base64"])


def _rfc9180_base_key_schedule(
    private: X25519PrivateKey, enc: bytes, *, info: bytes
) -> tuple[bytes, bytes]:
    def extract(salt: bytes, ikm: bytes) -> bytes:
        h = hmac.HMAC(salt or bytes(32), hashes.SHA256())
        h.update(ikm)
        return h.finalize()

    def expand(prk: bytes, label_info: bytes, length: int) -> bytes:
        out, block, counter = b"", b"", 1
        while len(out) < length:
            h = hmac.HMAC(prk, hashes.SHA256())
            h.update(block + label_info + bytes([counter]))
            block = h.finalize()
            out, counter = out + block, counter + 1
        return out[:length]

    def labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return extract(salt, b"HPKE-v1" + suite + label + ikm)

    def labeled_expand(suite: bytes, prk: bytes, label: bytes, ctx: bytes, length: int) -> bytes:
        return expand(prk, struct.pack(">H", length) + b"HPKE-v1" + suite + label + ctx, length)

    kem_suite = b"KEM" + struct.pack(">H", 0x0020)
    hpke_suite = b"HPKE" + struct.pack(">HHH", 0x0020, 0x0001, 0x0002)
    dh = private.exchange(X25519PublicKey.from_public_bytes(enc))
    kem_context = enc + private.public_key().public_bytes_raw()
    eae_prk = labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared = labeled_expand(kem_suite, eae_prk, b"shared_secret", kem_context, 32)
    context = (
        b"\x00"
        + labeled_extract(hpke_suite, b"", b"psk_id_hash", b"")
        + labeled_extract(hpke_suite, b"", b"info_hash", info)
    )
    secret = labeled_extract(hpke_suite, shared, b"secret", b"")
    key = labeled_expand(hpke_suite, secret, b"key", context, 32)
    nonce = labeled_expand(hpke_suite, secret, b"base_nonce", context, 12)
    return key, nonce
