"""The signed receipt: round trips, every refusal, and the exact-bytes test vector."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from node.crypto.canonical import canonical_bytes, is_canonical
from node.crypto.ids import key_id
from node.envelope.errors import (
    BadSignatureError,
    MalformedReceiptError,
    ReceiptMismatchError,
    TooLargeError,
    UnsupportedVersionError,
)
from node.envelope.receipt import (
    MAX_RECEIPT_BYTES,
    RECEIPT_DOMAIN,
    Outcome,
    Receipt,
    make_receipt,
    verify_receipt,
)

VECTOR = json.loads(
    (Path(__file__).parents[1] / "vectors" / "receipt-v1.json").read_text(encoding="utf-8")
)
RECEIVER = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(96, 128)))
RECEIVER_ID = key_id(RECEIVER.public_key().public_bytes_raw())
MESSAGE_ID = "0b6f4d0e-4d2a-4c1e-9a57-3f8d2b1c6e90"
DIGEST = "sha256:" + "1a" * 32
RECEIPT = Receipt(
    message_id=MESSAGE_ID,
    content_digest=DIGEST,
    from_country="US",
    to_country="NL",
    received=datetime(2026, 11, 20, 9, 15, 7, tzinfo=UTC),
    outcome=Outcome.ACCEPTED,
)


def _verify(data: bytes, **overrides: Any) -> Receipt:
    kwargs: dict[str, Any] = {
        "expected_message_id": MESSAGE_ID,
        "expected_digest": DIGEST,
        "receiver_public_key": RECEIVER.public_key(),
    }
    kwargs.update(overrides)
    return verify_receipt(data, **kwargs)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(data: bytes) -> tuple[bytes, bytes]:
    wire = json.loads(data)
    return _unb64url(wire["receipt"]), _unb64url(wire["signature"])


def _wire(body: bytes, signature: bytes) -> bytes:
    return canonical_bytes({"receipt": _b64url(body), "signature": _b64url(signature)})


def _signed(value: dict[str, Any], key: Ed25519PrivateKey = RECEIVER) -> bytes:
    """A receipt body the receiver really signed: only its content is wrong."""
    body = canonical_bytes(value)
    return _wire(body, key.sign(RECEIPT_DOMAIN + body))


def _body() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        _parts(make_receipt(RECEIPT, receiver_signing_key=RECEIVER))[0]
    )
    return value


# Round trips


@pytest.mark.parametrize(
    ("outcome", "findings"),
    [
        (Outcome.ACCEPTED, ()),
        (Outcome.ACCEPTED, ("INFO Mapping: optional box 9 is empty",)),
        (Outcome.ACCEPTED_WITH_WARNINGS, ("WARNING Schema: unknown unit",)),
        (Outcome.REJECTED, ("SEVERE MandatoryElements: no consignor", "SEVERE Schema: x")),
    ],
)
def test_round_trip(outcome: Outcome, findings: tuple[str, ...]) -> None:
    receipt = replace(RECEIPT, outcome=outcome, findings=findings)
    data = make_receipt(receipt, receiver_signing_key=RECEIVER)
    assert is_canonical(data)
    assert _verify(data) == replace(receipt, receiver_key_id=RECEIVER_ID)


def test_make_receipt_is_deterministic_and_checks_a_preset_key_id() -> None:
    data = make_receipt(RECEIPT, receiver_signing_key=RECEIVER)
    assert make_receipt(RECEIPT, receiver_signing_key=RECEIVER) == data
    preset = replace(RECEIPT, receiver_key_id=RECEIVER_ID)
    assert make_receipt(preset, receiver_signing_key=RECEIVER) == data
    with pytest.raises(MalformedReceiptError, match="receiver_key_id"):
        make_receipt(preset, receiver_signing_key=OTHER)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.text(
            st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=80
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_findings_round_trip(findings: list[str]) -> None:
    receipt = replace(RECEIPT, outcome=Outcome.REJECTED, findings=tuple(findings))
    assert _verify(make_receipt(receipt, receiver_signing_key=RECEIVER)).findings == tuple(findings)


# Refusals when building


@pytest.mark.parametrize("outcome", [Outcome.REJECTED, Outcome.ACCEPTED_WITH_WARNINGS])
def test_refusals_and_warnings_must_say_why(outcome: Outcome) -> None:
    with pytest.raises(MalformedReceiptError, match="at least one finding"):
        replace(RECEIPT, outcome=outcome)


@pytest.mark.parametrize(
    "changes",
    [
        {"findings": ("two\nlines",)},
        {"findings": ("",)},
        {"findings": ("x" * 501,)},
        {"findings": ("x",) * 101},
        {"message_id": "nope"},
        {"content_digest": "sha256:xyz"},
        {"from_country": "usa"},
        {"received": datetime(2026, 11, 20, 9, 15, 7)},
    ],
)
def test_ill_shaped_receipts_are_refused_when_built(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedReceiptError):
        replace(RECEIPT, **changes)


# Refusals when verifying


def test_tampered_body_byte() -> None:
    body, signature = _parts(make_receipt(RECEIPT, receiver_signing_key=RECEIVER))
    with pytest.raises(BadSignatureError):
        _verify(_wire(body.replace(b'"accepted"', b'"rejected"'), signature))


def test_tampered_signature() -> None:
    body, signature = _parts(make_receipt(RECEIPT, receiver_signing_key=RECEIVER))
    with pytest.raises(BadSignatureError):
        _verify(_wire(body, signature[:-1] + bytes([signature[-1] ^ 1])))


def test_signed_by_another_key() -> None:
    with pytest.raises(BadSignatureError):
        _verify(make_receipt(RECEIPT, receiver_signing_key=OTHER))
    with pytest.raises(BadSignatureError):
        _verify(
            make_receipt(RECEIPT, receiver_signing_key=RECEIVER),
            receiver_public_key=OTHER.public_key(),
        )


def test_signature_without_the_domain_prefix_is_refused() -> None:
    body, _ = _parts(make_receipt(RECEIPT, receiver_signing_key=RECEIVER))
    with pytest.raises(BadSignatureError):
        _verify(_wire(body, RECEIVER.sign(body)))


def test_receipt_for_another_message_or_content() -> None:
    data = make_receipt(RECEIPT, receiver_signing_key=RECEIVER)
    with pytest.raises(ReceiptMismatchError, match="expected"):
        _verify(data, expected_message_id="11111111-2222-4333-8444-555555555555")
    with pytest.raises(ReceiptMismatchError, match="we sent"):
        _verify(data, expected_digest="sha256:" + "00" * 32)


def test_oversized() -> None:
    with pytest.raises(TooLargeError):
        _verify(b" " * (MAX_RECEIPT_BYTES + 1))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"null",
        b"{}",
        b"[" * 100_000,
        b"\xff",
        b'{"receipt":"","signature":""}',
        b'{"receipt":"","signature":"","x":""}',
        b'{"receipt":"e30=","signature":""}',
        b'{"signature":"","receipt":""}',
    ],
)
def test_garbage(data: bytes) -> None:
    with pytest.raises(MalformedReceiptError):
        _verify(data)


def test_truncated() -> None:
    data = make_receipt(RECEIPT, receiver_signing_key=RECEIVER)
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(MalformedReceiptError):
            _verify(data[:cut])


@pytest.mark.parametrize("version", ["ephyto-receipt/2", None, 1])
def test_unknown_version(version: object) -> None:
    value = {**_body(), "version": version}
    if version is None:
        del value["version"]
    with pytest.raises(UnsupportedVersionError):
        _verify(_signed(value))


def test_extra_missing_and_ill_typed_members() -> None:
    with pytest.raises(MalformedReceiptError, match="unknown member"):
        _verify(_signed({**_body(), "note": "x"}))
    for name in sorted(set(_body()) - {"version"}):
        value = _body()
        del value[name]
        with pytest.raises(MalformedReceiptError, match=f"lacks member.*{name}"):
            _verify(_signed(value))
    for name, bad in [
        ("findings", "one"),
        ("findings", [1]),
        ("outcome", "maybe"),
        ("received", "2026-11-20 09:15:07"),
        ("from", 7),
        ("receiver_key_id", ""),
    ]:
        with pytest.raises(MalformedReceiptError):
            _verify(_signed({**_body(), name: bad}))


def test_body_naming_another_key_is_refused() -> None:
    other_id = key_id(OTHER.public_key().public_bytes_raw())
    with pytest.raises(MalformedReceiptError, match="names key"):
        _verify(_signed({**_body(), "receiver_key_id": other_id}))


def test_non_canonical_body_is_refused_even_when_signed() -> None:
    body = json.dumps(_body(), sort_keys=True).encode()
    with pytest.raises(MalformedReceiptError, match="canonical"):
        _verify(_wire(body, RECEIVER.sign(RECEIPT_DOMAIN + body)))


# The committed vector (tests/vectors/receipt-v1.json): exact bytes


def test_vector_is_reproduced_exactly() -> None:
    seed = bytes.fromhex(VECTOR["receiver"]["ed25519_seed_hex"])
    key = Ed25519PrivateKey.from_private_bytes(seed)
    assert key.public_key().public_bytes_raw().hex() == VECTOR["receiver"]["ed25519_public_hex"]
    body = VECTOR["body"]
    receipt = Receipt(
        message_id=body["message_id"],
        content_digest=body["content_digest"],
        from_country=body["from"],
        to_country=body["to"],
        received=datetime(2026, 11, 20, 9, 15, 7, tzinfo=UTC),
        outcome=Outcome(body["outcome"]),
        findings=tuple(body["findings"]),
    )
    data = make_receipt(receipt, receiver_signing_key=key)
    assert data == base64.b64decode(VECTOR["receipt_base64"])
    body_bytes, signature = _parts(data)
    assert body_bytes == VECTOR["body_bytes_utf8"].encode("utf-8") == canonical_bytes(body)
    assert signature.hex() == VECTOR["signature_hex"]
    public = Ed25519PublicKey.from_public_bytes(
        bytes.fromhex(VECTOR["receiver"]["ed25519_public_hex"])
    )
    public.verify(signature, b"ephyto-receipt/1\x00" + body_bytes)
    verified = verify_receipt(
        data,
        expected_message_id=body["message_id"],
        expected_digest=body["content_digest"],
        receiver_public_key=public,
    )
    assert verified == replace(receipt, receiver_key_id=VECTOR["receiver"]["key_id"])


def test_vector_digest_is_the_envelope_vectors_digest() -> None:
    envelope = json.loads(
        (Path(__file__).parents[1] / "vectors" / "envelope-v1.json").read_text(encoding="utf-8")
    )
    assert VECTOR["body"]["message_id"] == envelope["header"]["message_id"]
    assert VECTOR["body"]["content_digest"] == envelope["header"]["content_digest"]
